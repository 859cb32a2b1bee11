"""Renderers: every figure has traces, titles, axis labels, hover values and no empty or NaN data.

Explanations here are built by hand (the renderers take plain data), so each figure's content is known.
"""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from tada import PretrainedCfg
from visualizations import figures
from visualizations.explanation import (
    AttributionExplanation,
    CalibrationExplanation,
    CalibrationLayer,
    CounterfactualResult,
    CounterfactualVariant,
    DeletionCurve,
    PointsExplanation,
    PointsLayer,
    SanityCheck,
)
from visualizations.figures._common import position_labels
from visualizations.overlay import blend, frames_from_tensor, placement, shared_range

T = 8
RNG = np.random.default_rng(0)
INDICES = [10 + 3 * t for t in range(T)]
TIMES = [i / 30 for i in INDICES]


def check_figure(fig: go.Figure) -> dict:
    """Shared checks: a title, traces, numeric data present and finite, hover text, JSON for gr.Plot."""
    assert isinstance(fig, go.Figure)
    assert fig.layout.title.text
    assert len(fig.data) > 0
    for trace in fig.data:
        if isinstance(trace, go.Image):
            assert trace.source.startswith("data:image/png;base64,")
            continue
        has_data = False
        for key in ("x", "y", "z"):
            value = getattr(trace, key, None)
            if value is None:
                continue
            arr = np.asarray(value)
            assert arr.size > 0, (trace.type, key)
            if arr.dtype.kind in "fiu":
                assert np.isfinite(arr).all(), (trace.type, trace.name, key)
            has_data = True
        assert has_data, trace.type
        assert trace.hovertemplate or trace.hoverinfo != "skip", trace.type

    def reject(constant: str) -> None:
        raise AssertionError(f"{constant} in the figure JSON")

    return json.loads(fig.to_json(), parse_constant=reject)  # what gr.Plot sends to the browser


def axis_titles(fig: go.Figure) -> list[str]:
    layout = fig.layout.to_plotly_json()
    return [v["title"]["text"] for k, v in layout.items() if k.startswith(("xaxis", "yaxis")) and v.get("title")]


def _frames(h: int, w: int) -> list[np.ndarray]:
    return [RNG.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(T)]


def _attribution(signed: bool = False) -> AttributionExplanation:
    maps = RNG.standard_normal((T, 16, 16)).astype(np.float32)
    maps = maps if signed else np.abs(maps)
    return AttributionExplanation(
        method="occlusion" if signed else "integrated_gradients",
        heatmaps=maps,
        frame_importance=maps.reshape(T, -1).sum(1),
        target=2,
        target_label="moving right",
        score=0.8,
        signed=signed,
        frame_indices=INDICES,
        timestamps=TIMES,
    )


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("display", [None, (32, 48)])
def test_attribution_figure(signed: bool, display: tuple[int, int] | None) -> None:
    e = _attribution(signed)
    frames = _frames(*display) if display else None
    fig = figures.attribution_figure(e, frames, columns=4)
    check_figure(fig)
    heatmaps = [d for d in fig.data if isinstance(d, go.Heatmap)]
    images = [d for d in fig.data if isinstance(d, go.Image)]
    assert len(heatmaps) == T and len(images) == (T if frames else 0)
    assert all(h.coloraxis == "coloraxis" for h in heatmaps)  # one colour scale for the figure
    cmin, cmax = fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax
    assert cmax > cmin and (cmin == -cmax if signed else cmin == 0)
    if display:  # 16x16 grid on a 32x48 frame: the centre 32x32 square, 2 px per cell
        assert heatmaps[0].dx == 2.0 and heatmaps[0].x0 == pytest.approx(8 + 1.0)
    curve = [d for d in fig.data if isinstance(d, go.Scatter)]
    assert len(curve) == 1 and np.allclose(curve[0].customdata, e.frame_importance)
    assert "source frame · time" in axis_titles(fig)
    ticks = [a for k, a in fig.layout.to_plotly_json().items() if k.startswith("xaxis") and a.get("ticktext")]
    assert ticks and ticks[0]["ticktext"][1] == "f13 · 0.43 s"
    assert "moving right" in fig.layout.title.text


