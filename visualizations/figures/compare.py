"""Renderers of a :class:`~visualizations.compare.Comparison`: the counterfactuals of every model in one
figure, and one attribution method side by side on the same frames."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualizations.compare import VARIANT_NAMES, Comparison
from visualizations.explain import METHODS
from visualizations.figures._common import (
    FRAME_VIEWS,
    add_crop_outline,
    add_frame_image,
    crop_to_model_view,
    finish,
    frame_labels,
    heatmap_on_frame,
    wrap_title,
)
from visualizations.overlay import DIVERGING, SEQUENTIAL, overlay_colorscale, placement, shared_range

__all__ = ["compare_attribution_figure", "compare_counterfactual_figure"]

#: Height of one row of bars (px) and of the room each model's panel needs besides (title, axis).
BAR_PX = 26
PANEL_PX = 70
#: Height of one row of frames in the attribution figure, and of the curve panel under them.
FRAME_ROW_PX = 120
CURVE_PX = 220
#: Height of the row between the frames and the curves that holds the colour bar.
BAR_ROW_PX = 50
#: Most frame cells in one row of the attribution figure (what a 390-px phone shows readably).
MAX_CELLS = 4
#: One colour per model (plotly's default sequence), the same in every figure of a comparison.
MODEL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
CHANGED = "#d62728"


def compare_counterfactual_figure(cmp: Comparison) -> go.Figure:
    """One panel per model, stacked (reads the same on a phone and a desktop): for the clip and each
    temporal edit, the probability the model still gives its original prediction; red bars are edits
    that change the prediction, labelled with the new one."""
    n = len(cmp.models)
    edits = ["original", *cmp.variants]
    names = [VARIANT_NAMES.get(e, e) for e in edits]
    titles = []
    for m in cmp.models:
        changed = sum(v.changed for v in m.counterfactuals.variants)
        total = len(m.counterfactuals.variants)
        titles.append(f"<b>{m.short}</b>: {changed} of {total} edits change “{m.predicted_label}”")
    panel = BAR_PX * len(edits) + PANEL_PX
    plot_px = panel * n
    fig = make_subplots(rows=n, cols=1, subplot_titles=titles, vertical_spacing=min(0.3, 60 / plot_px))
    for r, m in enumerate(cmp.models, 1):
        rows = [m.counterfactuals.variant(e) for e in edits]
        fig.add_trace(
            go.Bar(
                x=[v.target_prob for v in rows],
                y=names,
                orientation="h",
                marker={"color": [CHANGED if v.changed else MODEL_COLOURS[(r - 1) % len(MODEL_COLOURS)] for v in rows]},
                text=[("→ " + v.predicted_label + " (changed)") if v.changed else v.predicted_label for v in rows],
                textposition="auto",
                insidetextanchor="start",
                textfont={"size": 11},
                customdata=["<br>".join(f"{lab}: {p:.2f}" for _, lab, p in v.top_k) for v in rows],
                hovertemplate=f"{m.short} · %{{y}}<br>p(“{m.predicted_label}”) = %{{x:.3f}}<br>top classes:<br>"
                "%{customdata}<extra></extra>",
                name=m.short,
                showlegend=False,
            ),
            row=r,
            col=1,
        )
        fig.update_xaxes(range=[0, 1], row=r, col=1)
        fig.update_yaxes(autorange="reversed", row=r, col=1)
    fig.update_xaxes(title_text="probability of the model's original prediction", row=n, col=1)
    fig.update_annotations(font_size=12)
    uses = [m.short for m in cmp.models if m.changed("reverse")] if "reverse" in cmp.variants else []
    note = (
        f"Reversing the clip changes the prediction of {', '.join(uses)}; "
        if uses
        else "Reversing the clip changes no model's prediction; "
    ) + "a model that looks at frames one by one cannot tell a reversed or shuffled clip from the original."
    return finish(fig, "Does each model use time? The same frames, edited", height=plot_px + 150, top=30, note=note)


def compare_attribution_figure(cmp: Comparison, view: str = "outline") -> go.Figure:
    """The attribution of each model's own top class on the shared frames: each frame as one cell per
    model, so its maps sit side by side (two models: two frames a row; three or four: one frame).
    Each model's maps are scaled to its own 99.5th percentile (attribution magnitudes of different
    models are not comparable; where they lie is). Below, each model's per-frame importance as a share
    of its total: *when* each model looks."""
    if view not in FRAME_VIEWS:
        raise ValueError(f"view must be one of {FRAME_VIEWS}, got {view!r}")
    models = cmp.models
    done = [m for m in models if m.attribution is not None]
    if not done:
        fig = go.Figure()
        reasons = "<br>".join(wrap_title(f"{m.short}: {m.attribution_error or 'no method chosen'}") for m in models)
        fig.add_annotation(
            text=reasons, showarrow=False, align="left", x=0, xanchor="left", y=0.5, xref="paper", yref="paper"
        )
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return finish(fig, "No attribution to show", height=120 + 22 * (reasons.count("<br>") + 1))
    t_all = done[0].attribution.num_frames
    frames = cmp.display_frames if len(cmp.display_frames) == t_all else None
    labels = frame_labels(t_all, cmp.frame_indices, cmp.timestamps)
    signed = any(m.attribution.signed for m in done)
    entry = METHODS.get(cmp.method or done[0].attribution.method)
    method_title = entry.title if entry else (cmp.method or "")
    if signed and entry is not None and entry.signed_curve:
        method_title = f"{entry.title.removesuffix(' (|gradient|)')} (signed)"
    # Each row shows ``groups`` frames, each as one cell per model (two models: two frames a row), so a
    # row is at most 4 cells wide, as on a phone.
    groups = max(1, MAX_CELLS // len(models))
    rows = math.ceil(t_all / groups)
    cols = groups * len(models)

    def cell(t: int, i: int) -> tuple[int, int]:
        return t // groups + 1, (t % groups) * len(models) + i + 1

    titles = [""] * (rows * cols)
    for t in range(t_all):
        for i, m in enumerate(models):
            r, c = cell(t, i)
            title = labels[t]
            if r == 1:
                target = f"“{m.attribution.target_label}”" if m.attribution else "not applicable"
                title = f"<b>{m.short}</b><br>{target}<br>{title}"
            titles[(r - 1) * cols + c - 1] = title
    # Rows: the frames, a spacer holding the horizontal colour bar, the curves.
    gap = 24
    plot_px = (FRAME_ROW_PX + gap) * rows + BAR_ROW_PX + gap + CURVE_PX
    wide = [{"colspan": cols}] + [None] * (cols - 1)
    fig = make_subplots(
        rows=rows + 2,
        cols=cols,
        specs=[[{} for _ in range(cols)] for _ in range(rows)] + [wide, wide],
        subplot_titles=[*titles, "", ""],
        row_heights=[FRAME_ROW_PX] * rows + [BAR_ROW_PX, CURVE_PX],
        vertical_spacing=gap / plot_px,
        horizontal_spacing=0.02,
    )
    curve = rows + 2
    for r in range(1, rows + 2):  # blank cells (no frame, method not applicable) and the spacer row
        for c in range(1, cols + 1 if r <= rows else 2):
            fig.update_xaxes(visible=False, row=r, col=c)
            fig.update_yaxes(visible=False, row=r, col=c)
    for i, m in enumerate(models):
        a = m.attribution
        if a is None:
            continue
        lo, hi = shared_range(a.heatmaps, signed)
        scale = max(abs(lo), abs(hi)) or 1.0
        h, w = a.heatmaps.shape[1:]
        for t in range(t_all):
            r, c = cell(t, i)
            if frames is not None:
                frame = frames[t]
                place = placement(frame.shape[:2], (h, w))
                if view == "crop":
                    frame, place = crop_to_model_view(frame, place)
                add_frame_image(fig, frame, row=r, col=c, x0=0.5, y0=0.5)
                if view == "outline":
                    add_crop_outline(fig, place, row=r, col=c)
            else:
                place = placement((h, w), (h, w))
            fig.add_trace(
                heatmap_on_frame(
                    a.heatmaps[t] / scale,
                    place,
                    name=f"{m.short} {labels[t]}",
                    coloraxis="coloraxis",
                    hovertemplate=f"{m.short} · {labels[t]}<br>x %{{x:.0f}} px, y %{{y:.0f}} px<br>"
                    "attribution %{z:.2f} of its maximum<extra></extra>",
                ),
                row=r,
                col=c,
            )
            fig.update_xaxes(range=[0, place.width], row=r, col=c)
            # Frames hang from their captions (a narrow phone column leaves room below, not above).
            fig.update_yaxes(range=[place.height, 0], constrain="domain", constraintoward="top", row=r, col=c)
    x = np.arange(t_all)
    top = 0.0
    for i, m in enumerate(models):
        if m.attribution is None:
            continue
        imp = np.abs(np.asarray(m.attribution.frame_importance, np.float64))
        share = imp / imp.sum() if imp.sum() > 0 else imp
        top = max(top, float(share.max()))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=share,
                mode="lines+markers",
                name=m.short,
                line={"color": MODEL_COLOURS[i % len(MODEL_COLOURS)]},
                text=labels,
                hovertemplate=f"{m.short} · %{{text}}<br>share of its importance %{{y:.2f}}<extra></extra>",
            ),
            row=curve,
            col=1,
        )
    fig.update_xaxes(
        title_text="source frame · time",
        tickvals=list(x),
        ticktext=[lab.split(" · ")[0] for lab in labels],
        row=curve,
        col=1,
    )
    # From 0: shares of 0.11 .. 0.14 must not look like a large difference.
    fig.update_yaxes(title_text="share of its importance", range=[0, 1.05 * (top or 1.0)], row=curve, col=1)
    fig.update_annotations(font_size=11)
    bar_row = fig.get_subplot(rows + 1, 1).yaxis.domain
    colorscale = overlay_colorscale(signed) if frames is not None else (DIVERGING if signed else SEQUENTIAL)
    fig.update_layout(
        coloraxis={
            "colorscale": colorscale,
            "cmin": -1.0 if signed else 0.0,
            "cmax": 1.0,
            "colorbar": {
                "orientation": "h",
                "title": {"text": "attribution, each model scaled to its own maximum", "side": "top"},
                "x": 0.0,
                "xanchor": "left",
                "len": 0.7,
                "y": (bar_row[0] + bar_row[1]) / 2,
                "yanchor": "middle",
                "thickness": 10,
                "tickfont": {"size": 10},
            },
        },
        legend={"orientation": "h", "x": 0.0, "y": -55 / plot_px, "yanchor": "top"},
    )
    head = f"{method_title} of each model's own top class, on the same frames"
    outlined = frames is not None and view == "outline" and bool(fig.layout.shapes)
    note = "Dashed box = what each model sees." if outlined else None
    return finish(fig, head, height=plot_px + 250, top=62, note=note)
