"""Attribution maps blended on the display frames, one colour scale per figure, plus the per-frame curve."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualizations.explain import METHODS
from visualizations.explanation import AttributionExplanation
from visualizations.figures._common import (
    FRAME_VIEWS,
    add_crop_outline,
    add_frame_image,
    crop_to_model_view,
    finish,
    frame_labels,
    heatmap_on_frame,
    readable_scale,
    zero_based_range,
)
from visualizations.overlay import DIVERGING, SEQUENTIAL, Placement, overlay_colorscale, placement, shared_range

__all__ = ["DEFAULT_COLUMNS", "attribution_figure"]

#: Frames per row: 8 frames wrap into 2 rows, so a frame stays readable on a 390 px phone.
DEFAULT_COLUMNS = 4
#: Height of one row of frames (px) and of the curve panel below them.
ROW_HEIGHT = 140
CURVE_HEIGHT = 230
#: Room between the last row of frames and the curve, for the horizontal colour bar (px).
BAR_GAP = 80


def _frames_for(expl: AttributionExplanation, frames: Sequence[np.ndarray] | None) -> Sequence[np.ndarray] | None:
    if frames is None:
        return None
    if len(frames) != expl.num_frames:
        raise ValueError(f"{len(frames)} display frames for {expl.num_frames} heatmaps")
    return frames


def attribution_figure(
    expl: AttributionExplanation,
    frames: Sequence[np.ndarray] | None = None,
    columns: int = DEFAULT_COLUMNS,
    title: str | None = None,
    show_frames: Sequence[int] | None = None,
    view: str = "outline",
    max_cols: int | None = None,
) -> go.Figure:
    """Per-frame heatmaps over the display frames (uint8 (H, W, 3), one per input frame; without them
    the maps are drawn alone) in rows of ``columns`` frames and, below, the per-frame importance curve.

    ``view``: ``"outline"`` shows the whole frame with the square the model sees outlined (a 16:9
    video loses its sides to the centre crop), ``"crop"`` shows only that square. Signed maps
    (occlusion, ``signed=True`` gradients) use a diverging scale centred on 0. ``max_cols`` is the old
    name of ``columns``.
    """
    if view not in FRAME_VIEWS:
        raise ValueError(f"view must be one of {FRAME_VIEWS}, got {view!r}")
    frames = _frames_for(expl, frames)
    t_all = expl.num_frames
    show = list(show_frames) if show_frames is not None else list(range(t_all))
    labels = frame_labels(t_all, expl.frame_indices, expl.timestamps)
    # Two-line frame captions ("f37" / "1.23 s") stay apart even when four frames share a phone's width.
    captions = [label.replace(" · ", "<br>") for label in labels]
    cols = max(1, min(int(max_cols or columns), len(show)))
    rows = math.ceil(len(show) / cols)
    method = METHODS.get(expl.method)
    name, curve_title = (method.title, method.curve) if method else (expl.method, "importance")
    if expl.signed and method is not None and method.signed_curve:
        name, curve_title = f"{method.title.removesuffix(' (|gradient|)')} (signed)", method.signed_curve
    specs = [[{} for _ in range(cols)] for _ in range(rows)] + [[{"colspan": cols}] + [None] * (cols - 1)]
    plot_px = (ROW_HEIGHT + 40) * rows + BAR_GAP + CURVE_HEIGHT  # frames (+ captions), bar, curve
    height = plot_px + 200
    fig = make_subplots(
        rows=rows + 1,
        cols=cols,
        specs=specs,
        subplot_titles=[captions[t] for t in show] + [""] * (rows * cols - len(show)) + [""],
        row_heights=[ROW_HEIGHT] * rows + [CURVE_HEIGHT],
        vertical_spacing=40 / plot_px,
        horizontal_spacing=0.02,
    )
    zmin, zmax = shared_range(expl.heatmaps[show], expl.signed)
    factor, suffix = readable_scale([zmin, zmax])
    h, w = expl.heatmaps.shape[1:]
    for i, t in enumerate(show):
        r, c = divmod(i, cols)
        if frames is not None:
            frame = frames[t]
            place = placement(frame.shape[:2], (h, w))
            if view == "crop":
                frame, place = crop_to_model_view(frame, place)
            add_frame_image(fig, frame, row=r + 1, col=c + 1, x0=0.5, y0=0.5)
            if view == "outline":
                add_crop_outline(fig, place, row=r + 1, col=c + 1)
        else:
            place = Placement(scale=1.0, x0=0.0, y0=0.0, width=w, height=h)
        fig.add_trace(
            heatmap_on_frame(
                expl.heatmaps[t] / factor,
                place,
                name=labels[t],
                coloraxis="coloraxis",
                hovertemplate=f"{labels[t]}<br>x %{{x:.0f}} px, y %{{y:.0f}} px<br>"
                f"attribution %{{z:.3g}}{suffix}<extra></extra>",
            ),
            row=r + 1,
            col=c + 1,
        )
        fig.update_xaxes(visible=False, range=[0, place.width], row=r + 1, col=c + 1)
        fig.update_yaxes(visible=False, range=[place.height, 0], row=r + 1, col=c + 1)
    importance = np.asarray(expl.frame_importance, np.float64)
    y_factor, y_suffix = readable_scale(importance)
    x = np.arange(t_all)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=importance / y_factor,
            mode="lines+markers",
            name="per-frame importance",
            text=labels,
            customdata=importance,
            hovertemplate="%{text}<br>" + curve_title + ": %{customdata:.4g}<extra></extra>",
            showlegend=False,
        ),
        row=rows + 1,
        col=1,
    )
    fig.update_xaxes(
        title_text="source frame · time",
        tickvals=list(x),
        ticktext=labels,
        tickangle=-35 if t_all > 4 else 0,
        row=rows + 1,
        col=1,
    )
    # From 0: a curve spanning 0.75 .. 0.87 must not look like a tenfold change.
    fig.update_yaxes(
        title_text=curve_title + y_suffix, range=zero_based_range(importance / y_factor), row=rows + 1, col=1
    )
    fig.update_annotations(font_size=11)
    colorscale = overlay_colorscale(expl.signed) if frames is not None else (DIVERGING if expl.signed else SEQUENTIAL)
    bar_title = ("attribution: + for, − against" if expl.signed else "attribution") + suffix
    # A horizontal colour bar between the frames and the curve: a vertical one would take a fifth of a
    # phone's width from the frames.
    curve_top = fig.get_subplot(rows + 1, 1).yaxis.domain[1]
    fig.update_layout(
        coloraxis={
            "colorscale": colorscale,
            "cmin": zmin / factor,
            "cmax": zmax / factor,
            "colorbar": {
                "orientation": "h",
                "title": {"text": bar_title, "side": "top"},
                "x": 0.0,
                "xanchor": "left",
                "len": 0.6,
                "y": curve_top + 26 / plot_px,
                "yanchor": "bottom",
                "thickness": 10,
                "tickfont": {"size": 10},
            },
        }
    )
    head = title or f"{name} for “{expl.target_label}” (p = {expl.score:.2f})"
    if frames is not None and view == "outline" and fig.layout.shapes:
        head += "; dashed box = what the model sees"
    return finish(fig, head, height=height, top=34)