def test_attribution_figure_rejects_mismatched_frames() -> None:
    with pytest.raises(ValueError):
        figures.attribution_figure(_attribution(), _frames(32, 32)[:3])


def _calibration() -> CalibrationExplanation:
    frame_map = [[0, 1], [1, 2, 3], [3, 4, 5], [5, 6, 7]]
    c = 6
    v2 = CalibrationLayer(
        name="backbone.stages.0.0.dwconv_rf",
        factors=1 + 0.1 * RNG.standard_normal((c, 4)).astype(np.float32),
        bias_factors=1 + 0.1 * RNG.standard_normal((c, 4)).astype(np.float32),
        identity=1.0,
        frame_map=frame_map,
        conv_name="backbone.stages.0.0.dwconv",
        cal_dim="cout",
        base_kernel=RNG.standard_normal((c, 3, 3)).astype(np.float32),
    )
    raw = CalibrationLayer(
        name="backbone.layers.0.tada.tadaconv.rf_func",
        factors=0.2 * RNG.standard_normal((c, 4)).astype(np.float32),
        bias_factors=None,
        identity=0.0,
        frame_map=frame_map,
        conv_name="backbone.layers.0.tada.tadaconv",
        cal_dim="cin",
        base_kernel=RNG.standard_normal((c, 3, 3)).astype(np.float32),
        kernel_partner=np.arange(c),
    )
    return CalibrationExplanation(
        layers=[v2, raw], num_input_frames=T, target=1, target_label="x", frame_indices=INDICES, timestamps=TIMES
    )


def test_position_labels_name_the_frames_each_position_covers() -> None:
    labels = position_labels([[0, 1], [1, 2, 3]], INDICES, TIMES)
    assert labels == ["f10–13 · 0.33–0.43 s", "f13–19 · 0.43–0.63 s"]
    assert position_labels([[0], [0]]) == ["f0 #0", "f0 #1"]  # never two identical category labels


def test_calibration_heatmap_is_centred_on_the_identity() -> None:
    e = _calibration()
    fig = figures.calibration_heatmap(e, 0)
    check_figure(fig)
    assert len(fig.data) == 2  # weight and bias factors
    assert fig.layout.coloraxis.cmin + fig.layout.coloraxis.cmax == pytest.approx(2.0)  # centred on 1
    assert list(fig.data[0].x) == position_labels(e.layers[0].frame_map, INDICES, TIMES, sep="<br>")
    assert "identity = 1" in fig.layout.title.text and "adds +1" in fig.layout.title.text
    assert {"frames covered", "channel (most change first)"} <= set(axis_titles(fig))
    order = np.argsort(-e.layers[0].factors.std(1), kind="stable")
    assert list(fig.data[0].y) == [f"ch {c}" for c in order]  # most change on top, all 6 (< 16) shown
    np.testing.assert_allclose(fig.data[1].z, e.layers[0].bias_factors[order], rtol=1e-6)  # same rows
    fig = figures.calibration_heatmap(e, "backbone.layers.0.tada.tadaconv.rf_func")
    check_figure(fig)
    assert len(fig.data) == 1 and "no +1" in fig.layout.title.text
    assert fig.layout.coloraxis.cmin == pytest.approx(-fig.layout.coloraxis.cmax)


