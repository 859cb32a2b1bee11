"""Compare 2-4 models on the *identical* frames: top-k, temporal counterfactuals and one attribution method.

The clip is decoded once: one frame set is sampled with the protocol of the *reference* model (the first
model named) and every model gets those same uint8 frames through its own transform (resize, crop,
normalisation, layout; :class:`tada.video.VideoTransform`).  The SHA-256 of the frames each model's
transform received is recorded per model, so "the same frames" can be checked, not only claimed.

Models whose own test protocol differs from the reference's (another sampling, another frame count)
are still fed the reference's frames, and their row says so.  A model that cannot take that many
frames (ILA: a fixed frame count) is refused with a :class:`CompareError` saying what to change.

The result, :class:`Comparison`, is plain data (like :mod:`visualizations.explanation`);
:mod:`visualizations.figures.compare` draws it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tada.errors import UserError, quote
from tada.video import Clip, VideoLimits, VideoTransform, display_frame, probe, read_frames_with_info, sample_indices
from visualizations.counterfactuals import VARIANTS
from visualizations.explanation import AttributionExplanation, CounterfactualResult, FrameInfo

__all__ = [
    "MAX_MODELS",
    "MIN_MODELS",
    "VARIANT_NAMES",
    "Comparison",
    "CompareError",
    "ModelComparison",
    "SharedFrames",
    "assemble",
    "check_model_count",
    "compare_models",
    "compare_one",
    "decode_frames",
    "frames_sha256",
    "model_view",
    "plan_inputs",
    "protocol_text",
    "short_name",
]

MIN_MODELS = 2
MAX_MODELS = 4
#: How the tables name each temporal edit (see :mod:`visualizations.counterfactuals`).
VARIANT_NAMES = {
    "original": "original",
    "reverse": "reversed",
    "shuffle": "shuffled",
    "freeze": "frozen",
    "drop_alternate": "half rate",
}

Progress = Callable[[float, str], Any]
#: ``explain_fn(model, view, method, target, progress, **opts)``: :func:`visualizations.explain` or the
#: app's accelerator wrapper around it.
ExplainFn = Callable[..., Any]


class CompareError(UserError, ValueError):
    """A comparison that cannot be made as asked (model count, frame counts); the message says why."""


# --- the one frame set --------------------------------------------------------------------------------


def frames_sha256(frames: np.ndarray | torch.Tensor) -> str:
    """SHA-256 of an array's shape, dtype and bytes (equal hashes = identical frames)."""
    a = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.shape}|{a.dtype}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def protocol_text(cfg: Any, num_frames: int | None = None) -> str:
    """``"8 frames, segment sampling"`` / ``"16 frames, interval sampling (stride 5 at 30 fps)"``."""
    n = int(num_frames if num_frames is not None else cfg.num_frames)
    text = f"{n} frames, {cfg.sampling} sampling"
    if cfg.sampling == "interval" and cfg.sampling_rate:
        text += f" (stride {cfg.sampling_rate} at {float(cfg.target_fps or 30):g} fps)"
    return text


def short_name(name: str) -> str:
    """A column title: the architecture of ``architecture.tag`` without the bundled models' ``_motion``
    (``tadaconvnextv2_motion.tiny_8f`` -> ``tadaconvnextv2``)."""
    arch, _, tag = name.partition(".")
    if arch.endswith("_motion"):
        return arch[: -len("_motion")]
    return f"{arch}.{tag}" if tag else arch


@dataclass
class SharedFrames:
    """The frames every model of a comparison gets, decoded once.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB, upright, as decoded (before any model's transform).
        indices: source frame index of each frame; timestamps: its time in seconds.
        display_frames: the frames scaled for display (short side at most 256 px).
        reference: the model whose sampling protocol chose the frames; protocol: that protocol in words.
        info: the source video; warnings: what the decoder had to repair.
    """

    frames: np.ndarray
    indices: list[int]
    timestamps: list[float]
    display_frames: list[np.ndarray]
    reference: str = ""
    protocol: str = ""
    info: Any = None
    warnings: tuple[str, ...] = ()

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def sha256(self) -> str:
        return frames_sha256(self.frames)


def decode_frames(
    path: str | os.PathLike,
    cfg: Any,
    limits: VideoLimits | None = None,
    *,
    reference: str = "",
    display_size: int = 256,
) -> SharedFrames:
    """Probe ``path``, sample one clip with ``cfg``'s protocol (single view) and decode only those frames.

    Raises :class:`tada.video.VideoError` for a file that cannot be used.
    """
    limits = limits or VideoLimits()
    info = probe(path, limits)
    indices = sample_indices(info.num_frames, info.fps, cfg)
    unique, inverse = np.unique(indices, return_inverse=True)
    result = read_frames_with_info(path, unique, limits)
    frames = np.ascontiguousarray(result.frames[inverse])
    small = [display_frame(f, display_size) for f in result.frames]
    return SharedFrames(
        frames=frames,
        indices=[int(i) for i in indices],
        timestamps=[float(t) for t in result.timestamps[inverse]],
        display_frames=[small[i] for i in inverse],
        reference=reference or str(getattr(cfg, "name", "")),
        protocol=protocol_text(cfg),
        info=result.info,
        warnings=tuple(result.warnings),
    )


