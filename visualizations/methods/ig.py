"""Integrated Gradients (Sundararajan et al. 2017) through Captum, batched with ``internal_batch_size``."""

from __future__ import annotations

import math

import torch
from torch import nn

from tada.video import Clip
from visualizations._model import Progress, auto_batch, counting, forward_logits
from visualizations.methods._common import MethodResult, per_frame_sum, to_frame_maps

__all__ = ["attribute", "make_baseline"]


def make_baseline(model: nn.Module, x: torch.Tensor, baseline: str | float | torch.Tensor = "mean") -> torch.Tensor:
    """The reference input: ``"mean"`` (0 after normalisation = the dataset mean colour), ``"black"``
    (pixel value 0 normalised with the model's mean/std), a number, or a tensor shaped like ``x``."""
    if isinstance(baseline, torch.Tensor):
        return baseline.to(x).expand_as(x)
    if isinstance(baseline, int | float):
        return torch.full_like(x, float(baseline))
    if baseline == "mean":
        return torch.zeros_like(x)
    if baseline == "black":
        cfg = getattr(model, "pretrained_cfg", None)
        mean = torch.tensor(getattr(cfg, "mean", (0.0, 0.0, 0.0)), dtype=x.dtype, device=x.device)
        std = torch.tensor(getattr(cfg, "std", (1.0, 1.0, 1.0)), dtype=x.dtype, device=x.device)
        shape = [1, 1, 1, 1, 1]
        shape[cfg.channel_dim if cfg is not None else 1] = 3
        return (-mean / std).view(shape).expand_as(x).clone()
    raise ValueError(f"unknown baseline {baseline!r} (use 'mean', 'black', a number or a tensor)")


def attribute(
    model: nn.Module,
    clip: Clip,
    target: int,
    progress: Progress | None = None,
    n_steps: int = 32,
    internal_batch_size: int | None = None,
    baseline: str | float | torch.Tensor = "mean",
    method: str = "gausslegendre",
    signed: bool = False,
) -> MethodResult:
    """IG from ``baseline`` to the clip; maps are the L1 norm over colour channels of the attributions
    (a magnitude: where the evidence is), or with ``signed`` their sum over colour channels (positive =
    the pixel raises the target's logit relative to the baseline, negative = it speaks against it).

    ``internal_batch_size``: interpolation steps per forward/backward (default: as many as fit a fixed
    memory budget, see :func:`visualizations._model.auto_batch`).
    """
    from captum.attr import IntegratedGradients

    x = clip.tensor.clone().requires_grad_(True)  # Captum warns otherwise
    internal_batch_size = auto_batch(x, n_steps, internal_batch_size)
    base = make_baseline(model, x, baseline)
    calls = math.ceil(n_steps / internal_batch_size) + 1  # +1: the convergence-delta forward
    fwd = counting(forward_logits(model), calls, progress, "integrated gradients")
    with torch.enable_grad():
        attr, delta = IntegratedGradients(fwd).attribute(
            x,
            baselines=base,
            target=target,
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size,
            return_convergence_delta=True,
        )
    signed_maps = to_frame_maps(attr, model, "sum")
    maps = signed_maps if signed else to_frame_maps(attr, model, "abs_sum")
    signed_total = signed_maps.reshape(maps.shape[0], -1).sum(1)
    return MethodResult(
        heatmaps=maps,
        frame_importance=per_frame_sum(maps),
        signed=signed,
        meta={
            "n_steps": n_steps,
            "internal_batch_size": internal_batch_size,
            "baseline": baseline if isinstance(baseline, str | int | float) else "tensor",
            "convergence_delta": float(delta.abs().sum()),
            "signed_frame_totals": signed_total.tolist(),
            "output": "logit",
            "map": "sum over colour channels of the attributions (signed)"
            if signed
            else "L1 norm over colour channels of the attributions",
        },
    )
