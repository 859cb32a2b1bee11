"""Capture a model's internals during a forward pass.

``with tada.trace(model) as tr: model(x)`` records, under the official module paths, every
TAdaConv routing function's calibration factors, every ILA module's interactive points and masks,
and (on request) attention maps.  Modules report through :func:`active_trace`, which is a single
context-variable read when no trace is active, so an untraced forward costs nothing extra.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["Trace", "trace", "active_trace", "untraced"]

_R = TypeVar("_R")

_ACTIVE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("tada_trace", default=None)


def active_trace() -> Trace | None:
    """The trace being recorded in this context, or None (the fast path)."""
    return _ACTIVE.get()


def untraced(fn: Callable[[], _R]) -> _R:
    """Run ``fn`` with no active trace.

    For work that must not be recorded, e.g. ILA's cached text side (400 x 77 x 77 attention maps per
    text layer would be large and meaningless for the clip being traced).  A fresh context makes the
    trace context-variable read its default (None) without touching the caller's context.
    """
    return contextvars.Context().run(fn)


def _detach(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().cpu()


def _squeeze_factors(t: torch.Tensor) -> torch.Tensor:
    # Routing functions return (B, C, T, 1, 1); figures and fixtures want (B, C, T).
    while t.dim() > 3 and t.shape[-1] == 1:
        t = t.squeeze(-1)
    return _detach(t)


@dataclass
class Trace:
    """What one traced forward pass recorded (all tensors detached, float32, on the CPU).

    Attributes:
        calibration: module path -> (B, C, T') weight-calibration factors of a TAdaConv layer.
        calibration_bias: module path -> (B, C, T') bias-calibration factors (TAdaConvV2 with bias cal).
        identity: module path -> the factor value meaning "no calibration" (1.0 where the model adds
            the +1 offset, 0.0 where the raw routing output is used, as in TAdaFormer).
        frame_map: module path -> for each temporal position, the input frame indices it covers.
        points: ILA module path -> (B, T-1, 4) interactive points ``[x1, y1, x2, y2]`` per frame pair in
            the official normalised grid convention (x = column, y = row, +-1 = border patch centres).
        points_px: same in pixel coordinates of the model input crop.
        masks_pre, masks_cur: ILA module path -> (B, T-1, G, G) alignment masks of frame p and p+1.
        attention: module path -> (B*T, heads, L, L) attention weights (only with ``attention=True``).
        class_features: ILA per-frame class features (B, T, E).
        num_input_frames: frames in the traced input clip.
    """

    calibration: dict[str, torch.Tensor] = field(default_factory=dict)
    calibration_bias: dict[str, torch.Tensor] = field(default_factory=dict)
    identity: dict[str, float] = field(default_factory=dict)
    frame_map: dict[str, list[list[int]]] = field(default_factory=dict)
    points: dict[str, torch.Tensor] = field(default_factory=dict)
    points_px: dict[str, torch.Tensor] = field(default_factory=dict)
    masks_pre: dict[str, torch.Tensor] = field(default_factory=dict)
    masks_cur: dict[str, torch.Tensor] = field(default_factory=dict)
    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    class_features: torch.Tensor | None = None
    num_input_frames: int | None = None
    want_attention: bool = False
    _names: dict[int, str] = field(default_factory=dict, repr=False)
    _model: nn.Module | None = field(default=None, repr=False)

    # --- naming -------------------------------------------------------------------------------
    def name_of(self, module: nn.Module) -> str:
        """Official module path of ``module`` inside the traced model."""
        return self._names.get(id(module), module.__class__.__name__)

    # --- recording API used by the modules ------------------------------------------------------
    def record_calibration(
        self,
        module: nn.Module,
        weight_factors: torch.Tensor,
        bias_factors: torch.Tensor | None = None,
        identity: float = 1.0,
    ) -> None:
        """Record a routing function's output ((B, C, T, 1, 1) tensors)."""
        name = self.name_of(module)
        self.calibration[name] = _squeeze_factors(weight_factors)
        if bias_factors is not None:
            self.calibration_bias[name] = _squeeze_factors(bias_factors)
        self.identity[name] = float(identity)
        self._fill_frame_map(name, self.calibration[name].shape[-1])

    def record_points(
        self,
        module: nn.Module,
        points: torch.Tensor,
        mask_pre: torch.Tensor,
        mask_cur: torch.Tensor,
        input_size: int,
        patch_size: int,
    ) -> None:
        """Record ILA interactive points (B, T-1, 4) and masks; convert points to input pixels."""
        name = self.name_of(module)
        pts = _detach(points)
        self.points[name] = pts
        # Grid coordinate u in [-1, 1] maps to patch centres: px = S/2 + u * (S - P) / 2.
        self.points_px[name] = input_size / 2 + pts * (input_size - patch_size) / 2
        self.masks_pre[name] = _detach(mask_pre)
        self.masks_cur[name] = _detach(mask_cur)
        self._fill_frame_map(name, pts.shape[1] + 1)

    def record_attention(self, module: nn.Module, weights: torch.Tensor) -> None:
        """Record attention weights (N, heads, L, L) of a self-attention layer."""
        self.attention[self.name_of(module)] = _detach(weights)

    def _fill_frame_map(self, name: str, positions: int) -> None:
        if self.num_input_frames is None or name in self.frame_map:
            return
        fn = getattr(self._model, "temporal_positions", None)
        cover = fn(self.num_input_frames) if fn is not None else None
        if cover is None or len(cover) != positions:
            # Fall back to an even split of the input frames over the positions.
            per = self.num_input_frames / positions
            cover = [list(range(int(i * per), max(int((i + 1) * per), int(i * per) + 1))) for i in range(positions)]
        self.frame_map[name] = [list(c) for c in cover]

    def layers(self) -> list[str]:
        """Every layer that recorded calibration factors, in forward order."""
        return list(self.calibration)


def _input_frames(model: nn.Module, x: torch.Tensor) -> int | None:
    if x.dim() != 5:
        return None
    cfg = getattr(model, "pretrained_cfg", None)
    return int(x.shape[cfg.time_dim if cfg is not None else 2])


@contextmanager
def trace(model: nn.Module, attention: bool = False) -> Iterator[Trace]:
    """Record the internals of every forward pass of ``model`` run inside the block.

    Args:
        model: a model built by :func:`tada.create_model` (any module works; names come from it).
        attention: also record attention weights of the transformer layers (slower: attention is
            then computed with weights instead of the fused kernel; the outputs are unchanged).
    """
    tr = Trace(want_attention=attention)
    tr._names = {id(m): n for n, m in model.named_modules()}
    tr._model = model

    def _pre_hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            tr.num_input_frames = _input_frames(model, args[0])

    handle = model.register_forward_pre_hook(_pre_hook)
    token = _ACTIVE.set(tr)
    try:
        yield tr
    finally:
        _ACTIVE.reset(token)
        handle.remove()