def model_view(shared: SharedFrames, cfg: Any) -> tuple[Clip, str]:
    """One model's input from the shared frames through its own transform (single view, centre crop),
    and the SHA-256 of the uint8 frames that transform received."""
    frames = shared.frames
    digest = frames_sha256(frames)  # of the very array transformed below
    transform = VideoTransform(cfg, "single")
    tensor = transform.crops(frames)[0].unsqueeze(0)
    clip = Clip(
        tensor=tensor,
        views=[(0, "centre")],
        indices=np.asarray([shared.indices]),
        timestamps=np.asarray([shared.timestamps]),
        display_frames=list(shared.display_frames),
        info=shared.info,
        input_layout=transform.input_layout,
        warnings=shared.warnings,
    )
    return clip, digest


def check_model_count(names: Sequence[str]) -> list[str]:
    """The names, checked: 2-4 of them, each once."""
    names = [str(n).strip() for n in names if str(n).strip()]
    if len(names) < MIN_MODELS:
        raise CompareError(
            f"Choose at least {MIN_MODELS} models to compare (you chose {len(names)})."
            if names
            else f"Choose {MIN_MODELS} to {MAX_MODELS} models to compare."
        )
    if len(names) > MAX_MODELS:
        raise CompareError(f"Compare at most {MAX_MODELS} models at a time (you chose {len(names)}).")
    seen: set[str] = set()
    twice = [n for n in names if n in seen or seen.add(n)]
    if twice:
        named = ", ".join(quote(n) for n in dict.fromkeys(twice))
        raise CompareError(f"Each model can be compared once; {named} is named twice.")
    return names


def plan_inputs(cfgs: Sequence[Any], names: Sequence[str] | None = None) -> tuple[list[Any], list[list[str]]]:
    """The config each model's transform uses and notes on it, given the models' own configs (the first
    is the reference, whose protocol samples the frames; ``names`` default to the configs' names).

    Every model takes the reference's frame count; one whose own count differs is noted, and a model
    that cannot take another count (ILA) raises :class:`CompareError`.
    """
    names = check_model_count(list(names) if names is not None else [c.name for c in cfgs])
    ref = cfgs[0]
    t = int(ref.num_frames)
    used, notes = [], []
    for i, cfg in enumerate(cfgs):
        note: list[str] = []
        if i == 0:
            note.append(f"reference: its protocol ({protocol_text(cfg)}) chose the frames")
        else:
            own = protocol_text(cfg)
            if own != protocol_text(ref):
                note.append(f"own test protocol {own}; given the reference's frames")
        if int(cfg.num_frames) != t:
            if (cfg.family or ("ila" if cfg.time_first else "tadaconv")) == "ila":
                raise CompareError(
                    f"{names[i]} takes exactly {cfg.num_frames} frames, but the comparison feeds every model "
                    f"the same {t} frames, sampled for {names[0]} (the first model). Put {names[i]} first, "
                    f"or compare models that take {t} frames."
                )
            note.append(f"fed {t} frames (tested with {cfg.num_frames})")
            cfg = cfg.replace(num_frames=t)
        used.append(cfg)
        notes.append(note)
    return used, notes


# --- results ------------------------------------------------------------------------------------------


