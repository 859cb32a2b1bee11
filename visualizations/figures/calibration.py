"""Renderers for TAdaConv calibration: per-layer heatmaps, depth summary, channel lines, kernels over time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualizations.explanation import CalibrationExplanation, CalibrationLayer
from visualizations.figures._common import finish, position_labels, zero_based_range
from visualizations.overlay import DIVERGING

__all__ = [
    "LARGE_FACTOR",
    "calibration_heatmap",
    "calibration_summary",
    "calibration_channels",
    "calibrated_kernel_figure",
    "factor_note",
]

#: Factors this far from the identity get a sentence saying what such sizes mean.
LARGE_FACTOR = 5.0


def _identity_note(layer: CalibrationLayer) -> str:
    if layer.identity == 1.0:
        return "identity = 1 (the model adds +1 to the routing output)"
    return f"identity = {layer.identity:g} (the model uses the raw routing output, no +1)"


def factor_note(layers: Sequence[CalibrationLayer]) -> str:
    """What the colour scale's centre is, and, when some factor is far from it, what large factors mean."""
    identities = sorted({la.identity for la in layers})
    ident = " / ".join(f"{v:g}" for v in identities)
    text = f"White = {ident}: the shared kernel unchanged at that moment."
    top = max((float(np.abs(la.factors - la.identity).max()) for la in layers), default=0.0)
    if top >= LARGE_FACTOR:
        text += (
            f" Factors reach ±{top:.0f} from it: the kernel acts that many times as strongly at that moment "
            "(α < 0 flips it). A normalisation after the convolution rescales its output, so compare α "
            "across channels and moments rather than reading its size."
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


def _short(name: str) -> str:
    for prefix in ("backbone.", "visual.transformer."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def calibration_heatmap(expl: CalibrationExplanation, layer: str | int = -1) -> go.Figure:
    """Channels x temporal positions of one layer's weight factors (and bias factors for V2 layers),
    on a diverging scale centred on the identity value; x labels name the frames each position covers."""
    la = expl.layer(layer)
    xs = _positions(expl, la)
    panels = [("weight calibration α", la.factors)]
    if la.bias_factors is not None:
        panels.append(("bias calibration β", la.bias_factors))
    # Panels stacked, not side by side: each keeps the full width, also on a phone.
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=[p[0] for p in panels], vertical_spacing=0.12)
    dev = max(float(np.abs(p[1] - la.identity).max()) for p in panels) or 1.0
    channels = np.arange(la.channels)
    for i, (title, z) in enumerate(panels):
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=xs,
                y=channels,
                coloraxis="coloraxis",
                name=title,
                hovertemplate="channel %{y}<br>%{x}<br>" + title + " = %{z:.4f}<extra></extra>",
            ),
            row=i + 1,
            col=1,
        )
        fig.update_xaxes(title_text="frames covered", type="category", tickangle=0, tickfont_size=10, row=i + 1, col=1)
        fig.update_yaxes(title_text="channel", row=i + 1, col=1)
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
    return finish(
        fig,
        f"Calibration of {la.name} — {_identity_note(la)}",
        height=len(panels) * max(300, min(520, 3 * la.channels + 160)) + 200,
        top=30,
        note=factor_note([la]),
    )


def calibration_summary(expl: CalibrationExplanation) -> go.Figure:
    """Where in depth (and when) the model adapts over time.

    Top: per layer, the temporal spread of the factors (mean over channels of their std over time) and
    their mean distance from the identity value. Bottom (when every layer has the same temporal
    positions): layers x positions, the mean over channels of |α_t − the channel's mean α|, i.e. at which
    moments of the clip each layer departs from its average calibration.
    """
    s = expl.summary()
    names = [la.name for la in expl.layers]
    short = [_short(n) for n in names]
    index = [str(i) for i in range(len(names))]  # bar labels: numbers (names are in the hover and below)
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
            y=s["temporal_std"],
            name="std of α over time",
            customdata=names,
            hovertemplate="%{customdata}<br>std over time %{y:.4f}<extra></extra>",
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
        title_text="std over time", range=zero_based_range(s["temporal_std"]), row=1, col=1, secondary_y=False
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
    fig = finish(fig, "Temporal calibration across depth", height=height, top=50, note=factor_note(expl.layers))
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
        channels = [int(c) for c in np.argsort(-la.temporal_variation())[:k]]
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
    fig = finish(fig, f"Calibration over time, {la.name}", height=520, note=factor_note([la]))
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
        channel = int(np.argmax(la.temporal_variation()))
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
    return finish(fig, title, height=190 + 230 * rows, top=56)
