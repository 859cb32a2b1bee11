"""Helpers shared by the renderers: frame labels, readable number scales, frame panels, figure defaults.

Every figure numbers frames the same way: the source video's frame index and its time,
``"f37 · 1.23 s"`` (a frame pair of ILA ``"f37→f45"``, a temporal position covering several frames
``"f37–45 · 1.23–1.50 s"``), never the position in the model input.  Figures have no fixed width:
they take the width of their container (gr.Plot autosizes), down to a 390 px phone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from visualizations.overlay import Placement, png_data_uri

__all__ = [
    "FRAME_VIEWS",
    "add_crop_outline",
    "add_frame_image",
    "crop_to_model_view",
    "finish",
    "frame_label",
    "frame_labels",
    "pair_label",
    "position_label",
    "position_labels",
    "readable_scale",
    "wrap_title",
    "zero_based_range",
]

#: How frames are shown under a map: the whole frame with the model's crop outlined, or only the crop.
FRAME_VIEWS = ("outline", "crop")
#: Colour of the outline of the model's crop (visible on dark and light frames alike).
CROP_COLOUR = "#00e5ff"
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _source(t: int, frame_indices: Sequence[int] | None) -> int:
    return int(frame_indices[t]) if frame_indices else int(t)


def frame_label(t: int, frame_indices: Sequence[int] | None = None, timestamps: Sequence[float] | None = None) -> str:
    """``"f12 · 0.40 s"``: source frame index and time of input frame ``t`` (the input position when
    the source frames are unknown)."""
    text = f"f{_source(t, frame_indices)}"
    if timestamps:
        text += f" · {timestamps[t]:.2f} s"
    return text


def frame_labels(n: int, frame_indices: Sequence[int] | None = None, timestamps: Sequence[float] | None = None):
    return [frame_label(t, frame_indices, timestamps) for t in range(n)]


def pair_label(t: int, frame_indices: Sequence[int] | None = None, timestamps: Sequence[float] | None = None) -> str:
    """``"f12→f15 · 0.40→0.50 s"``: input frames ``t`` and ``t + 1`` as a pair (ILA aligns such pairs)."""
    text = f"f{_source(t, frame_indices)}→f{_source(t + 1, frame_indices)}"
    if timestamps:
        text += f" · {timestamps[t]:.2f}→{timestamps[t + 1]:.2f} s"
    return text


def position_label(
    frames: Sequence[int],
    frame_indices: Sequence[int] | None = None,
    timestamps: Sequence[float] | None = None,
    sep: str = " · ",
) -> str:
    """Label of a temporal position covering input ``frames``: ``"f12–16 · 0.40–0.53 s"`` (``sep="<br>"``
    puts the time on a second line, for narrow tick labels)."""
    if not len(frames):
        return "–"
    src = [_source(f, frame_indices) for f in frames]
    text = f"f{src[0]}" if len(src) == 1 else f"f{min(src)}–{max(src)}"
    if timestamps:
        ts = [timestamps[f] for f in frames]
        text += f"{sep}{ts[0]:.2f} s" if len(ts) == 1 else f"{sep}{min(ts):.2f}–{max(ts):.2f} s"
    return text


def position_labels(
    frame_map: Sequence[Sequence[int]],
    frame_indices: Sequence[int] | None = None,
    timestamps: Sequence[float] | None = None,
    sep: str = " · ",
) -> list[str]:
    """Unique labels for each temporal position (a suffix is added when two positions would read the same)."""
    labels = [position_label(f, frame_indices, timestamps, sep) for f in frame_map]
    seen: dict[str, int] = {}
    out = []
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            seen[label] = seen.get(label, 0) + 1
            label = f"{label} #{i}"
        out.append(label)
    return out


def readable_scale(values: np.ndarray | Sequence[float]) -> tuple[float, str]:
    """``(factor, suffix)`` so that ``values / factor`` reads as plain numbers (largest magnitude in
    1 .. 1000): e.g. attributions of about 6e-4 give ``(1e-4, " (×10⁻⁴)")`` for the axis title instead
    of SI tick labels such as "600μ". Values already in 0.01 .. 10 000 are left alone (factor 1)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    top = float(np.abs(v).max()) if v.size else 0.0
    if top == 0.0 or 1e-2 <= top < 1e4:
        return 1.0, ""
    exp = math.floor(math.log10(top))
    return 10.0**exp, f" (×10{str(exp).translate(_SUPERSCRIPT)})"


