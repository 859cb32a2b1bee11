"""When bf16 may stand in for fp32: one acceptance check for the app and ``python -m tada batch``.

bf16 autocast is used only where a model's class probabilities on a fixed random clip stay within
:data:`BF16_TOLERANCE` of fp32 (the check runs on the device that will do the work).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["BF16_TOLERANCE", "bf16_difference", "bf16_difference_on", "check_input", "choose_precision"]

#: Largest absolute difference of class probabilities accepted before bf16 is used.
BF16_TOLERANCE = 0.01


def check_input(model: nn.Module) -> torch.Tensor:
    """The fixed random clip of the check (seed 0, the model's input shape from its config)."""
    return torch.randn(model.pretrained_cfg.input_shape(), generator=torch.Generator().manual_seed(0))


def bf16_difference_on(model: nn.Module, x: torch.Tensor, device: torch.device) -> float:
    """Largest |p_fp32 - p_bf16| of ``model`` on ``x`` (softmax over classes), computed on ``device``."""
    x = x.to(device)
    with torch.inference_mode():
        p32 = torch.softmax(model(x).float(), -1)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
            p16 = torch.softmax(model(x).float(), -1)
    return float((p32 - p16).abs().max())


def bf16_difference(model: nn.Module, device: torch.device) -> float:
    """Largest |p_fp32 - p_bf16| over classes on the fixed random clip of :func:`check_input`."""
    return bf16_difference_on(model, check_input(model), device)


def choose_precision(
    model: nn.Module,
    device: torch.device,
    want: str = "auto",
    difference: Callable[[nn.Module, torch.device], float] = bf16_difference,
) -> tuple[str, str]:
    """``("fp32" | "bf16", note)`` for ``model`` on ``device``.

    ``want``: ``"auto"`` (bf16 on a GPU when it agrees with fp32 within :data:`BF16_TOLERANCE`, fp32 on a
    CPU), ``"fp32"``, or ``"bf16"`` (checked the same way, on any device). ``difference`` computes the
    check (the app passes its ZeroGPU-wrapped one).
    """
    if want not in ("auto", "fp32", "bf16"):
        raise ValueError("precision must be 'auto', 'fp32' or 'bf16'")
    if want == "fp32" or (want == "auto" and device.type != "cuda"):
        return "fp32", ""
    diff = difference(model, device)
    if diff <= BF16_TOLERANCE:
        return "bf16", f"bf16 checked: max |Δp| = {diff:.4f} <= {BF16_TOLERANCE}"
    return "fp32", f"bf16 rejected: max |Δp| = {diff:.4f} > {BF16_TOLERANCE}"
