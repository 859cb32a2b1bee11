"""Small facts about a model and a clip that every explainer needs (layout, time axis, target, labels)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from tada.video import Clip

__all__ = [
    "as_clip_input",
    "forward_logits",
    "input_layout",
    "label_of",
    "positions_to_frames",
    "resolve_target",
    "temporal_positions",
    "time_dim",
]

Progress = Callable[[float, str], Any]


def input_layout(model: nn.Module) -> str:
    """``"BCTHW"`` (TAdaConv family, bundled models) or ``"BTCHW"`` (ILA)."""
    return getattr(getattr(model, "pretrained_cfg", None), "input_layout", "BCTHW") or "BCTHW"


def time_dim(model: nn.Module) -> int:
    """Index of the time axis of the model's 5-D input."""
    cfg = getattr(model, "pretrained_cfg", None)
    return cfg.time_dim if cfg is not None else 2


def as_clip_input(model: nn.Module, clip: Any) -> Clip:
    """One view ready for an explainer: a :class:`tada.video.Clip` of one view (its frame indices,
    timestamps and display frames kept) or a bare tensor (with or without batch), as float32 on the
    model's device, in the model's layout."""
    if isinstance(clip, torch.Tensor):
        clip = Clip.from_tensor(clip, input_layout(model))
    elif not isinstance(clip, Clip):
        raise TypeError(f"expected a Clip or a tensor, got {type(clip).__name__}")
    tensor = clip.tensor
    if tensor.dim() != 5:
        raise ValueError(f"expected a 5-D clip tensor in the model layout, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] != 1:
        raise ValueError("explain() takes one clip at a time (batch size 1)")
    param = next(model.parameters(), None)
    tensor = tensor.detach().float()
    if param is not None:
        tensor = tensor.to(param.device)
    return replace(clip, tensor=tensor, input_layout=input_layout(model))


def forward_logits(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> logits (B, K)`` (a model returning a tuple gives its first element)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        return out[0] if isinstance(out, tuple | list) else out

    return fn


def traced_forward(model: nn.Module, clip: Any) -> tuple[Clip, Any, torch.Tensor]:
    """One forward pass under :func:`tada.trace`: ``(clip as a model input, trace, logits)``.

    What the calibration and points explanations need when no prediction has traced the model yet.
    """
    import tada

    ci = as_clip_input(model, clip)
    with torch.no_grad(), tada.trace(model) as tr:
        logits = forward_logits(model)(ci.tensor)
    return ci, tr, logits


def counting(fn: Callable[[torch.Tensor], torch.Tensor], total_calls: int, progress: Progress | None, message: str):
    """Wrap a forward function so that each call reports ``progress(done / total, message)``."""
    if progress is None:
        return fn
    state = {"n": 0}

    def wrapped(x: torch.Tensor) -> torch.Tensor:
        out = fn(x)
        state["n"] += 1
        progress(min(1.0, state["n"] / max(1, total_calls)), message)
        return out

    return wrapped


def label_of(model: nn.Module, index: int) -> str:
    """The class name of ``index`` when the model knows its label set, else ``"class <index>"``."""
    try:
        labels = model.labels  # type: ignore[attr-defined]
        if 0 <= index < len(labels):
            return str(labels[index])
    except Exception:  # noqa: BLE001 - any model without a readable label set falls back to numbers
        pass
    return f"class {index}"


def resolve_target(model: nn.Module, logits: torch.Tensor, target: int | str | None) -> int:
    """The predicted class for ``None``, an index, or a class name of the model's label set."""
    if target is None:
        return int(logits[0].argmax())
    if isinstance(target, str):
        try:
            labels = [str(label) for label in model.labels]  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"model has no label set to look up {target!r}") from exc
        if target not in labels:
            raise ValueError(f"unknown class {target!r}")
        return labels.index(target)
    index = int(target)
    if not 0 <= index < logits.shape[-1]:
        raise ValueError(f"target {index} out of range for {logits.shape[-1]} classes")
    return index


def temporal_positions(model: nn.Module, num_frames: int, positions: int) -> list[list[int]]:
    """Input frames covered by each of ``positions`` temporal positions inside the model."""
    fn = getattr(model, "temporal_positions", None)
    cover = fn(num_frames) if fn is not None else None
    if cover is not None and len(cover) == positions:
        return [list(c) for c in cover]
    per = num_frames / positions
    return [list(range(int(i * per), max(int((i + 1) * per), int(i * per) + 1))) for i in range(positions)]


def positions_to_frames(values: np.ndarray, cover: Sequence[Sequence[int]], num_frames: int) -> np.ndarray:
    """Spread per-position values (P, ...) onto input frames (T, ...): each frame averages the positions
    that cover it (a frame no position covers takes its nearest position)."""
    values = np.asarray(values)
    out = np.zeros((num_frames, *values.shape[1:]), dtype=np.float32)
    count = np.zeros(num_frames, dtype=np.float32)
    centres = []
    for p, frames in enumerate(cover):
        centres.append(float(np.mean(frames)) if len(frames) else p * num_frames / max(1, len(cover)))
        for f in frames:
            out[f] += values[p]
            count[f] += 1
    for f in range(num_frames):
        if count[f] == 0:
            out[f] = values[int(np.argmin([abs(c - f) for c in centres]))]
            count[f] = 1
    return out / count.reshape(-1, *([1] * (values.ndim - 1)))


#: Input elements per batch in the attribution loops: big enough that tiny models run in one or two
#: batches, small enough that a 16 x 224 x 224 clip goes one copy at a time through forward + backward.
BATCH_BUDGET = 4_000_000
#: The same for forward-only loops (occlusion, ablation, deletion): no activations are kept for a
#: backward pass, and bigger batches run faster per clip on CPU.
NO_GRAD_BATCH_BUDGET = 16_000_000


def auto_batch(x: torch.Tensor, cap: int, requested: int | None = None, budget: int = BATCH_BUDGET) -> int:
    """``requested`` if given, else how many copies of ``x`` fit ``budget`` input elements (1 .. ``cap``)."""
    if requested is not None:
        return max(1, int(requested))
    per = max(1, x[0].numel())
    return int(max(1, min(cap, budget // per)))
