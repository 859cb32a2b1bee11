"""Putting heatmaps on display frames: placement, colour scales with transparency, PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from plotly.colors import get_colorscale, sample_colorscale, unlabel_rgb
from torch import nn

__all__ = [
    "Placement",
    "blend",
    "frames_from_tensor",
    "overlay_colorscale",
    "placement",
    "png_data_uri",
    "shared_range",
]

SEQUENTIAL = "Inferno"
DIVERGING = "RdBu_r"


@dataclass(frozen=True)
class Placement:
    """Where the model's input grid (h x w) lies on a display frame: pixel (i, j) of the grid covers
    display x in ``x0 + j * scale .. x0 + (j + 1) * scale`` (likewise y)."""

    scale: float
    x0: float
    y0: float
    width: int
    height: int

    def to_display(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Input-crop pixel coordinates (0 = left/top edge) -> display pixel coordinates."""
        return self.x0 + np.asarray(x) * self.scale, self.y0 + np.asarray(y) * self.scale


def placement(display_hw: tuple[int, int], input_hw: tuple[int, int]) -> Placement:
    """Placement of a (square) centre crop of the display frame, as short-side resize + centre crop
    produce; when the display frame is the crop itself this is a plain rescale."""
    dh, dw = display_hw
    h, w = input_hw
    scale = min(dh / h, dw / w)
    return Placement(scale=scale, x0=(dw - w * scale) / 2, y0=(dh - h * scale) / 2, width=dw, height=dh)


def shared_range(
    maps: Sequence[np.ndarray] | np.ndarray, signed: bool, percentile: float = 99.5
) -> tuple[float, float]:
    """One (zmin, zmax) for a whole figure: symmetric about 0 for signed maps; a high percentile rather
    than the max so that one hot pixel does not wash out the rest."""
    values = np.concatenate([np.asarray(m, np.float64).ravel() for m in maps]) if len(maps) else np.zeros(1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    if signed:
        top = float(np.percentile(np.abs(values), percentile)) or float(np.abs(values).max()) or 1.0
        return -top, top
    lo = float(min(0.0, values.min()))
    hi = float(np.percentile(values, percentile))
    if hi <= lo:
        hi = float(values.max()) if values.max() > lo else lo + 1.0
    return lo, hi


def overlay_colorscale(signed: bool, max_alpha: float = 0.8, n: int = 11) -> list[list]:
    """A plotly colour scale whose opacity follows the magnitude, so low values leave the frame visible:
    sequential (Inferno) from transparent for magnitudes, diverging (RdBu) transparent at 0 for signs."""
    name = DIVERGING if signed else SEQUENTIAL
    stops = np.linspace(0, 1, n)
    colours = sample_colorscale(get_colorscale(name), list(stops))
    scale = []
    for s, c in zip(stops, colours):
        r, g, b = (int(round(float(v))) for v in unlabel_rgb(c))
        a = max_alpha * (abs(2 * s - 1) if signed else s) ** 0.7
        scale.append([float(s), f"rgba({r},{g},{b},{a:.3f})"])
    return scale


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 (H, W, 3) image as a PNG data URI (compact in figure JSON, for ``go.Image(source=...)``)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def resize_to(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (h, w) map to (H, W)."""
    if heatmap.shape == tuple(size):
        return heatmap.astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(heatmap, np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def blend(
    frame: np.ndarray,
    heatmap: np.ndarray,
    zmin: float,
    zmax: float,
    signed: bool = False,
    max_alpha: float = 0.8,
) -> np.ndarray:
    """Blend a heatmap (on the model input grid) onto a uint8 display frame with the overlay colour
    scale, for image outputs (galleries, videos); figures overlay with plotly instead."""
    frame = np.asarray(frame)
    place = placement(frame.shape[:2], heatmap.shape)
    h, w = round(heatmap.shape[0] * place.scale), round(heatmap.shape[1] * place.scale)
    resized = resize_to(heatmap, (h, w))
    z = np.clip((resized - zmin) / max(zmax - zmin, 1e-12), 0, 1)
    scale = overlay_colorscale(signed, max_alpha, n=65)
    stops = np.array([s for s, _ in scale])
    rgba = np.array([[float(v) for v in c[5:-1].split(",")] for _, c in scale])  # "rgba(r,g,b,a)"
    colour = np.stack([np.interp(z, stops, rgba[:, i]) for i in range(4)], -1)
    out = frame.astype(np.float32).copy()
    y0, x0 = round(place.y0), round(place.x0)
    region = out[y0 : y0 + h, x0 : x0 + w]
    a = colour[..., 3:4][: region.shape[0], : region.shape[1]]
    region[:] = region * (1 - a) + colour[: region.shape[0], : region.shape[1], :3] * a
    return out.clip(0, 255).astype(np.uint8)


def frames_from_tensor(model: nn.Module | None, tensor: torch.Tensor) -> list[np.ndarray]:
    """Undo the model's normalisation to get uint8 frames back from its input tensor (when the clip's
    own display frames are not at hand)."""
    cfg = getattr(model, "pretrained_cfg", None)
    x = tensor.detach().float().cpu()
    if x.dim() == 5:
        x = x[0]
    x = (cfg.from_model_layout(x) if cfg is not None else x).transpose(0, 1)  # (T, C, H, W)
    mean = torch.tensor(getattr(cfg, "mean", (0.0, 0.0, 0.0))).view(1, 3, 1, 1)
    std = torch.tensor(getattr(cfg, "std", (1.0, 1.0, 1.0))).view(1, 3, 1, 1)
    rng = float(getattr(cfg, "pixel_range", 1.0))
    pixels = (x * std + mean) * (255.0 / rng)
    return [f.permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy() for f in pixels]
