"""Saliency (|d logit / d input|) and its SmoothGrad average over noisy copies (Captum NoiseTunnel)."""

from __future__ import annotations

import math

import torch
from torch import nn

from tada.video import Clip
from visualizations._model import Progress, auto_batch, counting, forward_logits
from visualizations.methods._common import MethodResult, per_frame_sum, to_frame_maps

__all__ = ["attribute", "saliency"]


def attribute(
    model: nn.Module,
    clip: Clip,
    target: int,
    progress: Progress | None = None,
    nt_samples: int = 8,
    nt_samples_batch_size: int | None = None,
    noise_level: float = 0.15,
    seed: int = 0,
    signed: bool = False,
) -> MethodResult:
    """SmoothGrad: mean of absolute gradients over ``nt_samples`` copies with Gaussian noise of
    standard deviation ``noise_level`` times the clip's value range (Smilkov et al. 2017); with
    ``signed`` the mean of the gradients themselves, summed over colour channels (positive = brighter
    here would raise the target's logit)."""
    from captum.attr import NoiseTunnel, Saliency

    x = clip.tensor.clone().requires_grad_(True)  # Captum warns otherwise
    nt_samples_batch_size = auto_batch(x, nt_samples, nt_samples_batch_size)
    stdev = float(noise_level * (clip.tensor.max() - clip.tensor.min()))
    calls = math.ceil(nt_samples / nt_samples_batch_size)
    fwd = counting(forward_logits(model), calls, progress, "SmoothGrad")
    # Noise is drawn with torch's global generator: fork it so the result is reproducible and the
    # caller's random state is left alone.
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        attr = NoiseTunnel(Saliency(fwd)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=nt_samples,
            nt_samples_batch_size=nt_samples_batch_size,
            stdevs=stdev,
            target=target,
            abs=not signed,
        )
    maps = to_frame_maps(attr, model, "sum" if signed else "abs_sum")
    return MethodResult(
        heatmaps=maps,
        frame_importance=per_frame_sum(maps),
        signed=signed,
        meta={"nt_samples": nt_samples, "noise_level": noise_level, "stdev": stdev, "seed": seed, "output": "logit"},
    )


def saliency(
    model: nn.Module, clip: Clip, target: int, progress: Progress | None = None, signed: bool = False
) -> MethodResult:
    """Plain gradient magnitude (Simonyan et al. 2014), one backward pass; with ``signed`` the gradient
    summed over colour channels (positive = brighter here would raise the target's logit)."""
    from captum.attr import Saliency

    fwd = counting(forward_logits(model), 1, progress, "saliency")
    with torch.enable_grad():
        attr = Saliency(fwd).attribute(clip.tensor.clone().requires_grad_(True), target=target, abs=not signed)
    maps = to_frame_maps(attr, model, "sum" if signed else "abs_sum")
    return MethodResult(heatmaps=maps, frame_importance=per_frame_sum(maps), signed=signed, meta={"output": "logit"})
