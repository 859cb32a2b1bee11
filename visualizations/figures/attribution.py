"""Attribution maps blended on the display frames, one colour scale per figure, plus the per-frame curve."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualizations.explain import METHODS
from visualizations.explanation import AttributionExplanation
from visualizations.figures._common import add_frame_image, finish, frame_labels, heatmap_on_frame
from visualizations.overlay import DIVERGING, SEQUENTIAL, Placement, overlay_colorscale, placement, shared_range

__all__ = ["attribution_figure"]


def _frames_for(expl: AttributionExplanation, frames: Sequence[np.ndarray] | None) -> Sequence[np.ndarray] | None:
    if frames is None:
        return None
    if len(frames) != expl.num_frames:
        raise ValueError(f"{len(frames)} display frames for {expl.num_frames} heatmaps")
    return frames


def attribution_figure(
    expl: AttributionExplanation,
    frames: Sequence[np.ndarray] | None = None,
    max_cols: int = 8,
    title: str | None = None,
    show_frames: Sequence[int] | None = None,
) -> go.Figure:
    """Per-frame heatmaps over the display frames (uint8 (H, W, 3), one per input frame; without them
    the maps are drawn alone) and, below, the per-frame importance curve."""
    frames = _frames_for(expl, frames)
    t_all = expl.num_frames
    show = list(show_frames) if show_frames is not None else list(range(t_all))
    labels = frame_labels(t_all, expl.frame_indices, expl.timestamps)
    cols = max(1, min(max_cols, len(show)))
    rows = math.ceil(len(show) / cols)
    method = METHODS.get(expl.method)
    name, curve_title = (method.title, method.curve) if method else (expl.method, "importance")
    specs = [[{} for _ in range(cols)] for _ in range(rows)] + [[{"colspan": cols}] + [None] * (cols - 1)]
    fig = make_subplots(
        rows=rows + 1,
        cols=cols,
        specs=specs,
        subplot_titles=[labels[t] for t in show] + [""] * (rows * cols - len(show)) + ["per-frame importance"],
        row_heights=[1.0] * rows + [0.8],
        vertical_spacing=0.12 / max(1, rows),
        horizontal_spacing=0.01,
    )
    zmin, zmax = shared_range(expl.heatmaps[show], expl.signed)
    h, w = expl.heatmaps.shape[1:]
    for i, t in enumerate(show):
        r, c = divmod(i, cols)
        if frames is not None:
            add_frame_image(fig, frames[t], row=r + 1, col=c + 1, x0=0.5, y0=0.5)
            place = placement(frames[t].shape[:2], (h, w))
        else:
            place = Placement(scale=1.0, x0=0.0, y0=0.0, width=w, height=h)
        fig.add_trace(
            heatmap_on_frame(
                expl.heatmaps[t], place, name=labels[t], hover_prefix=f"{labels[t]}<br>", coloraxis="coloraxis"
            ),
            row=r + 1,
            col=c + 1,
        )
        fig.update_xaxes(visible=False, range=[0, place.width], row=r + 1, col=c + 1)
        fig.update_yaxes(visible=False, range=[place.height, 0], row=r + 1, col=c + 1)
    x = np.arange(t_all)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=np.asarray(expl.frame_importance, np.float32),
            mode="lines+markers",
            name="per-frame importance",
            text=labels,
            hovertemplate="%{text}<br>" + curve_title + ": %{y:.4g}<extra></extra>",
            showlegend=False,
        ),
        row=rows + 1,
        col=1,
    )
    fig.update_xaxes(
        title_text="input frame (source frame · time)",
        tickvals=list(x),
        ticktext=labels,
        tickangle=-30 if t_all > 4 else 0,
        row=rows + 1,
        col=1,
    )
    fig.update_yaxes(title_text=curve_title, row=rows + 1, col=1)
    colorscale = overlay_colorscale(expl.signed) if frames is not None else (DIVERGING if expl.signed else SEQUENTIAL)
    fig.update_layout(
        coloraxis={
            "colorscale": colorscale,
            "cmin": zmin,
            "cmax": zmax,
            "colorbar": {"title": {"text": "attribution"}, "len": 0.6, "y": 1.0, "yanchor": "top"},
        }
    )
    head = title or f"{name} for “{expl.target_label}” (p = {expl.score:.2f})"
    return finish(fig, head, height=170 * rows + 330, width=max(700, 120 * cols + 200))
