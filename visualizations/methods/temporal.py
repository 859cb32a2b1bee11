"""Per-frame importance: ablate one whole input frame at a time (Captum FeatureAblation, frame mask)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from tada.video import Clip
from visualizations._model import (
    NO_GRAD_BATCH_BUDGET,
    Progress,
    auto_batch,
    counting,
    forward_logits,
    time_dim,
)
from visualizations.methods._common import MethodResult, input_hw

__all__ = ["attribute"]


def attribute(
    model: nn.Module,
    clip: Clip,
    target: int,
    progress: Progress | None = None,
    baseline: float = 0.0,
    perturbations_per_eval: int | None = None,
) -> MethodResult:
    """Drop of the target logit when frame t is replaced by ``baseline`` (0 = the mean colour).

    The maps repeat each frame's value over the frame (this method has no spatial resolution).
    """
    from captum.attr import FeatureAblation

    x = clip.tensor
    t = clip.num_frames
    shape = [1, 1, 1, 1, 1]
    shape[time_dim(model)] = t
    mask = torch.arange(t, device=x.device).view(shape)
    perturbations_per_eval = auto_batch(x, t, perturbations_per_eval, NO_GRAD_BATCH_BUDGET)
    calls = 1 + math.ceil(t / perturbations_per_eval)
    fwd = counting(forward_logits(model), calls, progress, "frame ablation")
    with torch.no_grad():
        attr = FeatureAblation(fwd).attribute(
            x, target=target, feature_mask=mask, baselines=baseline, perturbations_per_eval=perturbations_per_eval
        )
    per_frame = attr[0].movedim(time_dim(model) - 1, 0).reshape(t, -1)[:, 0].float().cpu().numpy()
    h, w = input_hw(clip)
    maps = np.broadcast_to(per_frame[:, None, None], (t, h, w)).astype(np.float32)
    return MethodResult(
        heatmaps=maps,
        frame_importance=per_frame.astype(np.float32),
        signed=True,
        meta={"baseline": baseline, "output": "logit", "map": "each frame's logit drop, repeated over the frame"},
    )
