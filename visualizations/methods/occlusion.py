"""Spatio-temporal occlusion (Zeiler & Fergus 2014) with Captum: slide a (frames x pixels) box over the clip."""

from __future__ import annotations

import math

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
from visualizations.methods._common import MethodResult, input_hw, to_frame_maps

__all__ = ["INPUT_BUDGET", "attribute"]

#: Input elements over all occluded copies below which the default boxes get finer (see ``attribute``).
INPUT_BUDGET = 24_000_000


def attribute(
    model: nn.Module,
    clip: Clip,
    target: int,
    progress: Progress | None = None,
    window_frames: int = 2,
    window_px: int | None = None,
    stride_frames: int | None = None,
    stride_px: int | None = None,
    baseline: float = 0.0,
    perturbations_per_eval: int | None = None,
) -> MethodResult:
    """Each cell's value is the drop of the target logit when a box covering it is replaced by
    ``baseline`` (0 = the mean colour), averaged over the boxes covering it; negative = hiding it helps.

    Defaults: boxes of 2 frames, not overlapping, on the finest of an 8 x 8, 6 x 6 or 4 x 4 spatial grid
    whose occluded copies stay within :data:`INPUT_BUDGET` input elements (every box is one more forward
    pass): small clips get fine boxes, large ones coarse boxes and a bounded cost.  Why not always coarse:
    with a 4 x 4 grid on 32-px clips the tiny TAdaFormer's energy in the moving object's boxes fell from
    4.5x to 2.7x the boxes' share of the frame; why not always fine: an 8 x 8 grid on 8 x 112 x 112 took
    1.7 s on 2 cores for the tiny TAdaConvNeXtV2.
    """
    from captum.attr import Occlusion

    x = clip.tensor
    h, w = input_hw(clip)
    t = clip.num_frames
    if not window_px:
        depth = math.ceil(t / min(window_frames, t))
        grid = next((g for g in (8, 6, 4) if g * g * depth * x[0].numel() <= INPUT_BUDGET), 4)
        window_px = max(2, math.ceil(min(h, w) / grid))
    stride_px = stride_px or window_px
    window_frames = min(window_frames, t)
    stride_frames = stride_frames or window_frames
    if time_dim(model) == 1:  # (T, C, H, W) without batch
        shape, strides = (window_frames, x.shape[2], window_px, window_px), (stride_frames, 1, stride_px, stride_px)
    else:
        shape, strides = (x.shape[1], window_frames, window_px, window_px), (1, stride_frames, stride_px, stride_px)
    n_windows = (
        (math.ceil((t - window_frames) / stride_frames) + 1)
        * (math.ceil((h - window_px) / stride_px) + 1)
        * (math.ceil((w - window_px) / stride_px) + 1)
    )
    perturbations_per_eval = auto_batch(x, 64, perturbations_per_eval, NO_GRAD_BATCH_BUDGET)
    calls = 1 + math.ceil(n_windows / perturbations_per_eval)
    fwd = counting(forward_logits(model), calls, progress, "occlusion")
    with torch.no_grad():
        attr = Occlusion(fwd).attribute(
            x,
            sliding_window_shapes=shape,
            strides=strides,
            baselines=baseline,
            target=target,
            perturbations_per_eval=perturbations_per_eval,
        )
    maps = to_frame_maps(attr, model, "mean")
    return MethodResult(
        heatmaps=maps,
        # A frame's curve value: the mean logit drop over its pixels (same units as the maps).
        frame_importance=maps.reshape(t, -1).mean(1),
        signed=True,
        meta={
            "window_frames": window_frames,
            "window_px": window_px,
            "stride_frames": stride_frames,
            "stride_px": stride_px,
            "windows": n_windows,
            "baseline": baseline,
            "output": "logit",
        },
    )