def test_calibration_summary_channels_and_kernel() -> None:
    e = _calibration()
    fig = figures.calibration_summary(e)
    check_figure(fig)
    rel = [(la.factors.std(1) / np.sqrt((la.factors.astype(np.float64) ** 2).mean(1))).mean() for la in e.layers]
    np.testing.assert_allclose(fig.data[0].y, rel, rtol=1e-5)  # scale-free: std / rms over time
    assert [d[1] for d in fig.data[0].customdata] == pytest.approx([la.factors.std(1).mean() for la in e.layers])
    assert "layer (forward order; hover for its name)" in axis_titles(fig)
    timeline = fig.data[2]  # layers x positions (both layers cover the same positions)
    labels = position_labels(e.layers[0].frame_map, INDICES, TIMES, sep="<br>")
    assert timeline.z.shape == (2, 4) and list(timeline.x) == labels
    la = e.layers[1]
    np.testing.assert_allclose(timeline.z[1], np.abs(la.factors - la.factors.mean(1, keepdims=True)).mean(0), rtol=1e-6)

    fig = figures.calibration_channels(e, 0, k=3)
    check_figure(fig)
    top = np.argsort(-e.layers[0].factors.std(1))[:3]
    assert [d.name for d in fig.data if "bias" not in d.name] == [f"channel {c}" for c in top]
    assert "calibration factor" in axis_titles(fig)

    fig = figures.calibrated_kernel_figure(e, 0, channel=2)
    check_figure(fig)
    assert len(fig.data) == 4
    la = e.layers[0]
    for t, trace in enumerate(fig.data):
        np.testing.assert_allclose(trace.z, la.factors[2, t] * la.base_kernel[2], rtol=1e-6)
    fig = figures.calibrated_kernel_figure(e, 1, channel=0)
    assert "output channel 0" in fig.layout.title.text  # cin layer: which W[o, c] slice is shown


def _points() -> PointsExplanation:
    layers = []
    for i in range(2):
        pts = RNG.uniform(-0.75, 0.75, (T - 1, 4)).astype(np.float32)
        layers.append(
            PointsLayer(
                name=f"visual.transformer.resblocks.{i}.message_attn",
                points=pts,
                points_px=32 + pts * 24,
                mask_pre=RNG.uniform(0, 1, (T - 1, 4, 4)).astype(np.float32),
                mask_cur=RNG.uniform(0, 1, (T - 1, 4, 4)).astype(np.float32),
            )
        )
    return PointsExplanation(layers=layers, input_size=64, num_frames=T, frame_indices=INDICES, timestamps=TIMES)


@pytest.mark.parametrize("display", [None, (128, 128)])
def test_points_figure_has_a_slider_over_pairs(display: tuple[int, int] | None) -> None:
    e = _points()
    frames = _frames(*display) if display else None
    fig = figures.points_figure(e, 1, frames)
    check_figure(fig)
    steps = fig.layout.sliders[0].steps
    assert len(steps) == T - 1
    per_pair = len(fig.data) // (T - 1)
    assert per_pair == (6 if frames else 4)  # per frame: (image) + mask + point
    for p, step in enumerate(steps):
        vis = step.args[0]["visible"]
        assert sum(vis) == per_pair and all(vis[p * per_pair : (p + 1) * per_pair])
    assert sum(bool(d.visible) for d in fig.data) == per_pair  # pair 0 shown first
    points = [d for d in fig.data if isinstance(d, go.Scatter)]
    scale = 2.0 if frames else 1.0
    la = e.layers[1]
    assert points[0].x[0] == pytest.approx(la.points_px[0, 0] * scale)
    assert points[1].y[0] == pytest.approx(la.points_px[0, 3] * scale)
    masks = [d for d in fig.data if isinstance(d, go.Heatmap)]
    assert masks[0].dx == pytest.approx(16 * scale)  # 4x4 grid over a 64 px crop


def test_trajectories_figure() -> None:
    e = _points()
    fig = figures.trajectories_figure(e, _frames(64, 64))
    check_figure(fig)
    lines = [d for d in fig.data if isinstance(d, go.Scatter)]
    assert len(lines) == 2 and len(lines[0].x) == T
    traj = e.trajectories()
    # middle frames average the point of the pair before (as "cur") and after (as "pre")
    la = e.layers[0]
    assert traj[0, 3, 0] == pytest.approx((la.points_px[2, 2] + la.points_px[3, 0]) / 2)
    assert traj[0, 0, 1] == pytest.approx(la.points_px[0, 1])
    texts = [t for t in lines[0].text if t]  # only the first and the last frame are labelled
    assert texts == ["f10", f"f{INDICES[-1]}"]
    assert fig.layout.coloraxis.colorbar.ticktext[0] == "f10"  # colour = time, in source frames


