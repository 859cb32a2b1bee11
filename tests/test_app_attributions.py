"""Every attribution method (and the counterfactuals) on every bundled model, through the same service
call the app's ``/attributions`` and ``/counterfactuals`` endpoints make, after a prediction made the
way the app makes it (under ``torch.inference_mode``).

Issue #15 item 1: on ILA the gradient methods failed with "Inference tensors cannot be saved for
backward" because the class-text features cached during the prediction were inference tensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import tada
from app.service import AppError, Service
from tada import hub
from tada.motion import generate_clip
from tada.motion.media import write_mp4
from tada.text import TextFeatureCache
from visualizations import figures
from visualizations.explain import attribution_methods

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BUNDLED = sorted(n for n in tada.list_models() if hub.weights_status(tada.get_pretrained_cfg(n)) == "bundled")
#: Small settings so that the whole matrix stays fast (the methods' defaults are for real use).
SMALL = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"nt_samples": 2}}
#: Methods that need something only some architectures have: the user gets a clear message elsewhere.
NEEDS = {"rollout": ("tadaformer", "ila")}


def test_the_four_bundled_models_are_covered() -> None:
    families = {n.split("_")[0] for n in BUNDLED}
    assert {"tadaconvnextv2", "tadaformer", "ila", "frame2d"} <= families, BUNDLED


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> Path:
    clip = generate_clip(11, "moving left", num_frames=16, size=64)
    return write_mp4(clip, tmp_path_factory.mktemp("clips") / "left.mp4", fps=8, scale=2)


@pytest.fixture(scope="module")
def service() -> Service:
    return Service(device="cpu")  # its own: the ILA text features must first be computed by a prediction


@pytest.mark.parametrize("model_name", BUNDLED)
def test_every_attribution_method_runs_after_a_prediction(service: Service, clip_path: Path, model_name: str) -> None:
    a = service.analyse(str(clip_path), model_name)  # what /predict does first
    family = model_name.split("_")[0]
    for method in [m.name for m in attribution_methods()]:
        if method in NEEDS and family not in NEEDS[method]:
            with pytest.raises(AppError, match=f"{method} cannot explain {model_name}"):
                service.explain(a, method, **SMALL.get(method, {}))
            continue
        expl = service.explain(a, method, **SMALL.get(method, {}))
        t = a.view.num_frames
        assert expl.heatmaps.shape[0] == t and expl.frame_importance.shape == (t,), method
        assert np.isfinite(expl.heatmaps).all(), method
        # Grad-CAM keeps only positive evidence (ReLU) at a coarse layer: an all-zero map is a valid answer.
        assert np.abs(expl.heatmaps).sum() > 0 or method == "gradcam", method
        assert expl.frame_indices == a.view.frame_indices
        fig = figures.attribution_figure(expl, a.view.display_frames)  # what the endpoint renders
        assert len(fig.data) > t
    cf = service.explain(a, "counterfactuals")
    assert cf.original.predicted_label == a.top(1)[0][0]
    assert {v.name for v in cf.variants} >= {"reverse", "shuffle"}
    assert len(figures.counterfactual_figure(cf).data) == 2


def test_text_features_cached_in_inference_mode_can_be_used_for_gradients() -> None:
    cache = TextFeatureCache()
    weight = torch.nn.Parameter(torch.randn(3, 4))
    with torch.inference_mode():
        cached = cache.get("k", lambda: weight * 2)
    assert not cached.is_inference()
    x = torch.randn(2, 3, requires_grad=True)
    (torch.nn.functional.layer_norm(x @ cache.get("k", lambda: weight), (4,)).sum()).backward()
    assert x.grad is not None


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "smoothgrad"])
def test_signed_gradient_maps_through_the_service(service: Service, clip_path: Path, method: str) -> None:
    """``signed=True`` (off by default): maps keep the sign, so evidence against a class shows; the
    magnitude map of the same run bounds them (|Σ_c a_c| <= Σ_c |a_c|)."""
    name = next(n for n in BUNDLED if n.startswith("tadaconvnextv2"))
    a = service.analyse(str(clip_path), name)
    opts = SMALL.get(method, {})
    plain = service.explain(a, method, target="moving right", **opts)
    signed = service.explain(a, method, target="moving right", signed=True, **opts)
    assert not plain.signed and plain.heatmaps.min() >= 0
    assert signed.signed and signed.target_label == "moving right" and signed.score < 0.5  # the clip moves left
    neg = -signed.heatmaps[signed.heatmaps < 0].sum()
    assert neg > 0.1 * np.abs(signed.heatmaps).sum()  # evidence against "moving right" is drawn as such
    assert (np.abs(signed.heatmaps) <= plain.heatmaps + 1e-5).all()
    fig = figures.attribution_figure(signed, a.view.display_frames)
    assert fig.layout.coloraxis.cmin == pytest.approx(-fig.layout.coloraxis.cmax)
    if method == "integrated_gradients":  # completeness: the signed map adds up to the logit change
        model = service.get_model(name).model
        with torch.no_grad():
            x = a.view.tensor.float()
            gain = model(x)[0, signed.target] - model(torch.zeros_like(x))[0, signed.target]
        delta = signed.meta["convergence_delta"]
        assert float(signed.heatmaps.sum()) == pytest.approx(float(gain), abs=delta + 1e-3 * abs(float(gain)) + 1e-4)
