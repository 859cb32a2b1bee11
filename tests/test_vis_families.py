"""Explanations of the real model families, on the reference fixture models (official format, random
weights, reduced sizes): calibration factors and kernels, ILA points, Grad-CAM on transformer blocks and
attention rollout for TAdaFormer and ILA, and gradients through every family."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import tada
from visualizations import explain, figures, randomize_model
from visualizations.explanation import AttributionExplanation, CalibrationExplanation, PointsExplanation
from visualizations.methods.gradcam import layer_candidates

TADACONV = {
    "tada2d_mini": ("tada2d_r50", {"num_filters": (16, 32, 64, 128, 256), "num_frames": 8}),
    "tadaconvnextv2_mini": (
        "tadaconvnextv2_tiny",
        {"dims": (16, 32, 64, 128), "depths": (1, 1, 2, 1), "route_head_dim": 8, "num_frames": 16},
    ),
    "tadaformer_mini": (
        "tadaformer_b16",
        {"width": 64, "layers": 3, "heads": 4, "input_res": 64, "num_frames": 8, "route_head_dim": 8},
    ),
}
ILA_ARGS = (
    "embed_dim image_resolution vision_layers vision_width vision_patch_size context_length vocab_size "
    "transformer_width transformer_heads transformer_layers mit_layers prompts_layers"
).split()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small models on a shared 2-core host: a second thread mostly waits for the scheduler.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tadaconv_model(reference_dir):
    cache: dict[str, torch.nn.Module] = {}

    def load(name: str) -> torch.nn.Module:
        if name not in cache:
            arch, kwargs = TADACONV[name]
            path = reference_dir / "tadaconv" / "fixtures" / f"{name}.pyth"
            cache[name] = tada.create_model(arch, checkpoint=path, num_classes=10, **kwargs)
        return cache[name]

    return load


@pytest.fixture(scope="module")
def ila(reference_dir):
    fixtures = reference_dir / "ila" / "fixtures"
    config = json.loads((fixtures / "ila_tiny.config.json").read_text())
    io = load_file(fixtures / "ila_tiny.io.safetensors")
    c = config["constructor"]
    kwargs = {k: c[k] for k in ILA_ARGS}
    kwargs.update(num_frames=c["T"], num_classes=len(config["classes"]))
    model = tada.create_model("ila_b16", checkpoint=fixtures / "ila_tiny.pth", **kwargs)
    model.set_text_tokens(io["text_tokens"], config["classes"])
    return model, io["input"][:1]


def _clip(frames: int, layout: str = "BCTHW", seed: int = 0) -> torch.Tensor:
    # Fixture weights are random: keep inputs at the scale they were checked with (standard normal).
    x = torch.randn(1, 3, frames, 64, 64, generator=torch.Generator().manual_seed(seed))
    return x.transpose(1, 2).contiguous() if layout == "BTCHW" else x


def _finite_nonzero(e: AttributionExplanation, frames: int, size: int = 64) -> None:
    assert e.heatmaps.shape == (frames, size, size) and e.frame_importance.shape == (frames,)
    assert np.isfinite(e.heatmaps).all() and np.isfinite(e.frame_importance).all()
    assert e.heatmaps.max() > 0


def test_convnext_calibration_kernels_are_what_the_operator_applies(tadaconv_model) -> None:
    model = tadaconv_model("tadaconvnextv2_mini")
    x = _clip(16)
    e = explain(model, x, "calibration")
    assert isinstance(e, CalibrationExplanation)
    assert len(e.layers) == 5 and e.num_input_frames == 16
    first = e.layer("backbone.stages.0.0.dwconv_rf")
    assert first.factors.shape == (16, 8) and first.bias_factors.shape == (16, 8)  # stem halves time
    assert first.identity == 1.0 and first.cal_dim == "cout" and first.conv_name == "backbone.stages.0.0.dwconv"
    assert first.frame_map == model.temporal_positions(16)
    # W_t = alpha_t * W_b is the per-frame kernel: the operator's output equals a plain conv with it
    # (plus the calibrated bias), for features fed through the layer with the recorded factors.
    conv = dict(model.named_modules())[first.conv_name]
    feats = torch.randn(1, 16, 8, 10, 10)
    alpha = torch.from_numpy(first.factors)[None, :, :, None, None]
    beta = torch.from_numpy(first.bias_factors)[None, :, :, None, None]
    with torch.no_grad():
        out = conv(feats, [alpha, beta])
    bias = conv.bias.detach().reshape(-1)
    for t in (0, 5):
        w_t = torch.from_numpy(np.stack([first.calibrated_kernel(c)[t] for c in range(16)]))[:, None]
        ref = F.conv2d(feats[:, :, t], w_t, padding=3, groups=16) + (beta[0, :, t, 0, 0] * bias)[None, :, None, None]
        torch.testing.assert_close(out[:, :, t], ref, rtol=1e-4, atol=1e-5)
    for fig in (
        figures.calibration_heatmap(e, 0),
        figures.calibration_summary(e),
        figures.calibration_channels(e, -1),
        figures.calibrated_kernel_figure(e, 0),
    ):
        assert fig.layout.title.text and len(fig.data) > 0


def test_tada2d_calibrates_input_channels(tadaconv_model) -> None:
    model = tadaconv_model("tada2d_mini")
    e = explain(model, _clip(8), "calibration")
    la = e.layer(0)
    assert la.cal_dim == "cin" and la.identity == 1.0 and la.bias_factors is None
    assert la.factors.shape[1] == 8  # TAda2D keeps the temporal resolution
    w = dict(model.named_modules())[la.conv_name].weight.detach().reshape(-1, la.channels, 3, 3)  # (C_out, C_in, 3, 3)
    c = 3
    o = int(la.kernel_partner[c])
    assert o == int(w[:, c].pow(2).sum((1, 2)).argmax())
    np.testing.assert_allclose(la.calibrated_kernel(c)[2], la.factors[c, 2] * w[o, c].numpy(), rtol=1e-6)
    assert "output channel" in figures.calibrated_kernel_figure(e, 0, channel=c).layout.title.text


def test_tadaformer_gradcam_rollout_and_raw_calibration(tadaconv_model) -> None:
    model = tadaconv_model("tadaformer_mini")
    x = _clip(8)
    with torch.no_grad():
        plain = model(x)
        with tada.trace(model, attention=True):
            traced = model(x)
    torch.testing.assert_close(plain, traced, rtol=1e-5, atol=1e-5)  # recording attention changes nothing

    assert layer_candidates(model) == [f"backbone.layers.{i}:in" for i in range(3)]
    cam = explain(model, x, "gradcam")
    assert cam.meta["layer"] == "backbone.layers.2:in"
    assert cam.meta["layer_grid"] == [1, 64, 4, 4, 4]  # (B, C, T' = 8/2, 64/16, 64/16)
    _finite_nonzero(cam, 8)
    # An earlier block through the same folding:
    _finite_nonzero(explain(model, x, "gradcam", layer="backbone.layers.0:in", target=3), 8)

    roll = explain(model, x, "rollout")
    _finite_nonzero(roll, 8)
    assert roll.meta["layers"] == 3 and roll.meta["frame_map"] == model.temporal_positions(8)
    # Per position, the class token's rolled-out attention on patches is spread over the frames it covers.
    assert 0 < roll.frame_importance.max() <= 1

    cal = explain(model, x, "calibration")
    assert cal.layer(0).identity == 0.0 and cal.layer(0).cal_dim == "cout"
    assert "no +1" in figures.calibration_heatmap(cal, 0).layout.title.text


@pytest.mark.parametrize("name", ["tada2d_mini", "tadaconvnextv2_mini"])
def test_gradients_flow_through_the_conv_families(tadaconv_model, name: str) -> None:
    model = tadaconv_model(name)
    frames = TADACONV[name][1]["num_frames"]
    x = _clip(frames)
    ig = explain(model, x, "ig", n_steps=4, internal_batch_size=4)
    _finite_nonzero(ig, frames)
    cam = explain(model, x, "gradcam")
    _finite_nonzero(cam, frames)
    # 64 px input: the last stage is 2x2, so the default drops to the last stage with >= 7 cells a side
    # (8x8: ConvNeXt stage 1, TAda2D conv3).
    assert cam.meta["layer"] == {"tada2d_mini": "backbone.conv3", "tadaconvnextv2_mini": "backbone.stages.1"}[name]
    assert cam.meta["layer_grid"][-2:] == [8, 8]


def test_ila_points_gradcam_rollout_and_gradients(ila) -> None:
    model, x = ila
    assert model.pretrained_cfg.input_layout == "BTCHW"
    pts = explain(model, x, "points")
    assert isinstance(pts, PointsExplanation)
    assert [la.name for la in pts.layers] == [f"visual.transformer.resblocks.{i}.message_attn" for i in range(2)]
    la = pts.layer(1)
    assert la.points_px.shape == (7, 4) and la.mask_pre.shape == (7, 4, 4)
    # Pixel coordinates of the 64 px crop with 16 px patches: px = 32 + u * 24.
    np.testing.assert_allclose(la.points_px, 32 + la.points * 24, rtol=1e-5)
    assert pts.trajectories().shape == (2, 8, 2)
    frames = [np.zeros((64, 64, 3), np.uint8)] * 8
    fig = figures.points_figure(pts, 0, frames)
    assert len(fig.layout.sliders[0].steps) == 7
    assert any(isinstance(d, go.Scatter) for d in figures.trajectories_figure(pts, frames).data)

    cam = explain(model, x, "gradcam")
    assert cam.meta["layer"] == "visual.transformer.resblocks.1:in"
    assert cam.meta["layer_grid"] == [1, 128, 8, 4, 4]
    _finite_nonzero(cam, 8)

    roll = explain(model, x, "rollout")
    _finite_nonzero(roll, 8)
    assert roll.meta["frame_curve"].startswith("MIT")  # frame weights from the temporal transformer
    assert roll.frame_importance.sum() == pytest.approx(1.0, abs=1e-5)

    ig = explain(model, x, "ig", n_steps=4, internal_batch_size=4)
    _finite_nonzero(ig, 8)

    # The randomised copy for the sanity check must not reuse text features cached from trained weights.
    with torch.no_grad():
        trained_text = model.text_features()
        random_text = randomize_model(model, seed=3).text_features()
    assert not torch.allclose(trained_text, random_text)