@dataclass
class ModelComparison:
    """One model's part of a comparison.

    Attributes:
        name: variant name; short: column title; family: ``tadaconv`` / ``ila`` / ``frame2d``.
        transform: the transform that made its input (resize, crop, layout); input_shape: that input.
        frames_sha256: SHA-256 of the uint8 frames its transform received (equal for every model).
        input_sha256: SHA-256 of the float input it was given (differs between transforms).
        counterfactuals: predictions on the clip and its temporal edits; ``original.top_k`` is its top-k.
        attribution: the attribution of its own top class, or None (then ``attribution_error`` says why).
        notes: how its input differs from its own test protocol, if it does.
    """

    name: str
    short: str
    family: str
    transform: str
    input_shape: tuple[int, ...]
    frames_sha256: str
    input_sha256: str
    counterfactuals: CounterfactualResult
    attribution: AttributionExplanation | None = None
    attribution_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def top_k(self) -> list[tuple[int, str, float]]:
        return list(self.counterfactuals.original.top_k) if self.counterfactuals.original else []

    @property
    def predicted_label(self) -> str:
        return self.counterfactuals.original.predicted_label if self.counterfactuals.original else ""

    def changed(self, variant: str) -> bool:
        """Whether the temporal edit ``variant`` changes this model's prediction."""
        return bool(self.counterfactuals.variant(variant).changed)

    def to_dict(self, maps: bool = False) -> dict[str, Any]:
        """JSON-ready (with ``maps`` the attribution heatmaps too, as nested lists)."""
        out: dict[str, Any] = {
            "model": self.name,
            "family": self.family,
            "transform": self.transform,
            "input_shape": list(self.input_shape),
            "frames_sha256": self.frames_sha256,
            "input_sha256": self.input_sha256,
            "notes": list(self.notes),
            "top_k": [{"class": c, "label": lab, "prob": round(p, 6)} for c, lab, p in self.top_k],
            "counterfactuals": [
                {**r, "target_prob": round(r["target_prob"], 6)} for r in self.counterfactuals.to_records()
            ],
        }
        a = self.attribution
        if a is not None:
            out["attribution"] = {
                "method": a.method,
                "target": a.target,
                "target_label": a.target_label,
                "score": round(a.score, 6),
                "signed": a.signed,
                "frame_importance": [float(x) for x in a.frame_importance],
                "map_shape": list(a.heatmaps.shape),
            }
            if maps:
                out["attribution"]["heatmaps"] = a.heatmaps.tolist()
        elif self.attribution_error:
            out["attribution_error"] = self.attribution_error
        return out


@dataclass
class Comparison(FrameInfo):
    """Several models on one frame set (see the module docstring).

    Attributes:
        models: one :class:`ModelComparison` per model, in the order asked (the first is the reference).
        frames_sha256: SHA-256 of the shared uint8 frames.
        reference, protocol: the model whose protocol sampled the frames, and that protocol in words.
        method: the attribution method (None: none asked).
        display_frames: the shared frames for display (one per input frame).
        variants: the temporal edits run; k: top-k size.
    """

    models: list[ModelComparison] = field(default_factory=list)
    frames_sha256: str = ""
    reference: str = ""
    protocol: str = ""
    method: str | None = None
    display_frames: list[np.ndarray] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    k: int = 5
    warnings: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def same_frames(self) -> bool:
        """Every model's transform received the identical frames (equal hashes)."""
        return all(m.frames_sha256 == self.frames_sha256 for m in self.models)

    def model(self, name: str) -> ModelComparison:
        for m in self.models:
            if m.name == name or m.short == name:
                return m
        raise KeyError(name)

    def frames_note(self) -> str:
        """One sentence: which frames, chosen how, fed how."""
        return (
            f"{len(self.frame_indices or [])} frames, decoded once, sampled with the protocol of "
            f"{self.reference} (the first model: {self.protocol}); every model gets these same frames "
            "through its own transform (resize, centre crop, normalisation, layout), one view."
        )

    def topk_table(self) -> tuple[list[str], list[list[str]]]:
        """``(headers, rows)``: rank, then one column per model, cells ``"label · 0.91"``."""
        headers = ["rank"] + [m.short for m in self.models]
        rows = []
        for r in range(self.k):
            row = [str(r + 1)]
            for m in self.models:
                top = m.top_k
                row.append(f"{top[r][1]} · {top[r][2]:.2f}" if r < len(top) else "")
            rows.append(row)
        return headers, rows

    def counterfactual_table(self) -> tuple[list[str], list[list[str]]]:
        """``(headers, rows)``: one row per edit (original first), one column per model; a cell says whether
        the edit changed the model's prediction, the prediction on the edited clip, and the probability
        left to the model's original prediction (``"changed: moving left · 0.01"``); the last row counts
        the edits that change each model's prediction."""
        headers = ["edit"] + [m.short for m in self.models]
        rows = []
        for name in ["original", *self.variants]:
            row = [VARIANT_NAMES.get(name, name)]
            for m in self.models:
                v = m.counterfactuals.variant(name)
                if name == "original":
                    row.append(f"{v.predicted_label} · {v.target_prob:.2f}")
                else:
                    mark = "changed" if v.changed else "same"
                    row.append(f"{mark}: {v.predicted_label} · {v.target_prob:.2f}")
            rows.append(row)
        counts = ["edits that change it"]
        for m in self.models:
            n = sum(v.changed for v in m.counterfactuals.variants)
            counts.append(f"{n} of {len(m.counterfactuals.variants)}")
        rows.append(counts)
        return headers, rows

    def to_dict(self, maps: bool = False) -> dict[str, Any]:
        """JSON-ready: the frames (indices, times, hash, how chosen) and every model's part."""
        return {
            "frames": {
                "indices": list(self.frame_indices or []),
                "timestamps": [round(t, 4) for t in self.timestamps or []],
                "sha256": self.frames_sha256,
                "identical_for_every_model": self.same_frames,
                "reference": self.reference,
                "protocol": self.protocol,
                "note": self.frames_note(),
            },
            "method": self.method,
            "variants": list(self.variants),
            "models": [m.to_dict(maps) for m in self.models],
            "warnings": list(self.warnings),
        }