def test_counterfactual_figure() -> None:
    def variant(name: str, order: list[int], pred: int, p: float) -> CounterfactualVariant:
        return CounterfactualVariant(
            name,
            name,
            order,
            pred,
            f"c{pred}",
            [(pred, f"c{pred}", p), (1 - pred, f"c{1 - pred}", 1 - p)],
            p,
            pred != 0,
        )

    res = CounterfactualResult(
        original=variant("original", list(range(T)), 0, 0.9),
        variants=[variant("reverse", list(range(T))[::-1], 1, 0.2), variant("freeze", [4] * T, 0, 0.6)],
        meta={"followed_label": "c0"},
        frame_indices=INDICES,
    )
    fig = figures.counterfactual_figure(res)
    check_figure(fig)
    heat, bars = fig.data
    assert heat.z.shape == (3, T) and list(heat.z[1]) == list(range(T))[::-1]
    assert list(bars.x) == [0.9, 0.2, 0.6]
    assert "changed" in bars.text[1] and "changed" not in bars.text[2]
    assert "1 of 2" in fig.layout.title.text
    assert heat.text[1][0] == f"f{INDICES[-1]}"  # reversed: the last source frame comes first
    assert "moment of the original clip (source frame)" in axis_titles(fig)


def test_trust_figures() -> None:
    a, b = _attribution(), _attribution()
    check = SanityCheck(method="gradcam", trained=a, randomised=b, rank_correlation=0.1, cascade=[("head", 0.4)])
    fig = figures.sanity_figure(check)
    check_figure(fig)
    assert "ρ = 0.10" in fig.layout.title.text and "passes" in fig.layout.title.text
    assert len([d for d in fig.data if isinstance(d, go.Heatmap)]) == 8
    curve = DeletionCurve(
        method="gradcam",
        target=1,
        target_label="c1",
        fractions=np.linspace(0, 1, 5, dtype=np.float32),
        scores=np.array([0.9, 0.5, 0.3, 0.2, 0.1], np.float32),
        random_scores=np.array([0.9, 0.8, 0.6, 0.4, 0.1], np.float32),
        auc=0.3,
        random_auc=0.6,
    )
    fig = figures.deletion_figure(curve)
    check_figure(fig)
    assert len(fig.data) == 2 and "AUC 0.300" in fig.data[0].name


def test_figures_render_in_gradio_plot() -> None:
    gr = pytest.importorskip("gradio")
    payload = gr.Plot().postprocess(figures.attribution_figure(_attribution(), _frames(32, 32)))
    assert payload.type == "plotly" and json.loads(payload.plot)["data"]


def test_overlay_helpers() -> None:
    frame = np.full((40, 60, 3), 100, np.uint8)
    heat = np.zeros((10, 10), np.float32)
    heat[2:5, 2:5] = 1.0
    out = blend(frame, heat, 0.0, 1.0)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (out[:, :10] == 100).all()  # outside the centre crop: untouched
    assert (out[0, 10:50] == 100).all()  # zero heat: transparent
    assert not (out[12:18, 20:28] == 100).all()  # hot cells (rows 2-4 -> y 8..20, cols 2-4 -> x 18..30)
    p = placement((40, 60), (10, 10))
    assert (p.scale, p.x0, p.y0) == (4.0, 10.0, 0.0)
    assert shared_range([np.array([-2.0, 1.0])], signed=True, percentile=100) == (-2.0, 2.0)
    lo, hi = shared_range([np.zeros(4)], signed=False)
    assert hi > lo
    cfg = PretrainedCfg(architecture="x", mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4), input_layout="BTCHW")
    model = torch.nn.Module()
    model.pretrained_cfg = cfg
    pixels = torch.randint(0, 256, (T, 3, 8, 8)).float()
    x = (pixels / 255 - torch.tensor(cfg.mean).view(3, 1, 1)) / torch.tensor(cfg.std).view(3, 1, 1)
    back = frames_from_tensor(model, x[None])
    assert len(back) == T and back[0].shape == (8, 8, 3)
    assert np.array_equal(back[3], pixels[3].permute(1, 2, 0).numpy().astype(np.uint8))


# --- issue #15: figures that mislead, phones, what the model sees -----------------------------------


