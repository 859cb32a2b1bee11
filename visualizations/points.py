"""ILA interactive points and alignment masks from a traced forward pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

import tada
from visualizations._model import as_clip_input, forward_logits, label_of, resolve_target
from visualizations.explanation import PointsExplanation, PointsLayer

__all__ = ["points_explanation"]


def points_explanation(
    model: nn.Module, clip: Any, target: int | str | None = None, batch_index: int = 0
) -> PointsExplanation:
    """Trace one forward pass and collect every ILA layer's points (forward order)."""
    ci = as_clip_input(model, clip)
    with torch.no_grad(), tada.trace(model) as tr:
        logits = forward_logits(model)(ci.tensor)
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
        input_size=int(ci.tensor.shape[-1]),
        num_frames=ci.num_frames,
        target=index,
        target_label=label_of(model, index),
        frame_indices=ci.frame_indices,
        timestamps=ci.timestamps,
        meta={"convention": "x = column, y = row, pixels of the model input crop (0 = left/top edge)"},
    )
