"""Shared plumbing of the attribution methods: reducing input-shaped attributions to per-frame maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tada.video import Clip
from visualizations._model import time_dim

__all__ = ["MethodResult", "to_frame_maps", "resize_maps", "per_frame_sum"]


@dataclass
class MethodResult:
    """What an algorithm computes: (T, H, W) maps, a (T,) curve, whether the maps carry a sign, settings."""

    heatmaps: np.ndarray
    frame_importance: np.ndarray
    signed: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def to_frame_maps(attr: torch.Tensor, model: nn.Module, reduce: str = "abs_sum") -> np.ndarray:
    """Input-shaped attributions (1, ..., 5-D in the model layout) -> (T, H, W) float32.

    ``reduce``: ``"abs_sum"`` (L1 over colour channels, a magnitude), ``"sum"`` (signed channel sum) or
    ``"mean"`` (signed channel mean, for perturbation methods whose value repeats over channels).
    """
    a = attr.detach().float()[0]  # drop batch
    if time_dim(model) == 1:  # (T, C, H, W) -> (C, T, H, W)
        a = a.transpose(0, 1)
    if reduce == "abs_sum":
        out = a.abs().sum(0)
    elif reduce == "sum":
        out = a.sum(0)
    elif reduce == "mean":
        out = a.mean(0)
    else:
        raise ValueError(f"unknown reduction {reduce!r}")
    return out.cpu().numpy().astype(np.float32)


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, h, w) maps to (N, H, W)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def per_frame_sum(maps: np.ndarray) -> np.ndarray:
    """(T,) total of each frame's map (the per-frame curve of the map-based methods)."""
    return maps.reshape(maps.shape[0], -1).sum(1).astype(np.float32)


def input_hw(clip: Clip) -> tuple[int, int]:
    return int(clip.tensor.shape[-2]), int(clip.tensor.shape[-1])
