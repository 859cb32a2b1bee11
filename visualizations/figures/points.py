"""Renderers for ILA: each frame pair's interactive points and masks (slider), and point trajectories."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from visualizations.explanation import PointsExplanation
from visualizations.figures._common import add_frame_image, finish, frame_label, heatmap_on_frame
from visualizations.overlay import Placement, overlay_colorscale, placement

__all__ = ["points_figure", "trajectories_figure"]


def _place(expl: PointsExplanation, frames: Sequence[np.ndarray] | None, t: int) -> Placement:
    s = expl.input_size
    if frames is None:
        return Placement(scale=1.0, x0=0.0, y0=0.0, width=s, height=s)
    return placement(frames[t].shape[:2], (s, s))


def points_figure(
    expl: PointsExplanation, layer: str | int = -1, frames: Sequence[np.ndarray] | None = None
) -> go.Figure:
    """For one ILA layer, frame pair (t, t+1) side by side with the alignment masks as overlays and the
    two interactive points as markers (pixel coordinates); a slider steps through the pairs."""
    la = expl.layer(layer)
    if frames is not None and len(frames) != expl.num_frames:
        raise ValueError(f"{len(frames)} display frames for {expl.num_frames} input frames")
    g = la.mask_pre.shape[-1]
    patch = expl.input_size / g
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["earlier frame (t)", "later frame (t+1)"], horizontal_spacing=0.02
    )
    per_pair: list[int] = []
    for p in range(la.pairs):
        start = len(fig.data)
        for side, (t, mask, (px, py), (u, v)) in enumerate(
            [
                (p, la.mask_pre[p], la.points_px[p, 0:2], la.points[p, 0:2]),
                (p + 1, la.mask_cur[p], la.points_px[p, 2:4], la.points[p, 2:4]),
            ]
        ):
            label = frame_label(t, expl.frame_indices, expl.timestamps)
            place = _place(expl, frames, t)
            visible = p == 0
            if frames is not None:
                add_frame_image(fig, frames[t], row=1, col=side + 1, x0=0.5, y0=0.5, visible=visible)
            mask_place = Placement(place.scale * patch, place.x0, place.y0, place.width, place.height)
            fig.add_trace(
                heatmap_on_frame(
                    mask,
                    mask_place,
                    name=f"mask, {label}",
                    hover_prefix=f"pair {p}, {label}<br>alignment mask<br>",
                    coloraxis="coloraxis",
                    visible=visible,
                ),
                row=1,
                col=side + 1,
            )
            dx, dy = place.to_display(px, py)
            fig.add_trace(
                go.Scatter(
                    x=[float(dx)],
                    y=[float(dy)],
                    mode="markers",
                    marker={"symbol": "x", "size": 14, "color": "#00e5ff", "line": {"width": 2, "color": "black"}},
                    name=f"point in {label}",
                    hovertemplate=(
                        f"pair {p}, {label}<br>point x {float(px):.1f}, y {float(py):.1f} px (input crop)"
                        f"<br>grid u {float(u):+.3f}, v {float(v):+.3f}<extra></extra>"
                    ),
                    showlegend=False,
                    visible=visible,
                ),
                row=1,
                col=side + 1,
            )
            fig.update_xaxes(visible=False, range=[0, place.width], row=1, col=side + 1)
            fig.update_yaxes(
                visible=False, range=[place.height, 0], scaleanchor=f"x{side + 1 if side else ''}", row=1, col=side + 1
            )
        per_pair.append(len(fig.data) - start)
    steps = []
    total = len(fig.data)
    offset = 0
    for p, n in enumerate(per_pair):
        vis = [False] * total
        vis[offset : offset + n] = [True] * n
        offset += n
        a = frame_label(p, expl.frame_indices, expl.timestamps)
        b = frame_label(p + 1, expl.frame_indices, expl.timestamps)
        steps.append(
            {
                "method": "update",
                "label": f"{p}",
                "args": [{"visible": vis}, {"title.text": f"ILA points, {la.name}: pair {p} ({a} → {b})"}],
            }
        )
    fig.update_layout(
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": "frame pair "}, "pad": {"t": 30}}],
        coloraxis={
            "colorscale": overlay_colorscale(False) if frames is not None else "Viridis",
            "cmin": 0.0,
            "cmax": 1.0,
            "colorbar": {"title": {"text": "mask"}},
        },
    )
    a0 = frame_label(0, expl.frame_indices, expl.timestamps)
    b0 = frame_label(1, expl.frame_indices, expl.timestamps)
    return finish(fig, f"ILA points, {la.name}: pair 0 ({a0} → {b0})", height=520, width=900)


def trajectories_figure(
    expl: PointsExplanation, frames: Sequence[np.ndarray] | None = None, background: int | None = None
) -> go.Figure:
    """Each layer's interactive point per frame (mean of the points placed on it) joined over time,
    drawn over one display frame (default: the middle one)."""
    fig = go.Figure()
    t_mid = expl.num_frames // 2 if background is None else background
    place = _place(expl, frames, t_mid)
    if frames is not None:
        add_frame_image(fig, frames[t_mid], x0=0.5, y0=0.5, opacity=0.6)  # faded: the lines stand out
    traj = expl.trajectories()  # (layers, T, 2)
    colours = sample_colorscale("Viridis", list(np.linspace(0, 1, max(2, len(traj)))))
    labels = [frame_label(t, expl.frame_indices, expl.timestamps) for t in range(expl.num_frames)]
    for i, (la, pts) in enumerate(zip(expl.layers, traj)):
        dx, dy = place.to_display(pts[:, 0], pts[:, 1])
        fig.add_trace(
            go.Scatter(
                x=dx,
                y=dy,
                mode="lines+markers+text",
                text=[str(t) for t in range(expl.num_frames)],
                textposition="top center",
                marker={"color": colours[i], "size": 8},
                line={"color": colours[i]},
                name=f"layer {i}: {la.name}",
                customdata=np.stack([pts[:, 0], pts[:, 1]], -1),
                hovertext=labels,
                hovertemplate=f"{la.name}<br>%{{hovertext}}<br>x %{{customdata[0]:.1f}}, y %{{customdata[1]:.1f}} px"
                "<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="x (px)", range=[0, place.width], constrain="domain")
    fig.update_yaxes(title_text="y (px)", range=[place.height, 0], scaleanchor="x")
    title = f"ILA point trajectories across layers (background: {labels[t_mid]}; numbers = input frame)"
    return finish(fig, title, height=560, width=760)
