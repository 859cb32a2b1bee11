"""Renderers for TAdaConv calibration: per-layer heatmaps, depth summary, channel lines, kernels over time.

Every view carries a one-line reading computed from the data (which channels, which frames, which
layers), written under its title, so that a student knows where to look first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualizations.explanation import CalibrationExplanation, CalibrationLayer
from visualizations.figures._common import finish, position_label, position_labels, zero_based_range
from visualizations.overlay import DIVERGING

__all__ = [
    "LARGE_FACTOR",
    "TOP_CHANNELS",
    "calibration_heatmap",
    "calibration_summary",
    "calibration_channels",
    "calibrated_kernel_figure",
    "channels_reading",
    "depth_reading",
    "factor_note",
    "kernel_reading",
    "layer_title",
]

#: Factors this far from the identity get a sentence saying what such sizes mean.
LARGE_FACTOR = 5.0
#: Pixels kept free above a title (a gr.Plot label box covers about that much of the figure's top).
LABEL_PX = 22
#: Channels a layer heatmap shows (those whose factor varies most over time); the rest are folded.
TOP_CHANNELS = 16


def _and(items: Sequence[object]) -> str:
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _at(expl: CalibrationExplanation, la: CalibrationLayer, i: int) -> str:
    """Short name of temporal position ``i`` by its source frames: ``"f37–45"``."""
    return position_label(la.frame_map[i], expl.frame_indices)


def layer_title(name: str) -> str:
    """A layer as a student reads it: ``backbone.stages.3.0.dwconv_rf`` -> ``stage 4 block 1
    (stages.3.0)``, ``backbone.layers.1.tada.tadaconv.rf_func`` -> ``block 2 (layers.1)``; counted
    from 1, with the code path (counted from 0, as in the layer picker) in brackets."""
    if m := re.search(r"stages\.(\d+)\.(\d+)", name):
        return f"stage {int(m[1]) + 1} block {int(m[2]) + 1} ({m[0]})"
    if m := re.search(r"layers\.(\d+)", name):
        return f"block {int(m[1]) + 1} ({m[0]})"
    return _short(name)


def channels_reading(
    expl: CalibrationExplanation, layer: str | int = -1, channels: Sequence[int] | None = None, k: int = 3
) -> str:
    """One sentence: the ``k`` channels whose factor varies most over time (or the first ``k`` of
    ``channels``), between which positions they change most, and the range of the first one."""
    la = expl.layer(layer)
    top = [int(c) for c in (la.channel_ranking() if channels is None else channels)][:k]
    if la.positions < 2:
        return "This layer has one temporal position: its kernel cannot change over time."
    if float(la.temporal_variation()[top].max()) <= 1e-6 * max(1.0, float(np.abs(la.factors).max())):
        return "No channel of this layer changes its factor over time: the same kernel at every moment."
    step = np.abs(np.diff(la.factors[top], axis=1)).mean(0)  # mean change between neighbouring positions
    j = int(np.argmax(step))
    a = la.factors[top[0]]
    lo, hi = int(np.argmin(a)), int(np.argmax(a))
    who = f"Channel {top[0]} scales its" if len(top) == 1 else f"Channels {_and(top)} scale their"
    return (
        f"{who} kernel most over time, above all between {_at(expl, la, j)} and {_at(expl, la, j + 1)}; "
        f"channel {top[0]}'s α runs from {a[lo]:.3g} ({_at(expl, la, lo)}) to {a[hi]:.3g} ({_at(expl, la, hi)})."
    )


def kernel_reading(expl: CalibrationExplanation, layer: str | int, channel: int) -> str:
    """One sentence: at which positions the channel's kernel acts most and least strongly, and where
    it is flipped (α < 0)."""
    la = expl.layer(layer)
    a = la.factors[channel]
    strong, weak = int(np.argmax(np.abs(a))), int(np.argmin(np.abs(a)))
    text = (
        f"Channel {channel}'s kernel acts most strongly at {_at(expl, la, strong)} (α = {a[strong]:.3g}) "
        f"and most weakly at {_at(expl, la, weak)} (α = {a[weak]:.3g})"
    )
    flipped = [_at(expl, la, i) for i in np.flatnonzero(a < 0)]
    if flipped and len(flipped) < len(a):
        text += f"; it is flipped (α < 0) at {_and(flipped)}"
    return text + "."


def depth_reading(expl: CalibrationExplanation) -> str:
    """One or two sentences: the layer whose kernels change most over time (scale-free measure,
    :meth:`CalibrationLayer.relative_variation`), where it sits in depth, the least adaptive layer and,
    when the layers share their positions, the moment the strongest layer departs most from its mean."""
    v = expl.summary()["relative_variation"]
    n = len(v)
    i, j = int(np.argmax(v)), int(np.argmin(v))
    la = expl.layers[i]
    if n == 1:
        text = f"Its kernels change by {v[i]:.0%} of their size over the clip."
    else:
        where = ("early in", "in the middle of", "late in")[min(2, 3 * i // n)]
        text = (
            f"Temporal adaptation is strongest in {layer_title(la.name)}, layer {i + 1} of {n}, {where} "
            f"the network: its kernels change by {v[i]:.0%} of their size over the clip, against {v[j]:.0%} "
            f"in {layer_title(expl.layers[j].name)}."
        )
    if la.positions > 1:
        departure = np.abs(la.factors - la.factors.mean(1, keepdims=True)).mean(0)
        text += f" It departs most from its average calibration at {_at(expl, la, int(np.argmax(departure)))}."
    return text


def _identity_note(layer: CalibrationLayer) -> str:
    if layer.identity == 1.0:
        return "identity = 1 (the model adds +1 to the routing output)"
    return f"identity = {layer.identity:g} (the model uses the raw routing output, no +1)"


def factor_note(layers: Sequence[CalibrationLayer], centre: str = "White") -> str:
    """What the scale's centre is (``centre``: how the figure marks it) and means for the kernel, and,
    when some factor is far from it, what large factors mean."""
    identities = sorted({la.identity for la in layers})
    parts = []
    for v in identities:
        if v == 1.0:
            parts.append(f"{centre} = 1: the shared kernel unchanged at that moment.")
        else:  # the raw routing output scales the kernel: 0 switches it off
            parts.append(f"{centre} = {v:g}: no +1 here, so α = 0 switches the kernel off and α < 0 flips it.")
    text = " ".join(parts)
    top = max((float(np.abs(la.factors - la.identity).max()) for la in layers), default=0.0)
    if top >= LARGE_FACTOR:
        text += (
            f" Factors reach ±{top:.0f} from it: the kernel acts up to that many times as strongly; a "
            "normalisation follows, so compare channels and moments, not sizes."
        )
    return text


def _positions(expl: CalibrationExplanation, layer: CalibrationLayer, sep: str = "<br>") -> list[str]:
    return position_labels(layer.frame_map, expl.frame_indices, expl.timestamps, sep)


def _identity_colorbar(identity: float, dev: float, title: str) -> dict:
    """A colour bar with ticks at identity − dev, identity and identity + dev (the centre labelled)."""
    ticks = [identity - dev, identity, identity + dev]
    return {
        "title": {"text": title, "side": "right"},
        "tickvals": ticks,
        "ticktext": [f"{ticks[0]:.3g}", f"{identity:g} = identity", f"{ticks[2]:.3g}"],
        "thickness": 12,
    }


def _finish(fig: go.Figure, title: str, height: int, top: int = 20, note: str | None = None) -> go.Figure:
    """:func:`finish`, plus room above the title: the app's plot box draws its label over the top
    left corner of the figure, where the first line of the title would be."""
    fig = finish(fig, title, height=height + LABEL_PX, top=top, note=note)
    fig.update_layout(margin_t=fig.layout.margin.t + LABEL_PX)
    return fig


def _short(name: str) -> str:
    for prefix in ("backbone.", "visual.transformer."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def calibration_heatmap(
    expl: CalibrationExplanation, layer: str | int = -1, top: int | None = TOP_CHANNELS
) -> go.Figure:
    """The ``top`` channels whose factor varies most over time (most first; None = every channel) x
    temporal positions of one layer's weight factors (and bias factors for V2 layers, same channels),
    on a diverging scale centred on the identity value; the other channels are folded into a note.
    x labels name the frames each position covers; the subtitle reads the figure in one line."""
    la = expl.layer(layer)
    xs = _positions(expl, la)
    order = la.channel_ranking()
    shown = order if top is None else order[:top]
    rows = [f"ch {c}" for c in shown]
    panels = [("weight calibration α", la.factors[shown])]
    if la.bias_factors is not None:
        panels.append(("bias calibration β", la.bias_factors[shown]))
    # Panels stacked, not side by side: each keeps the full width, also on a phone.
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=[p[0] for p in panels], vertical_spacing=0.12)
    dev = max(float(np.abs(p[1] - la.identity).max()) for p in panels) or 1.0
    for i, (title, z) in enumerate(panels):
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=xs,
                y=rows,
                coloraxis="coloraxis",
                name=title,
                hovertemplate="%{y}<br>%{x}<br>" + title + " = %{z:.4f}<extra></extra>",
            ),
            row=i + 1,
            col=1,
        )
        fig.update_xaxes(title_text="frames covered", type="category", tickangle=0, tickfont_size=10, row=i + 1, col=1)
        # The channel that varies most on top.
        fig.update_yaxes(
            title_text="channel (most change first)", type="category", autorange="reversed", row=i + 1, col=1
        )
    # Centred on the identity the model actually uses (1 with the +1 offset, 0 without): white = no change.
    fig.update_layout(
        coloraxis={
            "colorscale": DIVERGING,
            "cmin": la.identity - dev,
            "cmax": la.identity + dev,
            "colorbar": _identity_colorbar(la.identity, dev, "factor"),
        }
    )
    fig.update_annotations(font_size=12)
    note = channels_reading(expl, layer)
    folded = la.channels - len(shown)
    if folded:
        below = float(la.temporal_variation()[order[len(shown)]])
        note += f" {len(shown)} of {la.channels} channels shown; {folded} more vary less (std ≤ {below:.2g})."
    return _finish(
        fig,
        f"Calibration of {la.name} — {_identity_note(la)}",
        height=len(panels) * max(260, min(520, 16 * len(shown) + 120)) + 260,
        top=30,
        note=f"{note} {factor_note([la])}",
    )


def calibration_summary(expl: CalibrationExplanation) -> go.Figure:
    """Where in depth (and when) the model adapts over time.

    Top: per layer, how much its kernels change over time (mean over channels of the std over time of
    α divided by its root-mean-square: scale-free, 0 = never) and the factors' mean distance from the
    identity value. Bottom (when every layer has the same temporal
    positions): layers x positions, the mean over channels of |α_t − the channel's mean α|, i.e. at which
    moments of the clip each layer departs from its average calibration.
    """
    s = expl.summary()
    names = [la.name for la in expl.layers]
    short = [_short(n) for n in names]
    # Bar labels: numbers from 1, as the reading counts layers (names are in the hover).
    index = [str(i + 1) for i in range(len(names))]
    maps = {tuple(map(tuple, la.frame_map)) for la in expl.layers}
    timeline = len(maps) == 1
    rows = 2 if timeline else 1
    fig = make_subplots(
        rows=rows,
        cols=1,
        specs=[[{"secondary_y": True}]] + ([[{}]] if timeline else []),
        row_heights=[0.5, 0.5] if timeline else [1.0],
        vertical_spacing=0.22,
        # Row 1 has no subplot title: its legend, above it, names both series (a title there collided).
        subplot_titles=[""] + (["when each layer departs from its mean calibration"] if timeline else []),
    )
    fig.add_trace(
        go.Bar(
            x=index,
            y=s["relative_variation"],
            name="change over time (std / rms of α)",
            customdata=[[n, float(v)] for n, v in zip(names, s["temporal_std"])],
            hovertemplate="%{customdata[0]}<br>std / rms over time %{y:.3f}"
            "<br>std over time %{customdata[1]:.4f}<extra></extra>",
        ),
        row=1,
        col=1,
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=index,
            y=s["deviation"],
            name="mean |α − identity| (right axis)",
            mode="lines+markers",
            customdata=names,
            hovertemplate="%{customdata}<br>mean |α − identity| %{y:.4f}<extra></extra>",
        ),
        row=1,
        col=1,
        secondary_y=True,
    )
    fig.update_xaxes(title_text="layer (forward order; hover for its name)", type="category", row=1, col=1)
    # Both are magnitudes: their axes start at 0.
    fig.update_yaxes(
        title_text="change over time",
        range=zero_based_range(s["relative_variation"]),
        row=1,
        col=1,
        secondary_y=False,
    )
    fig.update_yaxes(
        title_text="mean |α − identity|",
        range=zero_based_range(s["deviation"]),
        showgrid=False,
        row=1,
        col=1,
        secondary_y=True,
    )
    if timeline:
        z = np.stack([np.abs(la.factors - la.factors.mean(1, keepdims=True)).mean(0) for la in expl.layers])
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=_positions(expl, expl.layers[0]),
                y=index,  # numbers as in the bars above: names would take a phone's width
                customdata=[[n] * z.shape[1] for n in short],
                colorscale="Viridis",
                zmin=0.0,
                zmax=max(float(z.max()), 1e-12),
                name="departure",
                colorbar={"title": {"text": "|α − mean|", "side": "right"}, "len": 0.4, "y": 0.0, "yanchor": "bottom"},
                hovertemplate="layer %{y}: %{customdata}<br>%{x}<br>mean |α_t − mean α| = %{z:.4f}<extra></extra>",
            ),
            row=2,
            col=1,
        )
        fig.update_xaxes(title_text="frames covered", type="category", tickangle=0, tickfont_size=10, row=2, col=1)
        fig.update_yaxes(title_text="layer", type="category", autorange="reversed", row=2, col=1)
    height = 460 + (max(300, 18 * len(names) + 140) if timeline else 0)
    note = f"{depth_reading(expl)} {factor_note(expl.layers, centre='Identity')}"
    fig = _finish(fig, "Temporal calibration across depth", height=height + 40, top=50, note=note)
    fig.update_annotations(font_size=12)
    # The legend sits between the title and the first panel, which has no subplot title to cover.
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11}})
    return fig


def calibration_channels(
    expl: CalibrationExplanation, layer: str | int = -1, channels: Sequence[int] | None = None, k: int = 5
) -> go.Figure:
    """Selected channels' factors as lines over time (default: the ``k`` that vary most over time)."""
    la = expl.layer(layer)
    xs = _positions(expl, la)
    if channels is None:
        channels = [int(c) for c in la.channel_ranking()[:k]]
    fig = go.Figure()
    for c in channels:
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=la.factors[c],
                mode="lines+markers",
                name=f"channel {c}",
                hovertemplate=f"channel {c}<br>%{{x}}<br>α = %{{y:.4f}}<extra></extra>",
            )
        )
        if la.bias_factors is not None:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=la.bias_factors[c],
                    mode="lines",
                    line={"dash": "dot"},
                    name=f"channel {c} (bias β)",
                    hovertemplate=f"channel {c}<br>%{{x}}<br>β = %{{y:.4f}}<extra></extra>",
                )
            )
    fig.add_hline(y=la.identity, line_dash="dash", line_color="grey", annotation_text=f"identity {la.identity:g}")
    fig.update_xaxes(title_text="frames covered", type="category", tickangle=0, tickfont_size=10)
    fig.update_yaxes(title_text="calibration factor")
    fig.update_layout(legend={"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top", "font": {"size": 11}})
    note = f"{channels_reading(expl, layer, channels)} {factor_note([la], centre='Dashed line')}"
    fig = _finish(fig, f"Calibration over time, {la.name}", height=560, note=note)
    fig.update_layout(margin={"b": 130})
    return fig