def _all_figures() -> dict[str, go.Figure]:
    cal, pts, wide = _calibration(), _points(), _frames(36, 64)
    res = CounterfactualResult(
        original=CounterfactualVariant("original", "o", list(range(T)), 0, "c0", [(0, "c0", 0.9)], 0.9),
        variants=[CounterfactualVariant("reverse", "r", list(range(T))[::-1], 1, "c1", [(1, "c1", 0.7)], 0.2, True)],
        frame_indices=INDICES,
        timestamps=TIMES,
    )
    a = _attribution()
    return {
        "attribution": figures.attribution_figure(a, wide),
        "attribution_crop": figures.attribution_figure(_attribution(True), wide, view="crop"),
        "calibration_heatmap": figures.calibration_heatmap(cal, 0),
        "calibration_summary": figures.calibration_summary(cal),
        "calibration_channels": figures.calibration_channels(cal, 0),
        "calibrated_kernel": figures.calibrated_kernel_figure(cal, 0),
        "points": figures.points_figure(pts, 0, _frames(64, 112)),
        "trajectories": figures.trajectories_figure(pts, _frames(64, 112)),
        "counterfactuals": figures.counterfactual_figure(res),
        "sanity": figures.sanity_figure(SanityCheck(method="gradcam", trained=a, randomised=a, rank_correlation=0.2)),
    }


def test_no_figure_has_a_fixed_width_or_si_tick_labels() -> None:
    """A phone is 390 px wide: figures take their container's width (gr.Plot autosizes). Numbers are
    written as powers of ten, never "600μ"."""
    for name, fig in _all_figures().items():
        layout = fig.layout.to_plotly_json()
        assert layout.get("width") is None and layout["autosize"] is True, name
        axes = [v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))]
        assert axes and all(a.get("exponentformat") == "power" for a in axes), name
        head, _, note = fig.layout.title.text.partition("<span")
        assert all(len(line) <= 46 for line in head.split("<br>")), name  # fits 390 px at 15 px
        note = note.split(">", 1)[-1].removesuffix("</span>")
        assert all(len(line) <= 58 for line in note.split("<br>")), name  # the 12 px note under it


def _curve_axis(fig: go.Figure):
    curve = next(d for d in fig.data if isinstance(d, go.Scatter))
    return fig.layout["yaxis" + curve.yaxis[1:]]


def test_per_frame_curve_starts_at_zero_and_small_values_are_scaled() -> None:
    e = _attribution()
    e.method = "rollout"
    e.frame_importance = np.linspace(0.75, 0.87, T).astype(np.float32)  # the rollout curve of the issue
    curve_axis = _curve_axis(figures.attribution_figure(e))
    assert curve_axis.range[0] == 0 and curve_axis.range[1] >= 0.87
    e = _attribution()
    e.heatmaps = e.heatmaps * 6e-6  # IG of a tiny model: ~1e-5 per pixel
    e.frame_importance = e.heatmaps.reshape(T, -1).sum(1)
    fig = figures.attribution_figure(e)
    bar = fig.layout.coloraxis
    assert "×10⁻⁵" in bar.colorbar.title.text and 1 <= bar.cmax < 1000
    curve = next(d for d in fig.data if isinstance(d, go.Scatter))
    assert "×10⁻³" in _curve_axis(fig).title.text and 1 <= max(curve.y) < 1000
    np.testing.assert_allclose(curve.customdata, e.frame_importance, rtol=1e-6)  # hover: true values
    assert _curve_axis(fig).range[0] == 0


