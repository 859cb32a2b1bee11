"""Timeline of a long video: top classes' probability over time, a class-by-time heatmap and, for
TAdaConv models, the calibration variation per window. Renders a :class:`tada.timeline.Timeline`."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["timeline_figure"]


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def timeline_figure(timeline: Any, top_k: int = 5, current_s: float | None = None) -> go.Figure:
    """Probability of the ``top_k`` classes over time (lines), every top class by time (heatmap).

    ``current_s`` marks the playback time (a vertical line across every row). Each point carries its
    window number in ``customdata`` so a click can select that window.
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
