"""Attention rollout (Abnar & Zuidema 2020) for the transformer models (TAdaFormer, ILA).

Attention maps come from ``tada.trace(model, attention=True)``: the blocks then run the same attention
through the weight-returning path, so the prediction does not change.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import tada
from tada.video import Clip
from visualizations._model import Progress, forward_logits, positions_to_frames, temporal_positions
from visualizations.methods._common import MethodResult, input_hw, resize_maps

__all__ = ["attribute", "rollout"]


def rollout(maps: list[torch.Tensor], head_fusion: str = "mean") -> torch.Tensor:
    """Roll attention (N, heads, L, L) through the layers: fuse heads, add the residual identity,
    renormalise rows, multiply. Returns (N, L, L): how much each output token draws on each input token."""
    result = None
    for a in maps:
        a = a.float()
        a = a.mean(1) if head_fusion == "mean" else a.amax(1)
        a = a + torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    if result is None:
        raise ValueError("no attention maps to roll out")
    return result


def _spatial_and_temporal(trace: tada.Trace, frames: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    spatial, temporal = [], []
    for name, a in trace.attention.items():
        seq = a.shape[-1]
        if ".mit." in f".{name}." or name.startswith("mit"):
            if seq == frames:
                temporal.append(a)
        elif seq > 1 and math.isqrt(seq - 1) ** 2 == seq - 1:
            spatial.append(a)
    if spatial:  # keep the visual tower only (the most common sequence length among square ones)
        lengths = [a.shape[-1] for a in spatial]
        seq = max(set(lengths), key=lengths.count)
        spatial = [a for a in spatial if a.shape[-1] == seq]
    return spatial, temporal


def attribute(
    model: nn.Module,
    clip: Clip,
    target: int,
    progress: Progress | None = None,
    head_fusion: str = "mean",
) -> MethodResult:
    """Per-frame maps: the rolled-out attention of each frame's class token on its patches.

    The per-frame curve is, for ILA, the rollout of its frame-integration transformer (MIT), averaged
    over output frames as the model does; for TAdaFormer (whose class tokens are averaged over time
    with equal weights) it is the share of each frame's class token drawn from its patches.
    Rollout ignores the MLPs and TAda/ILA branches and does not depend on the target class.
    """
    t = clip.num_frames
    with torch.no_grad(), tada.trace(model, attention=True) as tr:
        forward_logits(model)(clip.tensor)
    if progress is not None:
        progress(1.0, "attention rollout")
    spatial, temporal = _spatial_and_temporal(tr, t)
    if not spatial:
        raise ValueError("attention rollout needs a transformer that records attention (TAdaFormer, ILA)")
    rolled = rollout(spatial, head_fusion)  # (B*T', L, L)
    positions = rolled.shape[0] // clip.tensor.shape[0]
    side = math.isqrt(rolled.shape[-1] - 1)
    cls_rows = rolled[:positions, 0]  # first clip of the batch
    patch = cls_rows[:, 1:].reshape(positions, side, side)
    maps = resize_maps(patch, input_hw(clip)).cpu().numpy()
    cover = temporal_positions(model, t, positions)
    maps = positions_to_frames(maps, cover, t)
    meta: dict[str, object] = {
        "layers": len(spatial),
        "head_fusion": head_fusion,
        "frame_map": cover,
        "class_agnostic": True,
    }
    if temporal:
        r = rollout(temporal, head_fusion)[0]  # (T, T)
        # MIT adds its input back after the blocks, then averages over frames.
        r = (r + torch.eye(t)) / 2
        importance = r.mean(0).cpu().numpy()
        meta["frame_curve"] = "MIT attention rollout (mean over output frames)"
    else:
        importance = positions_to_frames(cls_rows[:, 1:].sum(1).cpu().numpy(), cover, t)
        meta["frame_curve"] = "share of each frame's class token drawn from its patches"
    return MethodResult(
        heatmaps=maps.astype(np.float32), frame_importance=np.asarray(importance, np.float32), meta=meta
    )
