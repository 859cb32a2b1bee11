"""Figures drawn against time in the video, under the player: the timeline of a long video (top classes'
probability over time, a class-by-time heatmap and, for TAdaConv models, the calibration variation per
window; renders a :class:`tada.timeline.Timeline`) and the per-frame importance of one clip (the
``temporal`` frame-ablation attribution at the times of its frames).

Both put the playback time on a vertical line (``current_s``) and carry, in each point's ``customdata``,
what a click selects: the window number (timeline) or the frame's time (frame importance)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["frame_importance_figure", "timeline_figure"]


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def timeline_figure(
    timeline: Any, top_k: int = 5, current_s: float | None = None, selected: int | None = None
) -> go.Figure:
    """Probability of the ``top_k`` classes over time (lines), every top class by time (heatmap).

    ``current_s`` marks the playback time (a vertical line across every row). Each point carries its
    window number in ``customdata`` so a click can select that window; ``selected`` (a window number)
    is shaded.
    """
    probs = timeline.probs
    centres = timeline.centres_s
    classes = timeline.top_classes(top_k)
    has_cal = any(w.calibration_variation is not None for w in timeline.windows)
    rows = 3 if has_cal else 2
    heights = [0.5, 0.3, 0.2] if has_cal else [0.6, 0.4]
    titles = ["Top classes over time", "Class by time"] + (["Calibration variation (temporal adaptation)"] * has_cal)
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, row_heights=heights, vertical_spacing=0.08, subplot_titles=titles
    )
    windows = np.asarray([w.index for w in timeline.windows])
    starts = np.asarray([w.start_s for w in timeline.windows])
    ends = np.asarray([w.end_s for w in timeline.windows])
    custom = np.stack([windows, starts, ends], axis=1) if len(windows) else None
    for c in classes:
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=probs[:, c],
                mode="lines+markers",
                name=timeline.labels[c],
                customdata=custom,
                hovertemplate=(
                    f"{timeline.labels[c]}: %{{y:.1%}}<br>window %{{customdata[0]:.0f}}: "
                    "%{customdata[1]:.1f}–%{customdata[2]:.1f} s<extra></extra>"
                ),
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Heatmap(
            x=centres,
            y=[timeline.labels[c] for c in classes],
            z=probs[:, classes].T,
            zmin=0.0,
            zmax=1.0,
            colorscale="Viridis",
            colorbar={"title": {"text": "p"}, "len": heights[1], "y": 1 - heights[0] - heights[1] / 2, "thickness": 12},
            hovertemplate="%{y}: %{z:.1%} at %{x:.1f} s<extra></extra>",
            showlegend=False,
            customdata=None if custom is None else np.broadcast_to(custom[None], (len(classes), *custom.shape)),
        ),
        row=2,
        col=1,
    )
    if has_cal:
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=[w.calibration_variation or 0.0 for w in timeline.windows],
                mode="lines",
                fill="tozeroy",
                name="calibration variation",
                showlegend=False,
                hovertemplate="temporal std of calibration factors %{y:.3g} at %{x:.1f} s<extra></extra>",
            ),
            row=3,
            col=1,
        )
        fig.update_yaxes(rangemode="tozero", row=3, col=1)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title_text="probability", row=1, col=1)
    duration = float(timeline.info.duration)
    step = max(duration / 8, 1e-6)
    ticks = np.arange(0.0, duration + step / 2, step)
    for r in range(1, rows + 1):
        fig.update_xaxes(range=[0, duration], tickvals=ticks, ticktext=[_clock(t) for t in ticks], row=r, col=1)
    fig.update_xaxes(title_text="time in the video", row=rows, col=1)
    if current_s is not None:
        fig.add_vline(x=float(current_s), line={"color": "crimson", "width": 2, "dash": "dot"})
    chosen = next((w for w in timeline.windows if w.index == selected), None) if selected is not None else None
    if chosen is not None:
        fig.add_vrect(x0=chosen.start_s, x1=chosen.end_s, fillcolor="orange", opacity=0.25, line_width=0, layer="below")
    fig.update_layout(
        title={"text": f"{timeline.model}: {len(timeline.windows)} windows of {timeline.window_s:.1f} s", "x": 0.01},
        template="plotly_white",
        autosize=True,
        height=520 if has_cal else 440,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        legend={"orientation": "h", "y": -0.15, "x": 0},
        hovermode="closest",
    )
    return fig


def frame_importance_figure(
    expl: Any,
    current_s: float | None = None,
    duration_s: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Per-frame importance (an :class:`~visualizations.explanation.AttributionExplanation`, typically the
    ``temporal`` frame ablation: the target logit's drop when that frame is blanked) at each frame's time
    in the video, with the playback time ``current_s`` marked. ``duration_s`` sets the time axis to the
    whole video (default: the span of the frames). Each bar carries its frame's time in ``customdata``
    (a click seeks the video there)."""
    values = np.asarray(expl.frame_importance, dtype=np.float64)
    n = len(values)
    times = list(expl.timestamps) if expl.timestamps else [float(i) for i in range(n)]
    indices = list(expl.frame_indices) if expl.frame_indices else list(range(n))
    t = np.asarray(times, dtype=np.float64)
    distinct = np.unique(t)
    gap = float(np.median(np.diff(distinct))) if len(distinct) > 1 else 1.0
    # A frame fed twice (a short clip or window) has one bar per copy, side by side at its time.
    x = t.copy()
    width = np.full(n, gap * 0.8)
    for time_s in distinct:
        same = np.flatnonzero(t == time_s)
        if len(same) > 1:
            width[same] = gap * 0.8 / len(same)
            x[same] = time_s + (np.arange(len(same)) - (len(same) - 1) / 2) * width[same]
    colours = ["#c0392b" if v >= 0 else "#2471a3" for v in values]
    fig = go.Figure(
        go.Bar(
            x=x,
            y=values,
            width=np.maximum(width, 1e-3),
            marker_color=colours,
            customdata=np.stack([t, np.asarray(indices, dtype=np.float64)], axis=1) if n else None,
            hovertemplate="frame f%{customdata[1]:.0f} at %{x:.2f} s: %{y:.3g}<extra></extra>",
            name="importance",
        )
    )
    unit = "logit drop when the frame is blanked" if expl.method == "temporal" else "importance"
    fig.add_hline(y=0, line={"color": "grey", "width": 1})
    if current_s is not None:
        fig.add_vline(x=float(current_s), line={"color": "crimson", "width": 2, "dash": "dot"})
    lo, hi = (0.0, float(duration_s)) if duration_s else (t[0] - gap / 2, t[-1] + gap / 2) if n else (0.0, 1.0)
    label = getattr(expl, "target_label", "") or ""
    fig.update_xaxes(range=[lo, hi], title_text="time in the video (s)")
    fig.update_yaxes(title_text=unit, zeroline=False)
    fig.update_layout(
        title={"text": title or f"Which frames matter for {label!r}: one bar per frame fed to the model", "x": 0.01},
        template="plotly_white",
        autosize=True,
        height=300,
        margin={"l": 60, "r": 20, "t": 50, "b": 45},
        showlegend=False,
        hovermode="closest",
        bargap=0.1,
    )
    return fig