# --- computing ----------------------------------------------------------------------------------------


def _default_explain(model: nn.Module, view: Clip, method: str, target: Any, progress: Any, **opts: Any) -> Any:
    from visualizations.explain import explain

    return explain(model, view, method, target=target, progress=progress, **opts)


def compare_one(
    name: str,
    model: nn.Module,
    shared: SharedFrames,
    cfg: Any | None = None,
    method: str | None = None,
    k: int = 5,
    variants: Sequence[str] = VARIANTS,
    progress: Progress | None = None,
    explain_fn: ExplainFn | None = None,
    notes: Sequence[str] = (),
    **opts: Any,
) -> ModelComparison:
    """One model on the shared frames: its input (own transform of ``cfg``, default the model's config),
    top-k and counterfactuals (one batched pass), and ``method``'s attribution of its top class.

    A method that does not apply to the model (e.g. attention rollout on a convnet) leaves
    ``attribution`` None and says why in ``attribution_error``; other errors propagate.
    """
    explain_fn = explain_fn or _default_explain
    cfg = cfg if cfg is not None else model.pretrained_cfg
    view, digest = model_view(shared, cfg)
    if progress is not None:
        progress(0.0, f"{name}: counterfactuals")
    cf = explain_fn(model, view, "counterfactuals", None, None, k=k, variants=list(variants))
    attribution, error = None, None
    if method:
        if progress is not None:
            progress(0.2, f"{name}: {method}")
        try:
            attribution = explain_fn(model, view, method, None, progress, **opts)
        except ValueError as exc:  # the method does not apply to this model
            error = str(exc)
    fam = getattr(cfg, "family", None) or ("ila" if getattr(cfg, "time_first", False) else "tadaconv")
    return ModelComparison(
        name=name,
        short=short_name(name),
        family=fam,
        transform=repr(VideoTransform(cfg, "single")),
        input_shape=tuple(int(s) for s in view.tensor.shape),
        frames_sha256=digest,
        input_sha256=frames_sha256(view.tensor),
        counterfactuals=cf,
        attribution=attribution,
        attribution_error=error,
        notes=list(notes),
    )


def assemble(
    shared: SharedFrames, parts: Sequence[ModelComparison], method: str | None, k: int, variants: Sequence[str]
) -> Comparison:
    """The :class:`Comparison` of the per-model parts."""
    return Comparison(
        models=list(parts),
        frames_sha256=shared.sha256,
        reference=shared.reference,
        protocol=shared.protocol,
        method=method,
        display_frames=list(shared.display_frames),
        variants=list(variants),
        k=k,
        warnings=shared.warnings,
        frame_indices=list(shared.indices),
        timestamps=list(shared.timestamps),
    )


def compare_models(
    models: Sequence[tuple[str, nn.Module]],
    clip: str | os.PathLike | SharedFrames,
    method: str | None = None,
    k: int = 5,
    variants: Sequence[str] = VARIANTS,
    progress: Progress | None = None,
    limits: VideoLimits | None = None,
    **opts: Any,
) -> Comparison:
    """Compare ``(name, model)`` pairs (2-4, eval mode) on one clip: a video file (decoded once with the
    first model's protocol) or frames already decoded.

    Example::

        a = tada.create_model("tadaconvnextv2_motion.tiny_8f", pretrained=True).eval()
        b = tada.create_model("frame2d_motion.tiny_8f", pretrained=True).eval()
        c = compare_models([("tada", a), ("2d", b)], "app/examples/motion_moving_right.mp4")
        c.model("tada").changed("reverse"), c.model("2d").changed("reverse")   # True, False
    """
    names = check_model_count([n for n, _ in models])
    used, notes = plan_inputs([m.pretrained_cfg for _, m in models], names)
    shared = clip if isinstance(clip, SharedFrames) else decode_frames(clip, used[0], limits, reference=names[0])
    parts = []
    n = len(models)
    for i, ((name, model), cfg) in enumerate(zip(models, used, strict=True)):
        sub = None if progress is None else (lambda f, m, i=i: progress((i + f) / n, m))
        parts.append(compare_one(name, model, shared, cfg, method, k, variants, sub, notes=notes[i], **opts))
    if progress is not None:
        progress(1.0, "comparison done")
    return assemble(shared, parts, method, k, variants)
