"""Explanation objects: plain data (numpy arrays, lists) that the renderers in ``figures`` turn into plots.

Every explainer returns one of these; none of them holds a model or a torch graph, so they can be
cached, pickled and rendered any number of times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AttributionExplanation",
    "CalibrationExplanation",
    "CalibrationLayer",
    "CounterfactualResult",
    "CounterfactualVariant",
    "DeletionCurve",
    "Explanation",
    "PointsExplanation",
    "PointsLayer",
    "SanityCheck",
]


@dataclass
class FrameInfo:
    """Which source frames the model's input frames are (for axis labels)."""

    #: source-video frame index of each input frame (None: input frames are numbered 0..T-1).
    frame_indices: list[int] | None = None
    #: time in seconds of each input frame in the source video (None when unknown).
    timestamps: list[float] | None = None


@dataclass
class AttributionExplanation(FrameInfo):
    """Where (and when) the evidence for one class is, as per-frame heatmaps on the model input grid.

    Attributes:
        method: explainer name (``"integrated_gradients"``, ``"occlusion"``, ``"gradcam"`` ...).
        heatmaps: (T, H, W) float32, one map per input frame on the model's input grid.
        frame_importance: (T,) float32, how much each input frame matters to the target.
        target: class index explained.
        target_label: its name.
        score: the model's probability of ``target`` on the unmodified clip.
        signed: True when the maps carry a sign (occlusion: negative = hiding it *raises* the score;
            integrated gradients / saliency / SmoothGrad with ``signed=True``: negative = evidence
            against the target); False for magnitudes (gradients by default, Grad-CAM, rollout), >= 0.
        meta: method settings and notes (baseline, steps, layer, window ...).
    """

    method: str = ""
    heatmaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    frame_importance: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    target: int = 0
    target_label: str = ""
    score: float = float("nan")
    signed: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.heatmaps.shape[0])

    def energy_in(self, masks: np.ndarray) -> float:
        """Share of the positive attribution mass inside ``masks`` ((T, H, W) bool, input grid)."""
        pos = np.clip(self.heatmaps, 0, None)
        total = float(pos.sum())
        return float(pos[np.asarray(masks, bool)].sum()) / total if total > 0 else 0.0


@dataclass
class CalibrationLayer:
    """One TAdaConv layer's calibration, for the first clip of the traced batch.

    Attributes:
        name: module path of the routing function (as in :class:`tada.Trace`).
        factors: (C, T') weight-calibration factors alpha.
        bias_factors: (C, T') bias-calibration factors (TAdaConvV2 layers), else None.
        identity: the factor meaning "no calibration": 1.0 where the model adds +1 to the routing
            output (TAda2D, TAdaConvNeXtV2), 0.0 where it uses the raw output (TAdaFormer).
        frame_map: for each temporal position, the input frames it covers.
        conv_name: module path of the calibrated convolution (None when not found).
        cal_dim: ``"cin"`` (alpha scales input channels) or ``"cout"`` (output channels).
        base_kernel: (C, kh, kw) the shared kernel W_b per calibrated channel (for ``cin`` the slice
            towards ``kernel_partner``), None when the weights were not available.
        kernel_partner: for ``cin`` layers, the output channel paired with each input channel in
            ``base_kernel`` (the one with the largest kernel norm); None for ``cout``.
    """

    name: str
    factors: np.ndarray
    bias_factors: np.ndarray | None
    identity: float
    frame_map: list[list[int]]
    conv_name: str | None = None
    cal_dim: str = "cout"
    base_kernel: np.ndarray | None = None
    kernel_partner: np.ndarray | None = None

    @property
    def channels(self) -> int:
        return int(self.factors.shape[0])

    @property
    def positions(self) -> int:
        return int(self.factors.shape[1])

    def temporal_variation(self) -> np.ndarray:
        """(C,) standard deviation over time of each channel's factor (0 = no temporal adaptation)."""
        return self.factors.std(axis=1)

    def channel_ranking(self) -> np.ndarray:
        """Channel indices, the one whose factor varies most over time first (ties keep channel order)."""
        return np.argsort(-self.temporal_variation(), kind="stable")

    def relative_variation(self) -> np.ndarray:
        """(C,) each channel's std over time of alpha divided by its root-mean-square over time: 0 = the
        same kernel at every moment, 1 = as much change as size. Scale-free, so layers whose factors
        are large (a normalisation follows them) compare fairly with layers whose factors are small."""
        rms = np.sqrt((self.factors.astype(np.float64) ** 2).mean(axis=1))
        return (self.factors.std(axis=1) / np.maximum(rms, 1e-12)).astype(np.float32)

    def calibrated_kernel(self, channel: int) -> np.ndarray:
        """(T', kh, kw) the kernel actually applied at each temporal position: W_t = alpha_t * W_b."""
        if self.base_kernel is None:
            raise ValueError(f"no kernel weights recorded for {self.name}")
        return self.factors[channel][:, None, None] * self.base_kernel[channel][None]


