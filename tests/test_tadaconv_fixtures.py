"""The official fixtures: checkpoints load through ``create_model`` and reproduce every stored output."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import tada
from tada._builder import build_model_with_cfg as build_model
from tada._factory import infer_architecture
from tada.checkpoints import read_checkpoint
from tada.models.tadaformer import FrameCountError

# Reduced fixture models built with the public builders (NOTES/README of the fixtures folder).
FIXTURES = {
    "tada2d_mini": ("tada2d_r50", {"num_filters": (16, 32, 64, 128, 256), "num_frames": 8}),
    "tadaconvnextv2_mini": (
        "tadaconvnextv2_tiny",
        {"dims": (16, 32, 64, 128), "depths": (1, 1, 2, 1), "route_head_dim": 8, "num_frames": 16},
    ),
    "tadaformer_mini": (
        "tadaformer_b16",
        {"width": 64, "layers": 3, "heads": 4, "input_res": 64, "num_frames": 8, "route_head_dim": 8},
    ),
    "tadaformer_mini_ssv2": (
        "tadaformer_b16",
        {"width": 64, "layers": 2, "heads": 4, "input_res": 64, "num_frames": 8, "reduction": 1,
         "route_ratio": 1, "temp_enhance": True, "double_tada": True},
    ),
}  # fmt: skip
# Stage/layer outputs stored under feat/<path>.
IDENTITY = {"tada2d_mini": 1.0, "tadaconvnextv2_mini": 1.0, "tadaformer_mini": 0.0, "tadaformer_mini_ssv2": 0.0}
TOL = {"rtol": 1e-4, "atol": 1e-4}
FEAT_TOL = {"rtol": 1e-4, "atol": 5e-4}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models on a shared 2-core host: a second OpenMP thread only waits for the scheduler.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fixture_dir(reference_dir):
    return reference_dir / "tadaconv" / "fixtures"


def _load(fixture_dir, name, **extra):
    arch, kwargs = FIXTURES[name]
    return tada.create_model(arch, checkpoint=fixture_dir / f"{name}.pyth", num_classes=10, **{**kwargs, **extra})


def _run(model, x, feat_paths):
    feats, handles = {}, []
    modules = dict(model.named_modules())
    for path in feat_paths:
        handles.append(modules[path].register_forward_hook(lambda m, i, o, p=path: feats.__setitem__(p, o.clone())))
    try:
        with torch.no_grad(), tada.trace(model) as tr:
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        features = model.forward_features(x)
    return logits, features, feats, tr


@pytest.mark.parametrize("impl", ["scale", "grouped"])
@pytest.mark.parametrize("name", list(FIXTURES))
def test_fixture_reproduced(fixture_dir, name, impl):
    io = load_file(str(fixture_dir / f"{name}.io.safetensors"))
    model = _load(fixture_dir, name, calibration=impl)
    assert all(m.calibration == impl for m in model.modules() if hasattr(m, "calibration"))
    feat_paths = [k[len("feat/") :] for k in io if k.startswith("feat/")]
    logits, features, feats, tr = _run(model, io["input"], feat_paths)

    torch.testing.assert_close(logits, io["logits"], **TOL)
    torch.testing.assert_close(tada.probabilities(logits), io["probs"], **TOL)
    torch.testing.assert_close(features, io["features"], **TOL)
    alpha = {k[len("alpha/") :]: v for k, v in io.items() if k.startswith("alpha/")}
    alpha_bias = {k[len("alpha_bias/") :]: v for k, v in io.items() if k.startswith("alpha_bias/")}
    assert set(tr.calibration) == set(alpha)  # trace keys are the official module paths
    assert set(tr.calibration_bias) == set(alpha_bias)
    for key, ref in alpha.items():
        torch.testing.assert_close(tr.calibration[key], ref.flatten(2), **TOL)
    for key, ref in alpha_bias.items():
        torch.testing.assert_close(tr.calibration_bias[key], ref.flatten(2), **TOL)
    for key in feat_paths:
        torch.testing.assert_close(feats[key], io[f"feat/{key}"], **FEAT_TOL)
    assert set(tr.identity.values()) == {IDENTITY[name]}
    # Every temporal position maps back to the input frames it covers (stride-2 stems halve time).
    T = io["input"].shape[2]
    for key, ref in alpha.items():
        cover = tr.frame_map[key]
        assert len(cover) == ref.shape[2]
        assert sorted({f for c in cover for f in c}) == list(range(T))


@pytest.mark.parametrize("name", list(FIXTURES))
def test_batch_sizes_1_and_3(fixture_dir, name):
    io = load_file(str(fixture_dir / f"{name}.io.safetensors"))
    model = _load(fixture_dir, name)
    x = io["input"]
    with torch.no_grad():
        one = model(x[1:2])
        three = model(torch.cat([x[1:2], x[0:1], x[1:2]]))
    torch.testing.assert_close(one, io["logits"][1:2], **TOL)
    torch.testing.assert_close(three, io["logits"][[1, 0, 1]], **TOL)


@pytest.mark.parametrize("name", ["tada2d_mini", "tadaconvnextv2_mini"])
@pytest.mark.parametrize("frames", [4, 7, 12])
def test_conv_models_run_other_frame_counts(fixture_dir, name, frames):
    model = _load(fixture_dir, name)
    x = torch.randn(2, 3, frames, 64, 64)
    with torch.no_grad(), tada.trace(model) as tr:
        logits = model(x)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    positions = frames if name == "tada2d_mini" else (frames + 1) // 2
    assert all(v.shape[-1] == positions for v in tr.calibration.values())
    assert all(len(c) == positions for c in tr.frame_map.values())


@pytest.mark.parametrize("name", ["tadaformer_mini", "tadaformer_mini_ssv2"])
def test_tadaformer_frame_count_is_explicit(fixture_dir, name):
    """Same weights, rebuilt for 4 or 16 frames; a clip of another length is refused, never mixed."""
    model = _load(fixture_dir, name)
    with pytest.raises(FrameCountError, match="built for 8-frame clips but got 4"):
        model(torch.randn(2, 3, 4, 64, 64))
    with pytest.raises(ValueError, match="64x64"):
        model(torch.randn(1, 3, 8, 32, 32))
    for frames in (4, 16):
        other = _load(fixture_dir, name, num_frames=frames)
        a, b = torch.randn(2, 3, frames, 64, 64)
        with torch.no_grad():
            both = other(torch.stack([a, b]))
            alone = other(a[None])
            changed = other(torch.stack([a, b + 1]))
        torch.testing.assert_close(both[:1], alone, **TOL)
        torch.testing.assert_close(changed[:1], alone, **TOL)  # clip 0 does not see clip 1


@pytest.mark.parametrize("name", list(FIXTURES))
def test_architecture_inferred_from_checkpoint(fixture_dir, name):
    ckpt = read_checkpoint(fixture_dir / f"{name}.pyth")
    arch, kwargs = infer_architecture(ckpt.state_dict, ckpt.config)
    expected_arch, expected = FIXTURES[name]
    assert arch == expected_arch
    if name == "tadaformer_mini":
        # The official code hard-codes routing head dim 64; this fixture injected 8 (not in its cfg).
        assert kwargs["route_head_dim"] == 64
        kwargs["route_head_dim"] = 8
    for key, value in expected.items():
        assert kwargs[key] == value, key
    assert kwargs["num_classes"] == 10
    cfg = tada.get_pretrained_cfg(arch).replace(model_kwargs=kwargs, num_classes=kwargs["num_classes"])
    model = build_model(cfg)
    model.load_state_dict(ckpt.state_dict, strict=True)


def test_fixture_configs_agree_with_builders(fixture_dir):
    """The plain-terms rebuild recipes say what the FIXTURES table builds."""
    for name, (_, kwargs) in FIXTURES.items():
        recipe = json.loads((fixture_dir / f"{name}.config.json").read_text())
        assert recipe["num_frames"] == kwargs["num_frames"]
        if "route_head_dim" in kwargs:
            assert recipe["route_head_dim"] == kwargs["route_head_dim"]
        if "dims" in kwargs:
            assert tuple(recipe["dims"]) == kwargs["dims"] and tuple(recipe["depths"]) == kwargs["depths"]
        if "width" in kwargs:
            assert recipe["width"] == kwargs["width"] and recipe["layers"] == kwargs["layers"]
            assert recipe["temp_enhance"] == kwargs.get("temp_enhance", False)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_autograd_paths(fixture_dir, name):
    """With gradients on (attribution methods, training) the out-of-place path gives the same logits."""
    io = load_file(str(fixture_dir / f"{name}.io.safetensors"))
    model = _load(fixture_dir, name)
    x = io["input"][:1].clone().requires_grad_()
    logits = model(x)
    torch.testing.assert_close(logits.detach(), io["logits"][:1], **TOL)
    logits[0, 3].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    model.train()  # batch statistics, dropout, drop path: the training forward runs and back-propagates
    model(io["input"]).logsumexp(-1).sum().backward()
    routed = [p.grad for n, p in model.named_parameters() if ("_rf." in n or "rf_func." in n) and p.grad is not None]
    assert routed and all(torch.isfinite(g).all() for g in routed)


def test_tadaformer_attention_trace(fixture_dir):
    io = load_file(str(fixture_dir / "tadaformer_mini.io.safetensors"))
    model = _load(fixture_dir, "tadaformer_mini")
    with torch.no_grad(), tada.trace(model, attention=True) as tr:
        logits = model(io["input"])
    torch.testing.assert_close(logits, io["logits"], **TOL)  # the weight-returning path changes nothing
    assert list(tr.attention) == [f"backbone.layers.{i}" for i in range(3)]
    maps = tr.attention["backbone.layers.0"]
    assert maps.shape == (2 * 4, 4, 17, 17)  # (B*T', heads, L, L)
    torch.testing.assert_close(maps.sum(-1), torch.ones(8, 4, 17))
