"""The single entry point: ``explain(model, clip, method, target=None, progress=None, **opts)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from visualizations._model import Progress, as_clip_input, forward_logits, label_of, resolve_target
from visualizations.explanation import AttributionExplanation, Explanation
from visualizations.methods import gradcam, ig, occlusion, rollout, smoothgrad, temporal
from visualizations.methods._common import MethodResult

__all__ = ["ATTRIBUTION_METHODS", "METHODS", "explain", "list_methods"]

#: Attribution algorithms: name -> ``fn(model, clip, target, progress, **opts) -> MethodResult``.
ATTRIBUTION_METHODS: dict[str, Callable[..., MethodResult]] = {
    "integrated_gradients": ig.attribute,
    "saliency": smoothgrad.saliency,
    "smoothgrad": smoothgrad.attribute,
    "occlusion": occlusion.attribute,
    "temporal": temporal.attribute,
    "gradcam": gradcam.attribute,
    "rollout": rollout.attribute,
}
#: Explainers that read the model's internals or edit the clip instead of attributing.
OTHER_METHODS = ("calibration", "points", "counterfactuals")
METHODS = (*ATTRIBUTION_METHODS, *OTHER_METHODS)
ALIASES = {
    "ig": "integrated_gradients",
    "grad_cam": "gradcam",
    "frame_ablation": "temporal",
    "attention_rollout": "rollout",
    "noise_tunnel": "smoothgrad",
}


def list_methods() -> list[str]:
    """Every method name :func:`explain` accepts (aliases aside)."""
    return list(METHODS)


def explain(
    model: nn.Module,
    clip: Any,
    method: str,
    target: int | str | None = None,
    progress: Progress | None = None,
    **opts: Any,
) -> Explanation:
    """Explain one clip's prediction.

    Args:
        model: a model from :func:`tada.create_model` (eval mode; it is not modified).
        clip: a :class:`tada.video.Clip` (its ``tensor``, frame ``indices`` and ``timestamps`` are used)
            or a tensor in the model's input layout, (C, T, H, W)/(T, C, H, W) or with a batch of 1.
        method: one of :func:`list_methods` (``integrated_gradients``/``ig``, ``saliency``, ``smoothgrad``,
            ``occlusion``, ``temporal``, ``gradcam``, ``rollout``, ``calibration``, ``points``,
            ``counterfactuals``).
        target: class to explain: None = the predicted class, an index, or a class name.
        progress: ``progress(fraction, message)`` called as the slow methods advance.
        **opts: method settings (e.g. ``n_steps``, ``internal_batch_size``, ``layer``, ``window_px``).

    Returns:
        An :class:`AttributionExplanation` (attribution methods), :class:`CalibrationExplanation`,
        :class:`PointsExplanation` or :class:`CounterfactualResult`.
    """
    name = ALIASES.get(method, method)
    if name == "calibration":
        from visualizations.calibration import calibration_explanation

        return calibration_explanation(model, clip, target=target, **opts)
    if name == "points":
        from visualizations.points import points_explanation

        return points_explanation(model, clip, target=target, **opts)
    if name == "counterfactuals":
        from visualizations.counterfactuals import counterfactuals

        return counterfactuals(model, clip, target=target, **opts)
    if name not in ATTRIBUTION_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if model.training:
        raise ValueError("put the model in eval mode first (model.eval()): explanations assume test-time behaviour")
    ci = as_clip_input(model, clip)
    with torch.no_grad():
        logits = forward_logits(model)(ci.tensor)
    index = resolve_target(model, logits, target)
    result = ATTRIBUTION_METHODS[name](model, ci, index, progress, **opts)
    if not (np.isfinite(result.heatmaps).all() and np.isfinite(result.frame_importance).all()):
        # Say so rather than draw NaN: e.g. SmoothGrad noise pushing an untrained model into overflow.
        raise ValueError(f"{name}: the model produced non-finite values (inf/NaN) on the inputs it was given")
    if progress is not None:
        progress(1.0, f"{name} done")
    probs = torch.softmax(logits.float(), -1)[0]
    return AttributionExplanation(
        method=name,
        heatmaps=result.heatmaps,
        frame_importance=result.frame_importance,
        target=index,
        target_label=label_of(model, index),
        score=float(probs[index]),
        signed=result.signed,
        meta={**result.meta, "predicted": int(probs.argmax())},
        frame_indices=ci.frame_indices,
        timestamps=ci.timestamps,
    )
