"""Where and how models run: the device, the precision policy (bf16 only where it agrees with fp32),
CPU threads, and the functions that need the accelerator, each under ``@spaces.GPU`` (a no-op off
ZeroGPU Spaces).

On a ZeroGPU Space a GPU is attached only while such a function runs, for at most its ``duration``
(seconds), so the durations below are sized to the job: a forward pass is short, attributions
scale with their number of steps.  Models are loaded and moved to ``cuda`` outside these functions
(in the main process, as ZeroGPU requires); clips are decoded outside too.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import tada
from tada import precision
from tada.precision import BF16_TOLERANCE
from tada.video import Clip

try:  # the `spaces` package is in requirements.txt; keep the app usable without it
    import spaces

    _gpu = spaces.GPU
    ZERO_GPU = bool(getattr(getattr(spaces, "config", None), "Config", None) and spaces.config.Config.zero_gpu)
except Exception:  # noqa: BLE001 - any import problem means "not on ZeroGPU"

    def _gpu(task: Any = None, **_kwargs: Any) -> Any:
        return task if task is not None else (lambda fn: fn)

    ZERO_GPU = False

__all__ = [
    "BF16_TOLERANCE",
    "TINY_MODEL_PARAMS",
    "ZERO_GPU",
    "bf16_difference",
    "choose_precision",
    "default_device",
    "explain",
    "explain_duration",
    "forward",
    "forward_with_internals",
    "cpu_budget",
    "limit_malloc_arenas",
    "set_thread_budget",
    "threads_for",
]

#: Models with fewer parameters run on one CPU thread (see :func:`threads_for`).
TINY_MODEL_PARAMS = 5_000_000


def default_device() -> str:
    """``cuda`` when a GPU is present (or will be attached by ZeroGPU), else ``cpu``."""
    if ZERO_GPU or os.environ.get("SPACES_ZERO_GPU"):
        return "cuda"
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_precision(model: nn.Module, device: torch.device, want: str) -> tuple[str, str]:
    """:func:`tada.precision.choose_precision` with the check run on the accelerator (``@spaces.GPU``
    on ZeroGPU)."""
    return precision.choose_precision(model, device, want, difference=bf16_difference)


def bf16_difference(model: nn.Module, device: torch.device) -> float:
    """:func:`tada.precision.bf16_difference`, run on the accelerator (under ``@spaces.GPU`` on ZeroGPU)."""
    return _bf16_difference_on(model, precision.check_input(model), device)


def threads_for(model: nn.Module, device: torch.device) -> int | None:
    """CPU threads for ``model`` (None: torch's default).  One for tiny models: their ops are too
    small to split, and on a busy machine waiting for a second core costs far more than it saves
    (measured: 9 ms with 1 thread vs 380 ms with 2 on a loaded 2-core host).
    ``$TADA_TORCH_THREADS`` overrides."""
    if os.environ.get("TADA_TORCH_THREADS"):
        return max(1, int(os.environ["TADA_TORCH_THREADS"]))
    if device.type != "cpu":
        return None
    params = sum(p.numel() for p in model.parameters())
    return 1 if params < TINY_MODEL_PARAMS else None


def _forward_duration(*_args: Any, **_kwargs: Any) -> int:
    return 30


@_gpu(duration=_forward_duration)
def forward(model: nn.Module, x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """Logits ``(B, K)`` on the CPU for ``x`` (bf16 autocast when ``precision == "bf16"``)."""
    return _logits(model, x, device, precision)


def _logits(model: nn.Module, x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    with torch.inference_mode():
        if precision == "bf16":
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
                out = model(x)
        else:
            out = model(x)
    return out.float().cpu()


@_gpu(duration=_forward_duration)
def forward_with_internals(
    model: nn.Module, view: Clip, device: torch.device, precision: str, kind: str
) -> tuple[torch.Tensor, dict[str, Any]]:
    """:func:`forward` of one view, traced: its logits ``(1, K)`` and the ``kind`` explanation
    (``"calibration"`` or ``"points"``) built from that same pass, as ``{kind: explanation}``, or
    ``{kind + "_error": reason}`` for a model without such layers.  The model runs once."""
    from visualizations.explain import from_trace

    with tada.trace(model) as tr:
        logits = _logits(model, view.tensor, device, precision)
    try:
        return logits, {kind: from_trace(model, view, tr, logits, kind)}
    except ValueError as exc:  # a model without such layers
        return logits, {f"{kind}_error": str(exc)}


_bf16_difference_on = _gpu(duration=_forward_duration)(precision.bf16_difference_on)


def explain_duration(
    model: nn.Module,
    view: Any,
    method: str,
    target: Any,
    progress: Any,
    device: Any,
    opts: dict[str, Any],
) -> int:
    """ZeroGPU slot length for one explanation: the method's cost in :data:`visualizations.METHODS`
    (15 s for a name not in it)."""
    from visualizations import METHODS

    entry = METHODS.get(method)
    return entry.cost(opts) if entry is not None else 15


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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt parameters (malloc.h)


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default) or 0)
    except ValueError:
        return default


def limit_malloc_arenas() -> dict[str, int]:
    """Tune glibc's allocator for a long-running server; returns what was set (empty off glibc).

    * ``TADA_MALLOC_ARENAS`` (default 2; 0 keeps glibc's 8 per core): every thread that allocates
      under contention gets an arena of its own, and glibc rarely gives their memory back.
    * ``TADA_MALLOC_MMAP_KB`` (default 1024; 0 keeps glibc's sliding threshold): blocks from this size
      up are mapped on their own and unmapped when freed.  glibc's own threshold climbs to 32 MiB
      after the first large free, after which tensors land in the arenas and stay there fragmented;
      a fixed threshold (with a trim threshold of 4x it) hands them back at once.

    Measured by bench/bench_load.py (8 clients x 20 requests, README "Under load"): the mixed round
    grew the server by ~0.6 GiB with glibc's defaults.  The fixed threshold has a price: on the idle host
    the attribution-heavy round took 135 s against 98 s with the sliding one (arenas capped in both; steady
    memory 1.17 against 1.32 GiB), so a host with memory to spare may set ``TADA_MALLOC_MMAP_KB=0``.
    Called by ``app.py`` before Gradio and torch start their threads; a ``MALLOC_ARENA_MAX`` /
    ``MALLOC_MMAP_THRESHOLD_`` in the environment, read by glibc at start, wins over the matching setting.
    """
    settings: dict[str, int] = {}
    arenas = _env_int("TADA_MALLOC_ARENAS", 2)
    if arenas > 0 and "MALLOC_ARENA_MAX" not in os.environ:
        settings["arenas"] = arenas
    mmap_kb = _env_int("TADA_MALLOC_MMAP_KB", 1024)
    if mmap_kb > 0 and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        settings["mmap_threshold"] = mmap_kb * 1024
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
            settings["trim_threshold"] = 4 * mmap_kb * 1024
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return {}
    params = {"arenas": _M_ARENA_MAX, "mmap_threshold": _M_MMAP_THRESHOLD, "trim_threshold": _M_TRIM_THRESHOLD}
    return {k: v for k, v in settings.items() if mallopt(params[k], v) == 1}


def cpu_budget() -> int:
    """CPU cores this process may really use: its affinity mask, capped by a cgroup CPU quota (a
    container or a Space often sees every core of the host but is allowed two)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max", encoding="ascii").read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))  # ceil
    except (OSError, ValueError):
        pass
    return max(1, cores)


def set_thread_budget() -> int:
    """Set torch's CPU threads to :func:`cpu_budget` (``$TADA_TORCH_THREADS`` wins) and its inter-op
    pool to one thread; returns the intra-op count.

    torch otherwise starts one thread per physical core it can see, which in a container is the host's:
    each is another thread stack and malloc arena, and more threads than allowed cores only wait on
    each other.  Models are run one request at a time per model (see ``app.service``), so one pool
    of the allowed size is the whole budget; tiny models still drop to one thread (:func:`threads_for`).
    """
    if os.environ.get("TADA_THREAD_BUDGET", "1") == "0":  # the bench's "before": torch's own choice
        return torch.get_num_threads()
    n = _env_int("TADA_TORCH_THREADS", 0) or cpu_budget()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already started (set once per process): keep what it has
        pass
    return n
