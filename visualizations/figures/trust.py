"""Renderers for the trust checks: randomisation sanity check and deletion curve."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualizations.explanation import DeletionCurve, SanityCheck
from visualizations.figures._common import finish, frame_labels
from visualizations.overlay import SEQUENTIAL

__all__ = ["sanity_figure", "deletion_figure"]


def _norm(m: np.ndarray) -> np.ndarray:
    a = np.abs(m)
    top = float(a.max())
    return a / top if top > 0 else a


def sanity_figure(check: SanityCheck, num_frames: int = 4) -> go.Figure:
    """Maps of the trained and the weight-randomised model on a few frames (each model's maps scaled to
    its own maximum, shown on one 0–1 scale), the rank correlation, and the cascade if computed."""
    trained, randomised = check.trained, check.randomised
    assert trained is not None and randomised is not None
    t = trained.num_frames
    show = sorted(set(np.linspace(0, t - 1, min(num_frames, t)).round().astype(int).tolist()))
    labels = frame_labels(t, check.frame_indices, check.timestamps)
    extra = 1 if check.cascade else 0
    specs = [[{} for _ in show] for _ in range(2)] + (
        [[{"colspan": len(show)}] + [None] * (len(show) - 1)] if extra else []
    )
    titles = [f"trained · {labels[i]}" for i in show] + [f"randomised · {labels[i]}" for i in show]
    if extra:
        titles.append("cascading randomisation")
    fig = make_subplots(rows=2 + extra, cols=len(show), specs=specs, subplot_titles=titles, vertical_spacing=0.1)
    for r, expl in enumerate((trained, randomised)):
        maps = _norm(expl.heatmaps)
        for c, i in enumerate(show):
            fig.add_trace(
                go.Heatmap(
                    z=maps[i],
                    coloraxis="coloraxis",
                    name=f"{'trained' if r == 0 else 'randomised'} {labels[i]}",
                    hovertemplate="x %{x}, y %{y}<br>|attribution| / max = %{z:.3f}<extra></extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
            fig.update_xaxes(visible=False, row=r + 1, col=c + 1)
            fig.update_yaxes(visible=False, autorange="reversed", row=r + 1, col=c + 1)
    if extra:
        fig.add_trace(
            go.Scatter(
                x=[name for name, _ in check.cascade],
                y=[rho for _, rho in check.cascade],
                mode="lines+markers",
                name="rank correlation",
                hovertemplate="randomised down to %{x}<br>ρ = %{y:.3f}<extra></extra>",
            ),
            row=3,
            col=1,
        )
        fig.update_xaxes(title_text="randomised from the top down to", row=3, col=1)
        fig.update_yaxes(title_text="Spearman ρ", range=[-1, 1], row=3, col=1)
    fig.update_layout(
        coloraxis={"colorscale": SEQUENTIAL, "cmin": 0, "cmax": 1, "colorbar": {"title": {"text": "|a|/max"}}}
    )
    verdict = "passes" if check.rank_correlation < 0.5 else "FAILS"
    title = (
        f"Sanity check ({check.method}): rank correlation trained vs randomised ρ = {check.rank_correlation:.2f}"
        f" — {verdict} (ρ < 0.5 expected)"
    )
    fig.update_annotations(font_size=11)
    return finish(fig, title, height=280 * (2 + extra) + 60, top=30)


def deletion_figure(curve: DeletionCurve) -> go.Figure:
    """Target probability as the most-attributed cells are deleted, against a random deletion order."""
    fig = go.Figure()
    for y, name, dash in (
        (curve.scores, f"{curve.method} order (AUC {curve.auc:.3f})", None),
        (curve.random_scores, f"random order (AUC {curve.random_auc:.3f})", "dash"),
    ):
        fig.add_trace(
            go.Scatter(
                x=curve.fractions,
                y=y,
                mode="lines+markers",
                name=name,
                line={"dash": dash} if dash else None,
                hovertemplate="removed %{x:.0%}<br>p = %{y:.3f}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="share of space-time cells removed (most attributed first)", tickformat=".0%")
    fig.update_yaxes(title_text=f"p(“{curve.target_label}”)", range=[0, 1.02])
    return finish(fig, f"Deletion curve for “{curve.target_label}” (lower area = more faithful map)", height=420)