def test_signed_maps_use_a_diverging_scale_centred_on_zero() -> None:
    e = _attribution()
    e.heatmaps = RNG.standard_normal((T, 16, 16)).astype(np.float32) + 0.5  # mostly positive, some negative
    e.signed = True
    fig = figures.attribution_figure(e, _frames(16, 16))
    bar = fig.layout.coloraxis
    assert bar.cmin == pytest.approx(-bar.cmax)  # midpoint 0, also when the maps lean positive
    colours = [c for _, c in bar.colorscale]
    assert colours[0] != colours[-1] and colours[len(colours) // 2].endswith(",0.000)")  # 0 = transparent
    assert "(signed)" in fig.layout.title.text and "+ for" in _curve_axis(fig).title.text


@pytest.mark.parametrize("identity", [1.0, 0.0])
def test_calibration_scale_is_centred_on_the_identity_the_model_uses(identity: float) -> None:
    la = _calibration().layers[0]
    la.identity = identity
    la.factors = identity + 180 * RNG.uniform(-1, 1, la.factors.shape).astype(np.float32)  # TAdaConvNeXtV2-like
    e = CalibrationExplanation(layers=[la], num_input_frames=T, frame_indices=INDICES, timestamps=TIMES)
    fig = figures.calibration_heatmap(e, 0)
    bar = fig.layout.coloraxis
    assert (bar.cmin + bar.cmax) / 2 == pytest.approx(identity)
    assert f"{identity:g} = identity" in bar.colorbar.ticktext
    assert "times as strongly" in fig.layout.title.text  # what such large factors mean
    assert "times as strongly" in figures.calibration_summary(e).layout.title.text
    la.factors = identity + 0.1 * RNG.uniform(-1, 1, la.factors.shape).astype(np.float32)
    assert "times as strongly" not in figures.calibration_heatmap(e, 0).layout.title.text  # only when it matters


def test_depth_summary_legend_does_not_cover_a_subplot_title() -> None:
    fig = figures.calibration_summary(_calibration())
    legend_y = fig.layout.legend.y
    assert fig.layout.legend.yanchor == "bottom" and legend_y == 1.0
    # the legend sits above the plot; no subplot title may sit there too
    assert all(a.y < legend_y for a in fig.layout.annotations if a.text), [a.text for a in fig.layout.annotations]
    for axis in (fig.layout.yaxis, fig.layout.yaxis2):  # magnitudes, from 0
        assert axis.range[0] == 0


def _image_size(trace: go.Image) -> tuple[int, int]:
    import base64
    import io

    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(trace.source.split(",", 1)[1]))).size


def test_attribution_maps_show_what_the_model_sees() -> None:
    """16:9 frames (36 x 64) and a 16 x 16 grid: the model sees the centre 36 x 36 square."""
    e, wide = _attribution(), _frames(36, 64)
    outline = figures.attribution_figure(e, wide, view="outline")
    rects = [s for s in outline.layout.shapes if s.type == "rect"]
    assert len(rects) == T
    assert (rects[0].x0, rects[0].x1, rects[0].y0, rects[0].y1) == pytest.approx((14, 50, 0, 36))
    assert "what the model sees" in outline.layout.title.text
    assert _image_size(next(d for d in outline.data if isinstance(d, go.Image))) == (64, 36)
    crop = figures.attribution_figure(e, wide, view="crop")
    assert not crop.layout.shapes
    assert _image_size(next(d for d in crop.data if isinstance(d, go.Image))) == (36, 36)
    heat = next(d for d in crop.data if isinstance(d, go.Heatmap))
    assert heat.x0 == pytest.approx(36 / 16 / 2)  # the map covers the whole cropped view
    square = figures.attribution_figure(e, _frames(36, 36))  # nothing cropped: no outline
    assert not square.layout.shapes
    with pytest.raises(ValueError, match="view"):
        figures.attribution_figure(e, wide, view="zoom")


def test_frames_wrap_into_rows_with_distinct_two_line_captions() -> None:
    fig = figures.attribution_figure(_attribution(), _frames(36, 64))
    images = [d for d in fig.data if isinstance(d, go.Image)]
    xaxes = sorted({d.xaxis for d in images})
    assert len(xaxes) == T
    # 8 frames in rows of 4: two rows of frames
    tops = {round(fig.layout[f"yaxis{ax[1:]}"].domain[1], 3) for ax in xaxes}
    assert len(tops) == 2
    captions = [a.text for a in fig.layout.annotations if a.text]
    assert len(captions) == T and len(set(captions)) == T
    assert captions[1] == "f13<br>0.43 s"  # source frame and time, the scheme of every figure
    one_row = figures.attribution_figure(_attribution(), _frames(36, 64), columns=8)
    assert len({round(one_row.layout[f"yaxis{i}"].domain[1], 3) for i in range(1, T + 1)}) == 1


