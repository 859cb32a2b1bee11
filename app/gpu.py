"""The functions that need the accelerator, each under ``@spaces.GPU`` (a no-op off ZeroGPU Spaces).

On a ZeroGPU Space a GPU is attached only while such a function runs, for at most its ``duration``
(seconds), so the durations below are sized to the job: a forward pass is short, attributions
scale with their number of steps.  Models are loaded and moved to ``cuda`` outside these functions
(in the main process, as ZeroGPU requires); clips are decoded outside too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

try:  # the `spaces` package is in requirements.txt; keep the app usable without it
    import spaces

    _gpu = spaces.GPU
    ZERO_GPU = bool(getattr(getattr(spaces, "config", None), "Config", None) and spaces.config.Config.zero_gpu)
except Exception:  # noqa: BLE001 - any import problem means "not on ZeroGPU"

    def _gpu(task: Any = None, **_kwargs: Any) -> Any:
        return task if task is not None else (lambda fn: fn)

    ZERO_GPU = False

__all__ = ["ZERO_GPU", "bf16_difference", "default_device", "explain", "explain_duration", "forward"]


def default_device() -> str:
    """``cuda`` when a GPU is present (or will be attached by ZeroGPU), else ``cpu``."""
    if ZERO_GPU or os.environ.get("SPACES_ZERO_GPU"):
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _forward_duration(*_args: Any, **_kwargs: Any) -> int:
    return 30


@_gpu(duration=_forward_duration)
def forward(model: nn.Module, x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """Logits ``(B, K)`` on the CPU for ``x`` (bf16 autocast when ``precision == "bf16"``)."""
    x = x.to(device, non_blocking=True)
    with torch.inference_mode():
        if precision == "bf16":
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
                out = model(x)
        else:
            out = model(x)
    return out.float().cpu()


@_gpu(duration=_forward_duration)
def bf16_difference(model: nn.Module, x: torch.Tensor, device: torch.device) -> float:
    """Largest |p_fp32 - p_bf16| of ``model`` on ``x`` (softmax over classes), computed on ``device``."""
    x = x.to(device)
    with torch.inference_mode():
        p32 = torch.softmax(model(x).float(), -1)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
            p16 = torch.softmax(model(x).float(), -1)
    return float((p32 - p16).abs().max())


#: Rough GPU seconds per method (plus steps for the iterative ones), used to size ZeroGPU slots.
_BASE_SECONDS = {
    "integrated_gradients": 10,
    "smoothgrad": 10,
    "occlusion": 60,
    "temporal": 20,
    "counterfactuals": 15,
}


def explain_duration(
    model: nn.Module,
    view: Any,
    method: str,
    target: Any,
    progress: Any,
    device: Any,
    opts: dict[str, Any],
) -> int:
    """ZeroGPU slot length for one explanation: 15 s, more for iterative methods (capped at 300 s)."""
    steps = int(opts.get("n_steps", opts.get("nt_samples", 0)) or 0)
    return int(min(300, _BASE_SECONDS.get(method, 15) + 2 * steps))


@_gpu(duration=explain_duration)
def explain(
    model: nn.Module,
    view: Any,
    method: str,
    target: int | str | None,
    progress: Callable[[float, str], Any] | None,
    device: torch.device,
    opts: dict[str, Any],
) -> Any:
    """:func:`visualizations.explain` in fp32 on the model's device."""
    from visualizations import explain as _explain

    if ZERO_GPU:
        progress = None  # the GPU function runs in another process there; a local callback cannot follow
    return _explain(model, view, method, target=target, progress=progress, **opts)
