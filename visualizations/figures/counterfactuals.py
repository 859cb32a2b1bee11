"""Renderer for temporal counterfactuals: what each edit does to the frames and to the prediction."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualizations.explanation import CounterfactualResult
from visualizations.figures._common import finish, frame_labels

__all__ = ["counterfactual_figure"]


def counterfactual_figure(result: CounterfactualResult) -> go.Figure:
    """Top: which source frame each variant shows at each moment of the clip. Bottom: probability of
    the followed class on each variant, annotated with the variant's own prediction (red when it
    changed). Stacked, so that the figure reads the same on a phone and on a desktop."""
    rows = result.all
    names = [v.name for v in rows]
    t = len(rows[0].frame_order)
    order = np.array([v.frame_order for v in rows], dtype=np.int32)
    labels = frame_labels(t, result.frame_indices, result.timestamps)
    short = [lab.split(" · ")[0] for lab in labels]  # "f37": the cells are small
    followed = result.meta.get("followed_label", rows[0].predicted_label)
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.5, 0.5],
        subplot_titles=["source frame shown at each moment", f"p(“{followed}”) and the new prediction"],
        vertical_spacing=0.2,
    )
    fig.add_trace(
        go.Heatmap(
            z=order,
            x=list(range(t)),
            y=names,
            colorscale="Viridis",
            zmin=0,
            zmax=max(1, t - 1),
            text=[[short[f] for f in row] for row in order],
            customdata=[[labels[f] for f in row] for row in order],
            texttemplate="%{text}",  # the source frame in each cell; no colour bar needed
            textfont={"size": 10},
            hovertemplate="%{y}<br>at the moment of %{x}: shows %{customdata}<extra></extra>",
            showscale=False,
        ),
        row=1,
        col=1,
    )
    fig.update_xaxes(
        title_text="moment of the original clip (source frame)",
        tickvals=list(range(t)),
        ticktext=short,
        row=1,
        col=1,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    top = ["<br>".join(f"{lab}: {p:.2f}" for _, lab, p in v.top_k) for v in rows]
    fig.add_trace(
        go.Bar(
            x=[v.target_prob for v in rows],
            y=names,
            orientation="h",
            marker={"color": ["#d62728" if v.changed else "#1f77b4" for v in rows]},
            text=[f"→ {v.predicted_label}" + (" (changed)" if v.changed else "") for v in rows],
            textposition="auto",
            insidetextanchor="start",
            customdata=top,
            hovertemplate="%{y}<br>p = %{x:.3f}<br>top classes:<br>%{customdata}<extra></extra>",
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    fig.update_xaxes(title_text=f"probability of “{followed}”", range=[0, 1], row=2, col=1)
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_annotations(font_size=12)
    changed = sum(v.changed for v in result.variants)
    title = f"Does the model use time? {changed} of {len(result.variants)} temporal edits change the prediction"
    return finish(fig, title, height=220 + 2 * 44 * len(rows), top=30)
