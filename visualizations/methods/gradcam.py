"""Grad-CAM (Selvaraju et al. 2017) on any layer, CNN or transformer, through Captum's ``LayerGradCam``.

Captum weights a layer's channels by their mean gradient over every axis after the channel axis, so it
needs the activation as (B, C, T', h, w). A CNN stage already is; a 2-D frame model's layer is (B*T, C, h, w)
and a transformer block's residual stream is (L, B*T', C) with a class token. We fold those into
(B, C, T', h, w) with an identity module spliced in through a forward hook: it only reshapes, so the
model's numbers are unchanged and Captum sees a video-shaped layer.
"""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from tada.video import Clip
from visualizations._model import Progress, counting, forward_logits, positions_to_frames, temporal_positions
from visualizations.methods._common import MethodResult, input_hw, per_frame_sum, resize_maps

__all__ = ["attribute", "default_layer", "layer_candidates", "fold"]

#: Per family, the stages (CNN) or residual blocks (transformer), in forward order.
FAMILY_PATTERNS = (
    r"backbone\.stages\.\d+",  # TAdaConvNeXtV2
    r"backbone\.conv[2-5]",  # TAda2D (ResNet stages)
    r"backbone\.layers\.\d+",  # TAdaFormer residual blocks
    r"visual\.transformer\.resblocks\.\d+",  # ILA visual blocks
)


def family_blocks(model: nn.Module) -> list[str]:
    """Stage / block module paths of a known family (empty for other models)."""
    names = [n for n, _ in model.named_modules()]
    for pattern in FAMILY_PATTERNS:
        hits = [n for n in names if re.fullmatch(pattern, n)]
        if hits:
            return hits
    return []


class _Grid(nn.Module):
    """Identity; exists so that Captum can hook a (B, C, T', h, w) view of a layer's output."""

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return grid


def fold(t: torch.Tensor, batch: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]] | None:
    """(B, C, T', h, w) view of a layer output plus the inverse, or None when the output is not a map.

    Handles (B, C, T', h, w) CNN maps, (B*T', C, h, w) frame-wise maps and (L, B*T', C) tokens with
    L = h*w (+1 class token, kept aside and passed through).
    """
    if t.dim() == 5 and t.shape[0] == batch:
        return t, lambda g: g
    if t.dim() == 4 and t.shape[0] % batch == 0:
        n, c, h, w = t.shape
        tt = n // batch
        grid = t.reshape(batch, tt, c, h, w).transpose(1, 2)
        return grid, lambda g: g.transpose(1, 2).reshape(n, c, h, w)
    if t.dim() == 3 and t.shape[1] % batch == 0:
        seq, n, c = t.shape
        cls_tokens = 1 if math.isqrt(seq - 1) ** 2 == seq - 1 and seq > 1 else 0
        side = math.isqrt(seq - cls_tokens)
        if side * side != seq - cls_tokens or side < 2:
            return None
        tt = n // batch
        head, patches = t[:cls_tokens], t[cls_tokens:]
        # (h*w, B*T', C) -> (B, C, T', h, w); frames are batch-major (n = b*T' + t).
        grid = patches.reshape(side, side, batch, tt, c).permute(2, 4, 3, 0, 1)

        def unfold(g: torch.Tensor) -> torch.Tensor:
            back = g.permute(3, 4, 0, 2, 1).reshape(side * side, n, c)
            return torch.cat([head, back], 0) if cls_tokens else back

        return grid, unfold
    return None


def _first_tensor(out: object) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


INPUT_SUFFIX = ":in"


def _split(layer: str) -> tuple[str, bool]:
    """``"backbone.layers.11:in"`` -> (module path, True: hook the block's input)."""
    if layer.endswith(INPUT_SUFFIX):
        return layer[: -len(INPUT_SUFFIX)], True
    return layer, False


def _is_transformer_block(module: nn.Module) -> bool:
    return isinstance(getattr(module, "attn", None), nn.MultiheadAttention)


def layer_candidates(model: nn.Module, clip: Clip | None = None) -> list[str]:
    """Layers suitable for Grad-CAM, in forward order.

    CNN families: each stage's output (``backbone.stages.2``). Transformer blocks: each block's *input*,
    the residual stream entering it (``backbone.layers.11:in``); a block's output would be useless for
    the last block of a model that reads out the class token, since nothing after it looks at the patch
    tokens (their gradient is zero). Other models: every module whose output folds into a map, found
    with one forward pass over ``clip``.
    """
    modules = dict(model.named_modules())
    blocks = family_blocks(model)
    if blocks:
        return [f"{b}{INPUT_SUFFIX}" if _is_transformer_block(modules[b]) else b for b in blocks]
    if clip is None:
        raise ValueError("this model is not one of the known families: pass a clip to find its layers")
    return [name for name, grid in _grids(model, clip, [n for n in modules if n]).items() if min(grid[-2:]) >= 2]


