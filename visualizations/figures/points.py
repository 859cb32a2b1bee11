"""Renderers for ILA: each frame pair's interactive points and masks (slider), and point trajectories."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from visualizations.explanation import PointsExplanation
from visualizations.figures._common import (
    CROP_COLOUR,
    FRAME_VIEWS,
    add_crop_outline,
    add_frame_image,
    crop_to_model_view,
    finish,
    frame_label,
    heatmap_on_frame,
    pair_label,
    wrap_title,
)
from visualizations.overlay import Placement, overlay_colorscale, placement

__all__ = ["points_figure", "trajectories_figure"]


def _place(expl: PointsExplanation, frames: Sequence[np.ndarray] | None, t: int) -> Placement:
    s = expl.input_size
    if frames is None:
        return Placement(scale=1.0, x0=0.0, y0=0.0, width=s, height=s)
    return placement(frames[t].shape[:2], (s, s))


def _frame_and_place(
    expl: PointsExplanation, frames: Sequence[np.ndarray] | None, t: int, view: str
) -> tuple[np.ndarray | None, Placement]:
    place = _place(expl, frames, t)
    if frames is None:
        return None, place
    if view == "crop":
        return crop_to_model_view(frames[t], place)
    return frames[t], place


def _check_view(view: str) -> None:
    if view not in FRAME_VIEWS:
        raise ValueError(f"view must be one of {FRAME_VIEWS}, got {view!r}")


def points_figure(
    expl: PointsExplanation,
    layer: str | int = -1,
    frames: Sequence[np.ndarray] | None = None,
    view: str = "outline",
) -> go.Figure:
    """For one ILA layer, frame pair (t, t+1) side by side with the alignment masks as overlays and the
    two interactive points as markers (pixel coordinates); a slider steps through the pairs, named by
    their source frames (``"f3→f9"``). On the later frame an arrow runs from where the earlier frame's
    point was to the later frame's point: the displacement ILA aligns. ``view``: ``"outline"`` (whole
    frame, the model's square outlined) or ``"crop"`` (only that square)."""
    _check_view(view)
    la = expl.layer(layer)
    if frames is not None and len(frames) != expl.num_frames:
        raise ValueError(f"{len(frames)} display frames for {expl.num_frames} input frames")
    g = la.mask_pre.shape[-1]
    patch = expl.input_size / g
    fi, ts = expl.frame_indices, expl.timestamps
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[f"earlier: {frame_label(0, fi, ts)}", f"later: {frame_label(1, fi, ts)}"],
        horizontal_spacing=0.03,
    )
    per_pair: list[int] = []
    arrows: list[dict] = []
    outlined = False
    for p in range(la.pairs):
        start = len(fig.data)
        tail: tuple[float, float] = (0.0, 0.0)
        for side, (t, mask, (px, py), (u, v)) in enumerate(
            [
                (p, la.mask_pre[p], la.points_px[p, 0:2], la.points[p, 0:2]),
                (p + 1, la.mask_cur[p], la.points_px[p, 2:4], la.points[p, 2:4]),
            ]
        ):
            label = frame_label(t, fi, ts)
            frame, place = _frame_and_place(expl, frames, t, view)
            visible = p == 0
            if frame is not None:
                add_frame_image(fig, frame, row=1, col=side + 1, x0=0.5, y0=0.5, visible=visible)
            if frame is not None and view == "outline" and p == 0:
                add_crop_outline(fig, place, row=1, col=side + 1)  # same square on every frame
                outlined = outlined or bool(fig.layout.shapes)
            mask_place = Placement(place.scale * patch, place.x0, place.y0, place.width, place.height)
            fig.add_trace(
                heatmap_on_frame(
                    mask,
                    mask_place,
                    name=f"mask, {label}",
                    hover_prefix=f"{pair_label(p, fi, ts)}, {label}<br>alignment mask<br>",
                    coloraxis="coloraxis",
                    visible=visible,
                ),
                row=1,
                col=side + 1,
            )
            dx, dy = place.to_display(px, py)
            if side == 0:
                tail = (float(dx), float(dy))
            else:
                arrows.append(_displacement_arrow(tail, (float(dx), float(dy)), visible=p == 0))
            fig.add_trace(
                go.Scatter(
                    x=[float(dx)],
                    y=[float(dy)],
                    mode="markers",
                    marker={"symbol": "x", "size": 14, "color": CROP_COLOUR, "line": {"width": 2, "color": "black"}},
                    name=f"point in {label}",
                    hovertemplate=(
                        f"{pair_label(p, fi, ts)}, {label}<br>point x {float(px):.1f}, y {float(py):.1f} px "
                        f"(model input)<br>grid u {float(u):+.3f}, v {float(v):+.3f}<extra></extra>"
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
        steps.append(
            {
                "method": "update",
                "label": pair_label(p, fi),
                "args": [
                    {"visible": vis},
                    {
                        "title.text": wrap_title(_points_title(la.name, p, fi, ts, outlined)),
                        "annotations[0].text": f"earlier: {frame_label(p, fi, ts)}",
                        "annotations[1].text": f"later: {frame_label(p + 1, fi, ts)}",
                        # The displacement arrows follow the two subplot titles, one per pair.
                        **{f"annotations[{2 + q}].visible": q == p for q in range(la.pairs)},
                    },
                ],
            }
        )
    fig.update_layout(
        sliders=[
            {
                "active": 0,
                "steps": steps,
                "currentvalue": {"prefix": "frame pair "},
                "pad": {"t": 30},
                "font": {"size": 10},
            }
        ],
        coloraxis={
            "colorscale": overlay_colorscale(False) if frames is not None else "Viridis",
            "cmin": 0.0,
            "cmax": 1.0,
            "colorbar": {"title": {"text": "mask", "side": "right"}, "thickness": 10, "len": 0.6},
        },
    )
    fig.update_annotations(font_size=12)
    for arrow in arrows:  # after the titles: annotations[2 + p] is pair p's arrow
        fig.add_annotation(**arrow)
    return finish(fig, _points_title(la.name, 0, fi, ts, outlined), height=540, top=30)


def _displacement_arrow(tail: tuple[float, float], head: tuple[float, float], visible: bool) -> dict:
    """Annotation arrow on the later frame's panel from the earlier frame's point (tail, display pixels;
    both frames share one placement) to the later frame's point (head): the displacement ILA aligns."""
    return {
        "x": head[0],
        "y": head[1],
        "ax": tail[0],
        "ay": tail[1],
        "xref": "x2",
        "yref": "y2",
        "axref": "x2",
        "ayref": "y2",
        "text": "",
        "showarrow": True,
        "arrowhead": 2,
        "arrowsize": 1.2,
        "arrowwidth": 2,
        "arrowcolor": CROP_COLOUR,
        "standoff": 4,  # stop short of the point's marker
        "visible": visible,
        "hovertext": "displacement: from the point in the earlier frame to the point in the later one",
    }


def _points_title(name: str, p: int, fi: Sequence[int] | None, ts: Sequence[float] | None, outlined: bool) -> str:
    text = f"ILA points, {name}: {pair_label(p, fi, ts)}"
    return text + ("; dashed box = what the model sees" if outlined else "")


def trajectories_figure(
    expl: PointsExplanation,
    frames: Sequence[np.ndarray] | None = None,
    background: int | None = None,
    view: str = "outline",
) -> go.Figure:
    """Each layer's interactive point per frame (mean of the points placed on it) joined over time,
    drawn over one display frame (default: the middle one). Markers are coloured by time (one colour
    bar, ticks = source frames); only each path's first and last point carry a frame label, so labels
    of several layers do not pile up."""
    _check_view(view)
    fig = go.Figure()
    t_mid = expl.num_frames // 2 if background is None else background
    frame, place = _frame_and_place(expl, frames, t_mid, view)
    if frame is not None:
        add_frame_image(fig, frame, x0=0.5, y0=0.5, opacity=0.6)  # faded: the lines stand out
        if view == "outline":
            add_crop_outline(fig, place)
    fi, ts = expl.frame_indices, expl.timestamps
    traj = expl.trajectories()  # (layers, T, 2)
    n = expl.num_frames
    labels = [frame_label(t, fi, ts) for t in range(n)]
    short = [f"f{fi[t] if fi else t}" for t in range(n)]
    line_colours = sample_colorscale("Greys", list(np.linspace(0.45, 0.95, max(2, len(traj)))))
    symbols = ["circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon"]
    for i, (la, pts) in enumerate(zip(expl.layers, traj)):
        dx, dy = place.to_display(pts[:, 0], pts[:, 1])
        text = [short[t] if t in (0, n - 1) else "" for t in range(n)]
        fig.add_trace(
            go.Scatter(
                x=dx,
                y=dy,
                mode="lines+markers+text",
                text=text,
                textposition=["top center" if i % 2 == 0 else "bottom center"] * n,
                textfont={"size": 11, "color": "black"},
                marker={
                    "color": list(range(n)),
                    "coloraxis": "coloraxis",
                    "size": 9,
                    "symbol": symbols[i % len(symbols)],
                    "line": {"width": 1, "color": "white"},
                },
                line={"color": line_colours[i], "width": 2},
                name=f"layer {i}",
                customdata=np.stack([pts[:, 0], pts[:, 1]], -1),
                hovertext=labels,
                hovertemplate=f"layer {i}: {la.name}<br>%{{hovertext}}<br>x %{{customdata[0]:.1f}}, "
                "y %{customdata[1]:.1f} px (model input)<extra></extra>",
            )
        )
    step = max(1, n // 4)
    tick_at = sorted(set(list(range(0, n, step)) + [n - 1]))
    fig.update_layout(
        coloraxis={
            "colorscale": "Plasma",
            "cmin": 0,
            "cmax": max(1, n - 1),
            "colorbar": {  # horizontal, under the frame: a vertical one takes a phone's width
                "orientation": "h",
                "title": {"text": "time (colour of the points)", "side": "top"},
                "tickvals": tick_at,
                "ticktext": [labels[t].split(" · ")[0] for t in tick_at],
                "x": 0.0,
                "xanchor": "left",
                "len": 1.0,
                "y": -0.08,
                "yanchor": "top",
                "thickness": 10,
            },
        },
        legend={"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top", "font": {"size": 11}},
    )
    fig.update_xaxes(title_text=None, range=[0, place.width], constrain="domain", showticklabels=False)
    fig.update_yaxes(title_text=None, range=[place.height, 0], scaleanchor="x", showticklabels=False)
    title = f"ILA point paths through the layers (background: {labels[t_mid]})"
    note = "Colour = time; each layer's path is labelled at its first and last frame; hover a point for its frame."
    if frame is not None and view == "outline" and fig.layout.shapes:
        note += " Dashed box = what the model sees."
    fig = finish(fig, title, height=620, note=note)
    fig.update_layout(margin={"b": 150})
    return fig
