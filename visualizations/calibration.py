"""TAdaConv calibration factors from a traced forward pass, with the kernels they calibrate."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from tada.trace import Trace
from tada.video import Clip
from visualizations._model import label_of, resolve_target, traced_forward
from visualizations.explanation import CalibrationExplanation, CalibrationLayer

__all__ = ["base_kernels", "calibration_explanation", "calibration_from_trace", "conv_of_router"]

# Routing-function path -> calibrated-conv path: ``...dwconv_rf`` -> ``...dwconv`` (TAdaConvNeXtV2),
# ``...b_rf`` -> ``...b`` (TAda2D), ``...tadaconv.rf_func`` -> ``...tadaconv`` (TAdaFormer, internal routing).
_SUFFIXES = ("_rf", ".rf_func")


def conv_of_router(model: nn.Module, router: str) -> str | None:
    """Module path of the convolution a routing function calibrates (None when it cannot be found)."""
    modules = dict(model.named_modules())
    for suffix in _SUFFIXES:
        if router.endswith(suffix):
            name = router[: -len(suffix)]
            if name in modules and isinstance(getattr(modules[name], "weight", None), torch.Tensor):
                return name
    return None


def base_kernels(conv: nn.Module, cal_dim: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(C, kh, kw) shared kernel per calibrated channel, plus the partner channel for full convolutions.

    TAdaConv weights are (1, 1, C_out, C_in/groups, kh, kw) in the official layout (plain conv layout
    works too). For depthwise kernels each channel has one kh x kw kernel. For full ones a channel touches
    many; we show the slice with the largest norm and report which partner channel that is.
    """
    w = conv.weight.detach().float().cpu()
    while w.dim() > 4 and w.shape[0] == 1:
        w = w[0]
    if w.dim() != 4:
        raise ValueError(f"unexpected TAdaConv weight shape {tuple(conv.weight.shape)}")
    if w.shape[1] == 1:  # depthwise: channel c's kernel is w[c, 0]
        return w[:, 0].numpy(), None
    if cal_dim == "cin":  # alpha over input channels: W[o, c] for the strongest output channel o
        norms = w.pow(2).sum((2, 3))  # (C_out, C_in)
        partner = norms.argmax(0)
        return w[partner, torch.arange(w.shape[1])].numpy(), partner.numpy()
    norms = w.pow(2).sum((2, 3))
    partner = norms.argmax(1)
    return w[torch.arange(w.shape[0]), partner].numpy(), partner.numpy()


def _cal_dim(conv: nn.Module | None, channels: int) -> str:
    value = getattr(conv, "cal_dim", None) or getattr(conv, "calibration_dim", None)
    if value in ("cin", "cout"):
        return value
    if conv is None:
        return "cout"
    w = conv.weight
    c_in = w.shape[-3] * max(1, int(getattr(conv, "groups", 1)))
    return "cin" if channels == c_in and channels != w.shape[-4] else "cout"


def calibration_explanation(
    model: nn.Module, clip: Any, target: int | str | None = None, batch_index: int = 0
) -> CalibrationExplanation:
    """Trace one forward pass and collect every TAdaConv layer's factors (forward order)."""
    ci, tr, logits = traced_forward(model, clip)
    return calibration_from_trace(model, ci, tr, logits, target, batch_index)


def calibration_from_trace(
    model: nn.Module,
    clip: Clip,
    tr: Trace,
    logits: torch.Tensor,
    target: int | str | None = None,
    batch_index: int = 0,
) -> CalibrationExplanation:
    """The calibration explanation of a forward pass already traced (``logits`` are its output), so
    that a prediction and its internals come from one run of the model."""
    if not tr.calibration:
        raise ValueError("this model records no calibration factors (it has no TAdaConv layers)")
    modules = dict(model.named_modules())
    layers = []
    for name in tr.layers():
        factors = tr.calibration[name][batch_index].numpy()
        bias = tr.calibration_bias.get(name)
        conv_name = conv_of_router(model, name)
        conv = modules.get(conv_name) if conv_name else None
        cal_dim = _cal_dim(conv, factors.shape[0])
        kernel = partner = None
        if conv is not None:
            kernel, partner = base_kernels(conv, cal_dim)
            if kernel.shape[0] != factors.shape[0]:
                kernel = partner = None  # calibrated axis does not match: do not guess
        layers.append(
            CalibrationLayer(
                name=name,
                factors=factors.astype(np.float32),
                bias_factors=None if bias is None else bias[batch_index].numpy().astype(np.float32),
                identity=float(tr.identity.get(name, 1.0)),
                frame_map=tr.frame_map.get(name, [[t] for t in range(factors.shape[1])]),
                conv_name=conv_name,
                cal_dim=cal_dim,
                base_kernel=kernel,
                kernel_partner=partner,
            )
        )
    index = resolve_target(model, logits, target)
    return CalibrationExplanation(
        layers=layers,
        num_input_frames=clip.num_frames,
        target=index,
        target_label=label_of(model, index),
        frame_indices=clip.frame_indices,
        timestamps=clip.frame_timestamps,
        meta={"identity_note": "1 = the model adds +1 to the routing output; 0 = raw routing output"},
    )