def zero_based_range(values: np.ndarray | Sequence[float], pad: float = 0.05) -> list[float]:
    """An axis range that always contains 0 (a curve of values 0.75..0.87 is drawn from 0, so that
    small differences do not look large), padded a little on the open side(s)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    lo = min(0.0, float(v.min())) if v.size else 0.0
    hi = max(0.0, float(v.max())) if v.size else 1.0
    span = (hi - lo) or 1.0
    return [lo - pad * span if lo < 0 else 0.0, hi + pad * span if hi > 0 else 0.0]


def crop_to_model_view(frame: np.ndarray, place: Placement) -> tuple[np.ndarray, Placement]:
    """The part of a display frame the model sees (its centre crop) and the placement of the model's
    grid on that part."""
    h, w = frame.shape[:2]
    x0, y0 = max(0, round(place.x0)), max(0, round(place.y0))
    x1, y1 = min(w, round(w - place.x0)), min(h, round(h - place.y0))
    part = np.ascontiguousarray(frame[y0:y1, x0:x1])
    return part, Placement(
        scale=place.scale, x0=place.x0 - x0, y0=place.y0 - y0, width=part.shape[1], height=part.shape[0]
    )


def add_crop_outline(fig: go.Figure, place: Placement, row: int | None = None, col: int | None = None) -> None:
    """A rectangle around the square the model sees (drawn only when the frame is wider or taller)."""
    x1, y1 = place.width - place.x0, place.height - place.y0
    if place.x0 < 0.5 and place.y0 < 0.5:
        return
    fig.add_shape(
        type="rect",
        x0=place.x0,
        y0=place.y0,
        x1=x1,
        y1=y1,
        line={"color": CROP_COLOUR, "width": 1.5, "dash": "dash"},
        name="model crop",
        row=row,
        col=col,
    )


def add_frame_image(fig: go.Figure, frame: np.ndarray, row: int | None = None, col: int | None = None, **kw) -> None:
    """A display frame as a PNG-backed image trace (hover off: the heatmap on top carries the values)."""
    fig.add_trace(go.Image(source=png_data_uri(frame), hoverinfo="skip", **kw), row=row, col=col)


def heatmap_on_frame(heatmap: np.ndarray, place: Placement, name: str, hover_prefix: str = "", **kw) -> go.Heatmap:
    """A heatmap on the model input grid laid over a display frame (cells scaled to display pixels)."""
    return go.Heatmap(
        z=np.asarray(heatmap, np.float32),
        x0=place.x0 + place.scale / 2,
        dx=place.scale,
        y0=place.y0 + place.scale / 2,
        dy=place.scale,
        name=name,
        hovertemplate=kw.pop("hovertemplate", None)
        or f"{hover_prefix}x %{{x:.0f}} px, y %{{y:.0f}} px<br>value %{{z:.4g}}<extra></extra>",
        **kw,
    )


#: Characters per title line: a 15 px title line this long fits a 390 px phone.
TITLE_CHARS = 46
#: Height of one title line (px): plotly spaces lines by the title's 15 px font, also for smaller spans.
LINE_PX = 22
#: The same for the 12 px note under a title.
NOTE_CHARS = 58


def wrap_title(text: str, width: int = TITLE_CHARS) -> str:
    """Break a long title into ``<br>``-separated lines (plotly does not wrap titles)."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text


def finish(fig: go.Figure, title: str, height: int | None = None, top: int = 20, note: str | None = None) -> go.Figure:
    """Title, compact margins, white template, and no fixed width: the figure takes its container's
    width (gr.Plot autosizes; a fixed width overflows a phone). Long titles wrap. Numbers on every axis
    and colour bar are written as powers of ten, never with SI prefixes ("600μ"). ``top``: room below
    the title (for subplot titles or a legend); ``note``: a smaller explanatory line under the title."""
    title = wrap_title(title)
    lines = title.count("<br>") + 1
    if note:
        wrapped = wrap_title(note, NOTE_CHARS)
        title += f"<br><span style='font-size:12px;color:#555'>{wrapped}</span>"
        lines += wrapped.count("<br>") + 1
    # Plotly anchors a multi-line title by its first line: ``yanchor="bottom"`` puts the first line's
    # bottom ``pad.b`` above the plot, so the pad makes room for the lines below it and for ``top``.
    below = top + LINE_PX * (lines - 1)
    fig.update_layout(
        title={
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "xref": "container",
            "yref": "paper",
            "y": 1.0,
            "yanchor": "bottom",
            "pad": {"b": below},
            "font": {"size": 15},
        },
        template="plotly_white",
        margin={"l": 50, "r": 20, "t": 12 + LINE_PX + below, "b": 50},
        hoverlabel={"namelength": -1},
        autosize=True,
        width=None,
    )
    fig.update_xaxes(exponentformat="power")
    fig.update_yaxes(exponentformat="power")
    fig.update_coloraxes(colorbar_exponentformat="power")
    fig.update_traces(colorbar_exponentformat="power", selector={"type": "heatmap"})
    if height:
        fig.update_layout(height=height)
    return fig
