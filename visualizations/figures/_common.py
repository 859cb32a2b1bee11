"""Helpers shared by the renderers: time-axis labels, frame panels, figure defaults."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from visualizations.overlay import Placement, png_data_uri

__all__ = ["frame_label", "frame_labels", "position_label", "position_labels", "finish", "add_frame_image"]


def frame_label(t: int, frame_indices: Sequence[int] | None = None, timestamps: Sequence[float] | None = None) -> str:
    """``"frame 12 · 0.40 s"`` (source frame index and time when known, else the input frame number)."""
    text = f"frame {frame_indices[t] if frame_indices else t}"
    if timestamps:
        text += f" · {timestamps[t]:.2f} s"
    return text


def frame_labels(n: int, frame_indices: Sequence[int] | None = None, timestamps: Sequence[float] | None = None):
    return [frame_label(t, frame_indices, timestamps) for t in range(n)]


def position_label(
    frames: Sequence[int], frame_indices: Sequence[int] | None = None, timestamps: Sequence[float] | None = None
) -> str:
    """Label of a temporal position covering input ``frames``: ``"f12–16 (0.40–0.53 s)"``."""
    if not len(frames):
        return "–"
    src = [frame_indices[f] if frame_indices else f for f in frames]
    text = f"f{src[0]}" if len(src) == 1 else f"f{min(src)}–{max(src)}"
    if timestamps:
        ts = [timestamps[f] for f in frames]
        text += f" ({ts[0]:.2f} s)" if len(ts) == 1 else f" ({min(ts):.2f}–{max(ts):.2f} s)"
    return text


def position_labels(
    frame_map: Sequence[Sequence[int]],
    frame_indices: Sequence[int] | None = None,
    timestamps: Sequence[float] | None = None,
) -> list[str]:
    """Unique labels for each temporal position (a suffix is added when two positions would read the same)."""
    labels = [position_label(f, frame_indices, timestamps) for f in frame_map]
    seen: dict[str, int] = {}
    out = []
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            seen[label] = seen.get(label, 0) + 1
            label = f"{label} #{i}"
        out.append(label)
    return out


def add_frame_image(fig: go.Figure, frame: np.ndarray, row: int | None = None, col: int | None = None, **kw) -> None:
    """A display frame as a PNG-backed image trace (hover off: the heatmap on top carries the values)."""
    fig.add_trace(go.Image(source=png_data_uri(frame), hoverinfo="skip", **kw), row=row, col=col)


def heatmap_on_frame(heatmap: np.ndarray, place: Placement, name: str, hover_prefix: str = "", **kw) -> go.Heatmap:
    """A heatmap on the model input grid laid over a display frame (cells scaled to display pixels)."""
    h, w = heatmap.shape
    return go.Heatmap(
        z=np.asarray(heatmap, np.float32),
        x0=place.x0 + place.scale / 2,
        dx=place.scale,
        y0=place.y0 + place.scale / 2,
        dy=place.scale,
        name=name,
        hovertemplate=f"{hover_prefix}x %{{x:.0f}} px, y %{{y:.0f}} px<br>value %{{z:.4g}}<extra></extra>",
        **kw,
    )


def finish(fig: go.Figure, title: str, height: int | None = None, width: int | None = None) -> go.Figure:
    """Title, compact margins, white template (Gradio's gr.Plot shows the figure as is)."""
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        margin={"l": 50, "r": 30, "t": 70, "b": 50},
        hoverlabel={"namelength": -1},
    )
    if height:
        fig.update_layout(height=height)
    if width:
        fig.update_layout(width=width)
    return fig