def _grids(model: nn.Module, clip: Clip, layers: list[str]) -> dict[str, tuple[int, ...]]:
    """Folded (B, C, T', h, w) shape of each layer that gives a map, in the order the forward pass meets them."""
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []

    def record(name: str, t: object) -> None:
        if isinstance(t, torch.Tensor) and name not in shapes and (f := fold(t, clip.tensor.shape[0])) is not None:
            shapes[name] = tuple(f[0].shape)

    for layer in layers:
        path, on_input = _split(layer)
        if on_input:
            hooks.append(modules[path].register_forward_pre_hook(lambda _m, a, n=layer: record(n, a[0] if a else None)))
        else:
            hooks.append(modules[path].register_forward_hook(lambda _m, _i, o, n=layer: record(n, _first_tensor(o))))
    try:
        with torch.no_grad():
            forward_logits(model)(clip.tensor)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def default_layer(model: nn.Module, clip: Clip | None = None, min_grid: int = 7) -> str:
    """Transformers: the input of the last block. CNNs: the last stage, unless its map is coarser than
    ``min_grid`` cells on a side (small inputs): then the last stage with at least that many (or the
    finest one there is), since a 1x1 or 2x2 map cannot say where anything is."""
    cands = layer_candidates(model, clip)
    if not cands:
        raise ValueError("no layer with a spatial map found for Grad-CAM")
    if clip is None or _split(cands[-1])[1]:
        return cands[-1]
    # The choice depends only on the input shape: remember it per model (saves a forward pass).
    key = (tuple(clip.tensor.shape), min_grid)
    known = _DEFAULTS.setdefault(model, {})
    if key not in known:
        known[key] = _pick(model, clip, cands, min_grid)
    return known[key]


_DEFAULTS: weakref.WeakKeyDictionary[nn.Module, dict[tuple, str]] = weakref.WeakKeyDictionary()


def _pick(model: nn.Module, clip: Clip, cands: list[str], min_grid: int) -> str:
    grids = _grids(model, clip, cands)
    sides = {name: min(shape[-2:]) for name, shape in grids.items()}
    if not sides:
        return cands[-1]
    threshold = min(min_grid, max(sides.values()))
    return [name for name in cands if sides.get(name, 0) >= threshold][-1]


def attribute(
    model: nn.Module,
    clip: Clip,
    target: int,
    progress: Progress | None = None,
    layer: str | None = None,
    relu: bool = True,
) -> MethodResult:
    """Grad-CAM maps of ``layer`` (default: :func:`default_layer`), upsampled to the input grid and
    spread from the layer's temporal positions onto the input frames it covers."""
    from captum.attr import LayerGradCam

    name = layer or default_layer(model, clip)
    path, on_input = _split(name)
    modules = dict(model.named_modules())
    if path not in modules:
        raise ValueError(f"no layer {path!r} in the model")
    grid_module = _Grid()
    batch = clip.tensor.shape[0]
    info: dict[str, object] = {}

    def spliced(t: object) -> torch.Tensor:
        folded = fold(t, batch) if isinstance(t, torch.Tensor) else None
        if folded is None:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"layer {name!r} gives {shape}, not a map Grad-CAM can use")
        grid, unfold = folded
        info["shape"] = tuple(grid.shape)
        return unfold(grid_module(grid))

    def on_output(_m, _i, out):
        new = spliced(_first_tensor(out))
        return new if isinstance(out, torch.Tensor) else (new, *out[1:])

    def on_args(_m, args):
        return (spliced(args[0] if args else None), *args[1:])

    target_module = modules[path]
    handle = (
        target_module.register_forward_pre_hook(on_args) if on_input else target_module.register_forward_hook(on_output)
    )
    fwd = counting(forward_logits(model), 1, progress, "Grad-CAM")
    try:
        with torch.enable_grad():
            cam = LayerGradCam(fwd, grid_module).attribute(
                clip.tensor.clone().requires_grad_(True), target=target, relu_attributions=relu
            )
    finally:
        handle.remove()
    cam = cam.detach().float()[0, 0]  # (T', h, w)
    positions = cam.shape[0]
    maps = resize_maps(cam, input_hw(clip)).cpu().numpy()
    cover = temporal_positions(model, clip.num_frames, positions)
    maps = positions_to_frames(maps, cover, clip.num_frames)
    return MethodResult(
        heatmaps=maps.astype(np.float32),
        frame_importance=per_frame_sum(maps),
        signed=not relu,
        meta={"layer": name, "layer_grid": list(info.get("shape", ())), "frame_map": cover, "relu": relu},
    )
