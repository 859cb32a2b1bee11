"""The single entry point ``explain(model, clip, method, target=None, progress=None, **opts)`` and the
one table of methods (:data:`METHODS`) that the app's method picker, its GPU time slots and the
figures read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tada.trace import Trace
from tada.video import Clip
from visualizations._model import Progress, as_clip_input, forward_logits, label_of, resolve_target
from visualizations.calibration import calibration_explanation, calibration_from_trace
from visualizations.counterfactuals import counterfactuals
from visualizations.explanation import AttributionExplanation, Explanation
from visualizations.methods import gradcam, ig, occlusion, rollout, smoothgrad, temporal
from visualizations.points import points_explanation, points_from_trace

__all__ = ["ALIASES", "METHODS", "Method", "attribution_methods", "explain", "from_trace", "list_methods"]


@dataclass(frozen=True)
class Method:
    """One explanation method.

    Attributes:
        name: what :func:`explain` takes.
        kind: ``"attribution"`` (maps over the input: ``fn(model, clip, target, progress, **opts) ->
            MethodResult``), ``"internals"`` (read from one traced forward pass: ``fn(model, clip,
            target=...)``) or ``"edit"`` (predictions on edited clips).
        fn: the function that computes it.
        label: name in a method picker.
        title: figure title.
        curve: what the per-frame curve of an attribution figure shows.
        steps: the option that sets the number of iterations (``n_steps``, ``nt_samples``), if any.
        signed_curve: for methods that take ``signed=True`` (maps with a sign: + for the target, −
            against it, drawn on a diverging scale centred on 0), what their per-frame curve shows then;
            None for methods without that option.
        seconds: rough accelerator seconds of one run (ZeroGPU slot size), plus ``seconds_per_step``
            per iteration.
    """

    name: str
    kind: str
    fn: Callable[..., Any]
    label: str
    title: str
    curve: str = "importance"
    steps: str | None = None
    signed_curve: str | None = None
    seconds: int = 15
    seconds_per_step: int = 2

    def cost(self, opts: dict[str, Any]) -> int:
        """Rough accelerator seconds for one run with ``opts`` (capped at 300)."""
        n = int(opts.get(self.steps, 0) or 0) if self.steps else 0
        return int(min(300, self.seconds + self.seconds_per_step * n))


_TABLE = (
    Method(
        "integrated_gradients",
        "attribution",
        ig.attribute,
        "Integrated gradients",
        "Integrated Gradients",
        "Σ |attribution| in the frame",
        steps="n_steps",
        signed_curve="Σ attribution in the frame (+ for, − against)",
        seconds=10,
    ),
    Method(
        "saliency",
        "attribution",
        smoothgrad.saliency,
        "Saliency (plain gradient)",
        "Saliency (|gradient|)",
        "Σ |gradient| in the frame",
        signed_curve="Σ gradient in the frame (+ for, − against)",
    ),
    Method(
        "smoothgrad",
        "attribution",
        smoothgrad.attribute,
        "SmoothGrad",
        "SmoothGrad",
        "Σ mean |gradient| in the frame",
        steps="nt_samples",
        signed_curve="Σ mean gradient in the frame (+ for, − against)",
        seconds=10,
    ),
    Method(
        "occlusion",
        "attribution",
        occlusion.attribute,
        "Occlusion (3-D window)",
        "Occlusion",
        "mean logit drop when occluded",
        seconds=60,
    ),
    Method(
        "temporal",
        "attribution",
        temporal.attribute,
        "Frame ablation (which frames matter)",
        "Frame ablation",
        "logit drop when the frame is removed",
        seconds=20,
    ),
    Method("gradcam", "attribution", gradcam.attribute, "Grad-CAM", "Grad-CAM", "Σ Grad-CAM in the frame"),
    Method(
        "rollout",
        "attribution",
        rollout.attribute,
        "Attention rollout (transformers)",
        "Attention rollout",
        "frame weight",
    ),
    Method("calibration", "internals", calibration_explanation, "Calibration factors", "TAdaConv calibration"),
    Method("points", "internals", points_explanation, "Interactive points", "ILA interactive points"),
    Method("counterfactuals", "edit", counterfactuals, "Counterfactuals", "Counterfactuals", seconds=15),
)
#: Every method by name, in the order a picker lists them.
METHODS: dict[str, Method] = {m.name: m for m in _TABLE}
ALIASES = {
    "ig": "integrated_gradients",
    "grad_cam": "gradcam",
    "frame_ablation": "temporal",
    "attention_rollout": "rollout",
    "noise_tunnel": "smoothgrad",
}
#: Builders of the internals explanations from a ready trace (see :func:`from_trace`).
_FROM_TRACE = {"calibration": calibration_from_trace, "points": points_from_trace}


def attribution_methods() -> list[Method]:
    """The attribution methods (maps over the input), in table order."""
    return [m for m in METHODS.values() if m.kind == "attribution"]


def list_methods() -> list[str]:
    """Every method name :func:`explain` accepts (aliases aside)."""
    return list(METHODS)


def from_trace(
    model: nn.Module,
    clip: Clip,
    tr: Trace,
    logits: torch.Tensor,
    method: str,
    target: int | str | None = None,
) -> Explanation:
    """An internals explanation (``"calibration"`` or ``"points"``) of a forward pass already traced:
    ``clip`` is the one view that went in (as :func:`explain` takes it), ``logits`` what came out."""
    if method not in _FROM_TRACE:
        raise ValueError(f"{method!r} is not read from a trace; choose from {', '.join(_FROM_TRACE)}")
    return _FROM_TRACE[method](model, as_clip_input(model, clip), tr, logits, target)


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
        clip: one view: a :class:`tada.video.Clip` with one row (its frame ``indices``, ``timestamps``
            are kept; :meth:`~tada.video.Clip.main_view` of a multi-view clip) or a tensor in the model's
            input layout, (C, T, H, W)/(T, C, H, W) or with a batch of 1.
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
    if name not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    entry = METHODS[name]
    if entry.kind != "attribution":
        return entry.fn(model, clip, target=target, **opts)
    if model.training:
        raise ValueError("put the model in eval mode first (model.eval()): explanations assume test-time behaviour")
    ci = as_clip_input(model, clip)
    with torch.no_grad():
        logits = forward_logits(model)(ci.tensor)
    index = resolve_target(model, logits, target)
    result = entry.fn(model, ci, index, progress, **opts)
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
        timestamps=ci.frame_timestamps,
    )
