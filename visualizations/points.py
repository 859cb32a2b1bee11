"""ILA interactive points and alignment masks from a traced forward pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from tada.trace import Trace
from tada.video import Clip
from visualizations._model import label_of, resolve_target, traced_forward
from visualizations.explanation import PointsExplanation, PointsLayer

__all__ = ["points_explanation", "points_from_trace"]


def points_explanation(
    model: nn.Module, clip: Any, target: int | str | None = None, batch_index: int = 0
) -> PointsExplanation:
    """Trace one forward pass and collect every ILA layer's points (forward order)."""
    ci, tr, logits = traced_forward(model, clip)
    return points_from_trace(model, ci, tr, logits, target, batch_index)


def points_from_trace(
    model: nn.Module,
    clip: Clip,
    tr: Trace,
    logits: torch.Tensor,
    target: int | str | None = None,
    batch_index: int = 0,
) -> PointsExplanation:
    """The points explanation of a forward pass already traced (``logits`` are its output)."""
    if not tr.points:
        raise ValueError("this model records no interactive points (it has no ILA modules)")
    layers = [
        PointsLayer(
            name=name,
            points=tr.points[name][batch_index].numpy().astype(np.float32),
            points_px=tr.points_px[name][batch_index].numpy().astype(np.float32),
            mask_pre=tr.masks_pre[name][batch_index].numpy().astype(np.float32),
            mask_cur=tr.masks_cur[name][batch_index].numpy().astype(np.float32),
        )
        for name in tr.points
    ]
    index = resolve_target(model, logits, target)
    return PointsExplanation(
        layers=layers,
        input_size=int(clip.tensor.shape[-1]),
        num_frames=clip.num_frames,
        target=index,
        target_label=label_of(model, index),
        frame_indices=clip.frame_indices,
        timestamps=clip.frame_timestamps,
        meta={"convention": "x = column, y = row, pixels of the model input crop (0 = left/top edge)"},
    )