def test_ila_pairs_are_named_by_their_source_frames() -> None:
    fig = figures.points_figure(_points(), 0, _frames(64, 112))
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps[:2]] == ["f10→f13", "f13→f16"]
    assert "f13→f16" in steps[1].args[1]["title.text"]
    assert steps[1].args[1]["annotations[0].text"] == "earlier: f13 · 0.43 s"
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 2  # the model's square, both frames
    cropped = figures.points_figure(_points(), 0, _frames(64, 112), view="crop")
    assert not cropped.layout.shapes


# --- issue #19: calibration a student can read ------------------------------------------------------


def _wide_layer(channels: int = 40) -> CalibrationLayer:
    """Channel c varies over time with std growing with (c * 7) % channels, so the ranking is known;
    between positions 1 and 2 the top channels change most."""
    rank = (np.arange(channels) * 7) % channels
    steps = np.array([0.0, 0.2, 1.0, 1.1])  # the big step: position 1 -> 2
    factors = 1 + (0.01 + rank[:, None] / channels) * steps[None, :]
    return CalibrationLayer(
        name="backbone.stages.2.1.dwconv_rf",
        factors=factors.astype(np.float32),
        bias_factors=None,
        identity=1.0,
        frame_map=[[0, 1], [1, 2, 3], [3, 4, 5], [5, 6, 7]],
    )


def test_heatmap_shows_the_channels_that_change_most_and_folds_the_rest() -> None:
    la = _wide_layer()
    e = CalibrationExplanation(layers=[la], num_input_frames=T, frame_indices=INDICES, timestamps=TIMES)
    fig = figures.calibration_heatmap(e, 0)
    check_figure(fig)
    std = la.factors.std(1)
    top = np.argsort(-std)[: figures.TOP_CHANNELS]
    assert list(fig.data[0].y) == [f"ch {c}" for c in top]
    np.testing.assert_allclose(fig.data[0].z, la.factors[top], rtol=1e-6)
    assert fig.layout.yaxis.autorange == "reversed"  # the first row (most change) on top
    text = fig.layout.title.text.replace("<br>", " ")
    folded = np.sort(std)[::-1][figures.TOP_CHANNELS]
    assert f"16 of 40 channels shown; 24 more vary less (std ≤ {folded:.2g})" in text
    assert len(figures.calibration_heatmap(e, 0, top=None).data[0].y) == 40  # unfolded on request


def test_each_view_reads_itself_in_one_line_from_the_data() -> None:
    la = _wide_layer()
    e = CalibrationExplanation(layers=[la], num_input_frames=T, frame_indices=INDICES, timestamps=TIMES)
    top = [int(c) for c in np.argsort(-la.factors.std(1))[:3]]
    # positions 1 and 2 cover f13–19 and f19–25: the big step of every channel lies between them
    reading = figures.channels_reading(e, 0)
    a = la.factors[top[0]]
    assert reading == (
        f"Channels {top[0]}, {top[1]} and {top[2]} scale their kernel most over time, above all between "
        f"f13–19 and f19–25; channel {top[0]}'s α runs from {a.min():.3g} (f10–13) to {a.max():.3g} (f25–31)."
    )
    for view in (figures.calibration_heatmap(e, 0), figures.calibration_channels(e, 0)):
        assert reading in view.layout.title.text.replace("<br>", " ")
    la.factors[5] = [2.0, -0.5, 3.0, 0.1]
    la.base_kernel = RNG.standard_normal((la.channels, 3, 3)).astype(np.float32)
    kernel = figures.kernel_reading(e, 0, 5)
    assert kernel == (
        "Channel 5's kernel acts most strongly at f19–25 (α = 3) and most weakly at f25–31 (α = 0.1); "
        "it is flipped (α < 0) at f13–19."
    )
    assert kernel in figures.calibrated_kernel_figure(e, 0, channel=5).layout.title.text.replace("<br>", " ")
    flat = CalibrationLayer("l", np.ones((3, 4), np.float32), None, 1.0, [[0], [1], [2], [3]])
    flat_e = CalibrationExplanation(layers=[flat], num_input_frames=4)
    assert "No channel of this layer changes" in figures.channels_reading(flat_e, 0)


