"""Attribution methods, counterfactuals and trust checks on small models whose answer is known.

The toy models here have hand-set evidence (a box in one frame, the order of frames), so each method
must find exactly that evidence; the real families and the bundled models are tested elsewhere.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tada import PretrainedCfg
from tada.layers.clip import ResidualAttentionBlock, embed_patches
from tada.models.base import VideoClassifier, conv_temporal_positions
from visualizations import counterfactuals, deletion_curve, explain, randomize_model, sanity_check
from visualizations.explanation import AttributionExplanation
from visualizations.methods.gradcam import fold, layer_candidates
from visualizations.methods.rollout import rollout

T, S = 8, 32
BOX = (slice(8, 16), slice(16, 24))  # rows, cols of the evidence box (on the 8-px occlusion grid)
FRAME = 2


class BoxModel(VideoClassifier):
    """Logit 0 = mean red value inside BOX of FRAME; logit 1 = its negative; logit 2 = 0."""

    def __init__(self, layout: str = "BCTHW"):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))
        self.pretrained_cfg = PretrainedCfg(architecture="box", num_classes=3, input_layout=layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pretrained_cfg.input_layout == "BTCHW":
            x = x.transpose(1, 2)
        v = x[:, 0, FRAME, BOX[0], BOX[1]].mean((1, 2)) * self.gain
        return torch.stack([v, -v, torch.zeros_like(v)], 1)


class OrderModel(VideoClassifier):
    """Logit 0 = brightness of the last frame minus the first (it reads time); logit 1 the opposite."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))
        self.pretrained_cfg = PretrainedCfg(architecture="order", num_classes=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = (x[:, :, -1].mean((1, 2, 3)) - x[:, :, 0].mean((1, 2, 3))) * self.gain
        return torch.stack([d, -d], 1)


class FrameMeanModel(VideoClassifier):
    """A frame-averaging model (the 2-D baseline's shape): blind to frame order by construction."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        self.pretrained_cfg = PretrainedCfg(architecture="framemean", num_classes=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        f = torch.relu(self.conv(x.transpose(1, 2).reshape(b * t, c, h, w)))  # (B*T, 8, h, w)
        return self.head(f.mean((2, 3)).view(b, t, -1).mean(1))


class TinyViT(VideoClassifier):
    """CLIP-style video transformer: tubelet stem (3 frames, stride 2), class token per frame, blocks under
    ``backbone.layers`` (as TAdaFormer), class tokens averaged over time."""

    def __init__(self, width: int = 32, patch: int = 8, layers: int = 2):
        super().__init__()
        torch.manual_seed(0)
        g = S // patch
        self.backbone = nn.Module()
        self.backbone.conv1 = nn.Conv3d(3, width, (3, patch, patch), (2, patch, patch), (1, 0, 0), bias=False)
        self.backbone.class_embedding = nn.Parameter(torch.randn(width) * 0.1)
        self.backbone.positional_embedding = nn.Parameter(torch.randn(g * g + 1, width) * 0.1)
        self.backbone.layers = nn.Sequential(*[ResidualAttentionBlock(width, 4) for _ in range(layers)])
        self.head = nn.Linear(width, 5)
        self.pretrained_cfg = PretrainedCfg(architecture="tinyvit", num_classes=5)

    def temporal_positions(self, num_input_frames: int) -> list[list[int]]:
        return conv_temporal_positions(num_input_frames, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone.conv1(x)  # (B, C, T', g, g)
        b, c, tt, g, _ = f.shape
        tokens = f.permute(0, 2, 3, 4, 1).reshape(b * tt, g * g, c)
        z = embed_patches(tokens, self.backbone.class_embedding, self.backbone.positional_embedding).transpose(0, 1)
        z = self.backbone.layers(z)  # (L, B*T', C)
        return self.head(z[0].view(b, tt, c).mean(1))


def _box_clip(layout: str = "BCTHW") -> torch.Tensor:
    x = torch.randn(1, 3, T, S, S, generator=torch.Generator().manual_seed(0)) * 0.3
    x[:, 0, FRAME, BOX[0], BOX[1]] += 1.0  # positive evidence for class 0
    return x.transpose(1, 2).contiguous() if layout == "BTCHW" else x


def _box_mask() -> np.ndarray:
    m = np.zeros((T, S, S), bool)
    m[FRAME, BOX[0], BOX[1]] = True
    return m


@pytest.mark.parametrize("layout", ["BCTHW", "BTCHW"])
@pytest.mark.parametrize(
    "method, opts",
    [
        ("integrated_gradients", {"n_steps": 8, "internal_batch_size": 4}),
        ("saliency", {}),
        ("smoothgrad", {"nt_samples": 4, "nt_samples_batch_size": 4}),
        ("occlusion", {"window_frames": 1, "window_px": 8}),
    ],
)
def test_methods_find_the_evidence_box(layout: str, method: str, opts: dict) -> None:
    model = BoxModel(layout).eval()
    e = explain(model, _box_clip(layout), method, **opts)
    assert isinstance(e, AttributionExplanation)
    assert e.heatmaps.shape == (T, S, S) and e.frame_importance.shape == (T,)
    assert e.target == 0 and e.meta["predicted"] == 0
    assert np.isfinite(e.heatmaps).all()
    assert e.energy_in(_box_mask()) > 0.99
    assert int(np.argmax(e.frame_importance)) == FRAME


def test_integrated_gradients_is_complete_and_reports_progress() -> None:
    model = BoxModel().eval()
    calls: list[tuple[float, str]] = []
    e = explain(model, _box_clip(), "ig", n_steps=16, internal_batch_size=4, progress=lambda f, m: calls.append((f, m)))
    # Completeness: the signed attributions sum to f(x) - f(baseline) (the model is linear: exact).
    x = _box_clip()
    with torch.no_grad():
        expected = float(model(x)[0, 0] - model(torch.zeros_like(x))[0, 0])
    assert sum(e.meta["signed_frame_totals"]) == pytest.approx(expected, rel=1e-4)
    fractions = [f for f, _ in calls]
    assert len(fractions) >= 4 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_target_by_index_and_name() -> None:
    model = BoxModel().eval()
    e = explain(model, _box_clip(), "saliency", target=1)
    assert e.target == 1 and e.target_label == "air drumming"  # the default label set: Kinetics-400
    assert explain(model, _box_clip(), "saliency", target="air drumming").target == 1
    assert np.allclose(e.heatmaps, explain(model, _box_clip(), "saliency", target=0).heatmaps)  # -v vs v
    with pytest.raises(ValueError):
        explain(model, _box_clip(), "saliency", target=7)
    with pytest.raises(ValueError):
        explain(model, _box_clip(), "no_such_method")


@pytest.mark.parametrize("layout", ["BCTHW", "BTCHW"])
def test_frame_ablation_finds_the_frame(layout: str) -> None:
    e = explain(BoxModel(layout).eval(), _box_clip(layout), "temporal")
    assert e.signed
    assert int(np.argmax(e.frame_importance)) == FRAME
    others = np.delete(e.frame_importance, FRAME)
    assert np.abs(others).max() < 1e-6 < e.frame_importance[FRAME]


def test_fold_round_trip_for_tokens_and_frames() -> None:
    b, tt, g, c = 2, 3, 4, 5
    tokens = torch.randn(g * g + 1, b * tt, c)
    grid, unfold = fold(tokens, b)
    assert grid.shape == (b, c, tt, g, g)
    assert torch.equal(unfold(grid), tokens)
    # patch token (row 1, col 2) of clip 1, position 2 is grid[1, :, 2, 1, 2]
    assert torch.equal(grid[1, :, 2, 1, 2], tokens[1 + 1 * g + 2, 1 * tt + 2])
    frames = torch.randn(b * tt, c, g, g)
    grid, unfold = fold(frames, b)
    assert torch.equal(grid[1, :, 2], frames[1 * tt + 2]) and torch.equal(unfold(grid), frames)
    assert fold(torch.randn(7, b * tt, c), b) is None  # 7 tokens: not a square grid


def _manual_token_gradcam(model: TinyViT, x: torch.Tensor, layer: nn.Module, target: int) -> torch.Tensor:
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    out = model(x)
    handle.remove()
    a = store["a"]  # (L, T', C)
    (grad,) = torch.autograd.grad(out[0, target], a)
    a, grad = a[1:], grad[1:]  # drop the class token
    weights = grad.mean((0,))  # (T', C): mean over the h*w patches ...
    weights = weights.mean(0)  # ... and over the T' positions (Captum averages over every axis after C)
    cam = torch.relu((a * weights).sum(-1))  # (h*w, T')
    g = math.isqrt(a.shape[0])
    return cam.T.reshape(-1, g, g).detach()


def test_transformer_gradcam_matches_a_manual_computation() -> None:
    model = TinyViT().eval()
    x = torch.randn(1, 3, T, S, S, generator=torch.Generator().manual_seed(1))
    assert layer_candidates(model) == ["backbone.layers.0:in", "backbone.layers.1:in"]
    e = explain(model, x, "gradcam", target=3)
    assert e.meta["layer"] == "backbone.layers.1:in"  # the residual stream entering the last block
    assert e.meta["layer_grid"] == [1, 32, T // 2, 4, 4]
    manual = _manual_token_gradcam(model, x, model.backbone.layers[0], 3)  # (T', 4, 4), from block 0's output
    assert manual.max() > 0
    # Each 8x8 patch cell of the upsampled map is centred on the manual value at its centre pixels.
    up = torch.nn.functional.interpolate(manual[:, None], size=(S, S), mode="bilinear", align_corners=False)[:, 0]
    cover = model.temporal_positions(T)
    # input frame 0 is covered by position 0 only
    assert cover[0] == [0, 1]
    np.testing.assert_allclose(e.heatmaps[0], up[0].numpy(), rtol=1e-4, atol=1e-6)
    # frame 1 is covered by positions 0 and 1: their mean
    np.testing.assert_allclose(e.heatmaps[1], ((up[0] + up[1]) / 2).numpy(), rtol=1e-4, atol=1e-6)


def test_rollout_maths_and_transformer_maps() -> None:
    eye = torch.eye(5).expand(2, 3, 5, 5)
    r = rollout([eye, eye])
    assert torch.allclose(r, torch.eye(5).expand(2, 5, 5))
    uniform = torch.full((1, 2, 5, 5), 0.2)
    r = rollout([uniform])
    assert torch.allclose(r.sum(-1), torch.ones(1, 5))
    assert torch.allclose(r[0, 0], torch.tensor([0.6, 0.1, 0.1, 0.1, 0.1]))
    model = TinyViT().eval()
    x = torch.randn(1, 3, T, S, S)
    e = explain(model, x, "rollout")
    assert e.heatmaps.shape == (T, S, S) and (e.heatmaps >= 0).all()
    assert e.meta["layers"] == 2 and len(e.meta["frame_map"]) == T // 2
    with pytest.raises(ValueError, match="transformer"):
        explain(BoxModel().eval(), _box_clip(), "rollout")


def test_gradcam_on_a_frame_wise_layer_finds_candidates_by_running_the_model() -> None:
    model = FrameMeanModel().eval()
    x = torch.randn(1, 3, T, S, S)
    from visualizations._model import as_clip_input

    assert layer_candidates(model, as_clip_input(model, x)) == ["conv"]
    e = explain(model, x, "gradcam")
    assert e.meta["layer_grid"] == [1, 8, T, S, S]
    assert np.isfinite(e.heatmaps).all() and e.heatmaps.max() > 0


def test_counterfactuals_separate_an_order_model_from_a_frame_average() -> None:
    ramp = torch.linspace(-1, 1, T).view(1, 1, T, 1, 1).expand(1, 3, T, S, S).clone()
    res = counterfactuals(OrderModel().eval(), ramp, k=2)
    assert res.original.predicted == 0
    assert [v.name for v in res.variants] == ["reverse", "shuffle", "freeze", "drop_alternate"]
    rev = res.variant("reverse")
    assert rev.frame_order == list(range(T - 1, -1, -1)) and rev.changed and rev.predicted == 1
    freeze = res.variant("freeze")
    assert freeze.frame_order == [T // 2] * T and freeze.target_prob == pytest.approx(0.5)
    drop = res.variant("drop_alternate")
    assert drop.frame_order == [0, 0, 2, 2, 4, 4, 6, 6] and not drop.changed
    assert sorted(res.variant("shuffle").frame_order) == list(range(T))
    records = res.to_records()
    assert records[0]["variant"] == "original" and len(records[1]["top_k"]) == 2

    x = torch.randn(1, 3, T, S, S)
    blind = counterfactuals(FrameMeanModel().eval(), x)
    for name in ("reverse", "shuffle"):
        assert blind.variant(name).target_prob == pytest.approx(blind.original.target_prob, abs=1e-6)
        assert not blind.variant(name).changed


def test_deletion_curve_falls_faster_along_the_attribution_order() -> None:
    model = BoxModel().eval()
    x = _box_clip()
    e = explain(model, x, "ig", n_steps=8)
    curve = deletion_curve(model, x, e, steps=8, cell_px=8)
    assert curve.fractions[0] == 0 and curve.fractions[-1] == 1
    assert curve.scores[0] == pytest.approx(curve.random_scores[0])
    assert curve.scores[1] < curve.scores[0]  # the box is 1 of 128 cells: gone at step 1
    assert curve.auc < curve.random_auc


def test_randomised_model_and_sanity_check_plumbing() -> None:
    model = TinyViT().eval()
    rand = randomize_model(model, seed=1)
    for (name, p), (_, q) in zip(model.named_parameters(), rand.named_parameters()):
        if p.numel() > 1 and float(p.detach().std()) > 0:  # constant tensors (zero biases, unit gains) are kept
            assert not torch.equal(p, q), name
            assert float(q.std()) == pytest.approx(float(p.std()), rel=0.35)
        else:
            assert torch.equal(p, q), name
    only_head = randomize_model(model, prefixes=["head"])
    assert torch.equal(only_head.backbone.conv1.weight, model.backbone.conv1.weight)
    assert not torch.equal(only_head.head.weight, model.head.weight)
    x = torch.randn(1, 3, T, S, S)
    check = sanity_check(model, x, "gradcam", cascade=True)
    assert check.trained.target == check.randomised.target
    assert -1 <= check.rank_correlation <= 1
    assert [name for name, _ in check.cascade] == ["head", "backbone.layers.1", "backbone.layers.0", "stem"]