def calibrated_kernel_figure(
    expl: CalibrationExplanation, layer: str | int = -1, channel: int | None = None, columns: int = 4
) -> go.Figure:
    """The kernel actually applied at each temporal position, W_t = α_t · W_b, for one channel
    (default: the channel whose factor varies most over time), on one shared diverging scale, in rows
    of ``columns`` positions (the hover names each position's frames and times)."""
    la = expl.layer(layer)
    if channel is None:
        channel = int(la.channel_ranking()[0])
    kernels = la.calibrated_kernel(channel)  # (T', kh, kw)
    xs = _positions(expl, la)
    n = kernels.shape[0]
    cols = min(columns, n)
    rows = -(-n // cols)
    short = _positions(expl, la, sep=" · ")
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{short[i].replace(' · ', '<br>')}<br>α = {la.factors[channel, i]:.3g}" for i in range(n)],
        horizontal_spacing=0.04,
        vertical_spacing=0.35 / rows,
    )
    top = float(np.abs(kernels).max()) or 1.0
    for i in range(n):
        r, c = divmod(i, cols)
        fig.add_trace(
            go.Heatmap(
                z=kernels[i],
                coloraxis="coloraxis",
                name=xs[i],
                hovertemplate=f"{xs[i]}<br>row %{{y}}, col %{{x}}<br>W = %{{z:.4g}}<extra></extra>",
            ),
            row=r + 1,
            col=c + 1,
        )
        fig.update_xaxes(title_text="kernel col" if i == 0 else None, constrain="domain", row=r + 1, col=c + 1)
        fig.update_yaxes(
            title_text="kernel row" if i == 0 else None,
            autorange="reversed",
            constrain="domain",
            scaleanchor=f"x{i + 1 if i else ''}",
            row=r + 1,
            col=c + 1,
        )
    fig.update_annotations(font_size=11)
    fig.update_layout(coloraxis_colorbar={"thickness": 12})
    partner = ""
    if la.kernel_partner is not None:
        side = "output" if la.cal_dim == "cin" else "input"
        partner = f", slice with {side} channel {int(la.kernel_partner[channel])}"
    fig.update_layout(
        coloraxis={"colorscale": DIVERGING, "cmin": -top, "cmax": top, "colorbar": {"title": {"text": "W"}}}
    )
    title = f"Calibrated kernel W_t = α_t · W_b, {la.conv_name or la.name}, channel {channel} ({la.cal_dim}{partner})"
    return _finish(fig, title, height=230 + 230 * rows, top=56, note=kernel_reading(expl, layer, channel))