def test_depth_summary_says_where_temporal_adaptation_happens() -> None:
    quiet = _wide_layer()
    quiet.name = "backbone.stages.0.0.dwconv_rf"
    quiet.factors = 100 + 0.01 * quiet.factors  # large factors, little change: scale-free ranks it last
    loud = _wide_layer()
    loud.name = "backbone.stages.3.0.dwconv_rf"
    loud.factors = loud.factors.copy()
    loud.factors[:, 3] -= 1.5  # its largest departure from the mean: the last position
    e = CalibrationExplanation(layers=[quiet, _wide_layer(), loud], num_input_frames=T, frame_indices=INDICES)
    reading = figures.depth_reading(e)
    assert reading.startswith(
        "Temporal adaptation is strongest in stage 4 block 1 (stages.3.0), layer 3 of 3, late in the network"
    )
    assert "in stage 1 block 1 (stages.0.0)." in reading
    assert reading.endswith("It departs most from its average calibration at f25–31.")
    fig = figures.calibration_summary(e)
    assert reading in fig.layout.title.text.replace("<br>", " ")
    assert list(fig.data[0].x) == ["1", "2", "3"]  # counted from 1, as the reading counts
    assert int(np.argmax(fig.data[0].y)) == 2
    assert figures.layer_title("backbone.layers.1.tada.tadaconv.rf_func") == "block 2 (layers.1)"


@pytest.fixture(scope="module")
def bundled_calibrations() -> dict[str, CalibrationExplanation]:
    """Both bundled TAdaConv models on a procedural 'moving right' clip, traced for real."""
    import tada
    from tada.motion import generate_clip
    from tada.motion.dataset import to_tensor
    from visualizations import explain

    out = {}
    for name in ("tadaconvnextv2_motion.tiny_8f", "tadaformer_motion.tiny_8f"):
        model = tada.create_model(name, pretrained=True)
        clip = generate_clip(19, "moving right", num_frames=8, size=model.pretrained_cfg.crop_size)
        out[name] = explain(model, to_tensor(clip.frames)[None], "calibration")
    return out


@pytest.mark.parametrize(
    ("name", "identity"), [("tadaconvnextv2_motion.tiny_8f", 1.0), ("tadaformer_motion.tiny_8f", 0.0)]
)
def test_every_calibration_view_is_centred_on_the_identity_of_a_bundled_model(
    bundled_calibrations, name: str, identity: float
) -> None:
    """Every view of every layer of the real models: a factor colour scale's midpoint is the identity
    the model uses (1 with its +1, 0 without), the line view's reference line too; the kernel view's
    scale (weights W, not factors) is centred on 0, and the depth view's departure map starts at 0."""
    e = bundled_calibrations[name]
    assert {la.identity for la in e.layers} == {identity}
    for i, la in enumerate(e.layers):
        heat = figures.calibration_heatmap(e, i)
        check_figure(heat)
        bar = heat.layout.coloraxis
        assert (bar.cmin + bar.cmax) / 2 == pytest.approx(identity, abs=1e-9 * max(1.0, bar.cmax))
        assert f"{identity:g} = identity" in bar.colorbar.ticktext
        rows = [int(y.removeprefix("ch ")) for y in heat.data[0].y]
        assert rows == list(la.channel_ranking()[: figures.TOP_CHANNELS])
        np.testing.assert_array_equal(heat.data[0].z, la.factors[rows])  # the real factors, not rescaled
        top = max(float(np.abs(np.asarray(d.z) - identity).max()) for d in heat.data)
        assert bar.cmax - identity == pytest.approx(top, rel=1e-6)  # symmetric, no shown value clipped
        lines = figures.calibration_channels(e, i)
        check_figure(lines)
        assert [s.y0 for s in lines.layout.shapes] == [identity]
        kernel = figures.calibrated_kernel_figure(e, i)
        check_figure(kernel)
        assert kernel.layout.coloraxis.cmin == pytest.approx(-kernel.layout.coloraxis.cmax)
        for fig in (heat, lines, kernel):
            note = fig.layout.title.text.partition("<span")[2]
            assert "f" in note and ("Channel" in note or "channel" in note), note
    summary = figures.calibration_summary(e)
    check_figure(summary)
    assert "Temporal adaptation is strongest in" in summary.layout.title.text.replace("<br>", " ")
    assert summary.data[2].zmin == 0