@dataclass
class CalibrationExplanation(FrameInfo):
    """Every TAdaConv layer's calibration factors from one traced forward pass (forward order)."""

    layers: list[CalibrationLayer] = field(default_factory=list)
    num_input_frames: int = 0
    target: int | None = None
    target_label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def layer(self, name: str | int) -> CalibrationLayer:
        if isinstance(name, int):
            return self.layers[name]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no calibration recorded for {name!r}; layers: {[la.name for la in self.layers]}")

    def summary(self) -> dict[str, np.ndarray]:
        """Per layer: mean over channels of the temporal std of alpha, of the scale-free relative
        variation (:meth:`CalibrationLayer.relative_variation`), and mean |alpha - identity|."""
        return {
            "temporal_std": np.array([la.temporal_variation().mean() for la in self.layers], np.float32),
            "relative_variation": np.array([la.relative_variation().mean() for la in self.layers], np.float32),
            "deviation": np.array([np.abs(la.factors - la.identity).mean() for la in self.layers], np.float32),
        }


@dataclass
class PointsLayer:
    """ILA interactive points of one layer for the first clip of the traced batch.

    Attributes:
        name: ILA module path.
        points: (T-1, 4) ``[x1, y1, x2, y2]`` in the official grid convention (+-1 = border patch centres).
        points_px: (T-1, 4) the same in pixels of the model input crop.
        mask_pre, mask_cur: (T-1, G, G) alignment masks on frame p and on frame p+1.
    """

    name: str
    points: np.ndarray
    points_px: np.ndarray
    mask_pre: np.ndarray
    mask_cur: np.ndarray

    @property
    def pairs(self) -> int:
        return int(self.points.shape[0])


@dataclass
class PointsExplanation(FrameInfo):
    """ILA's interactive points and alignment masks for every layer (forward order)."""

    layers: list[PointsLayer] = field(default_factory=list)
    input_size: int = 224
    num_frames: int = 0
    target: int | None = None
    target_label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def layer(self, name: str | int) -> PointsLayer:
        if isinstance(name, int):
            return self.layers[name]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no points recorded for {name!r}; layers: {[la.name for la in self.layers]}")

    def trajectories(self) -> np.ndarray:
        """(layers, T, 2) one point per frame per layer in input pixels: each frame's point is the mean
        of the points placed on it (as "cur" of the pair before and "pre" of the pair after)."""
        out = []
        for la in self.layers:
            pts = np.zeros((self.num_frames, 2), np.float32)
            count = np.zeros((self.num_frames, 1), np.float32)
            pts[:-1] += la.points_px[:, 0:2]
            count[:-1] += 1
            pts[1:] += la.points_px[:, 2:4]
            count[1:] += 1
            out.append(pts / count)
        return np.stack(out) if out else np.zeros((0, self.num_frames, 2), np.float32)


@dataclass
class CounterfactualVariant:
    """The model's answer on one temporally edited version of the clip.

    Attributes:
        name: ``original``, ``reverse``, ``shuffle``, ``freeze``, ``drop_alternate``.
        description: what was done, in words (including how T was kept).
        frame_order: for each input position, the original input frame shown there.
        predicted: predicted class index; predicted_label: its name.
        top_k: [(class index, label, probability)] best first.
        target_prob: probability of the original prediction on this variant.
        changed: True when the prediction differs from the original clip's.
    """

    name: str
    description: str
    frame_order: list[int]
    predicted: int
    predicted_label: str
    top_k: list[tuple[int, str, float]]
    target_prob: float
    changed: bool = False


@dataclass
class CounterfactualResult(FrameInfo):
    """The original prediction and each temporal counterfactual; does the model use time?"""

    original: CounterfactualVariant | None = None
    variants: list[CounterfactualVariant] = field(default_factory=list)
    k: int = 5
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def all(self) -> list[CounterfactualVariant]:
        return ([self.original] if self.original else []) + list(self.variants)

    def variant(self, name: str) -> CounterfactualVariant:
        for v in self.all:
            if v.name == name:
                return v
        raise KeyError(name)

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per variant (for tables and JSON)."""
        return [
            {
                "variant": v.name,
                "description": v.description,
                "frame_order": list(v.frame_order),
                "predicted": v.predicted,
                "predicted_label": v.predicted_label,
                "target_prob": v.target_prob,
                "changed": v.changed,
                "top_k": [{"class": c, "label": lab, "prob": p} for c, lab, p in v.top_k],
            }
            for v in self.all
        ]


@dataclass
class SanityCheck(FrameInfo):
    """Model-randomisation check (Adebayo et al. 2018): do the maps depend on the learned weights?

    Attributes:
        method: attribution method compared.
        trained, randomised: the two explanations (same clip, same target index).
        rank_correlation: Spearman correlation of the two maps' absolute values (low = the method
            depends on the weights, as it should).
        cascade: optional [(layers randomised, rank correlation)] from the top layer down.
    """

    method: str = ""
    trained: AttributionExplanation | None = None
    randomised: AttributionExplanation | None = None
    rank_correlation: float = float("nan")
    cascade: list[tuple[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeletionCurve(FrameInfo):
    """Target probability as the most-attributed space-time cells are removed, against a random order.

    Attributes:
        method: attribution method whose ranking is used.
        fractions: (S,) share of cells removed at each step (0 .. 1).
        scores: (S,) target probability along the attribution order (falls fast = faithful maps).
        random_scores: (S,) the same along a random order (the reference).
        auc, random_auc: areas under the two curves (lower = more faithful).
    """

    method: str = ""
    target: int = 0
    target_label: str = ""
    fractions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    random_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    auc: float = float("nan")
    random_auc: float = float("nan")
    meta: dict[str, Any] = field(default_factory=dict)


Explanation = AttributionExplanation | CalibrationExplanation | PointsExplanation | CounterfactualResult
