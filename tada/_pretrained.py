"""The pretrained config: everything that travels with one checkpoint (timm's ``_pretrained``).

A leaf: it imports nothing of the models.  The family and the input layout are said here once;
callers ask the config (``cfg.time_first``, ``cfg.to_model_layout(x)``) instead of comparing
``input_layout`` strings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import torch

from tada.constants import KINETICS_MEAN, KINETICS_STD

__all__ = ["FAMILIES", "LAYOUTS", "PretrainedCfg", "generate_default_cfgs", "layout_time_dim"]

#: Model families: the TAdaConv family (TAda2D, TAdaConvNeXtV2, TAdaFormer), ILA, and the per-frame
#: 2-D baseline (no temporal modelling at all).
FAMILIES = ("tadaconv", "ila", "frame2d")
#: Input layouts of a batch: channels before time (TAdaConv family, bundled models) or time first (ILA).
LAYOUTS = ("BCTHW", "BTCHW")


def layout_time_dim(layout: str) -> int:
    """Index of the time axis in a batch of the given layout (1 for ``"BTCHW"``, 2 for ``"BCTHW"``)."""
    layout = layout.upper()
    if layout not in LAYOUTS:
        raise ValueError(f"input_layout must be one of {LAYOUTS}, got {layout!r}")
    return layout.index("T")


@dataclass
class PretrainedCfg:
    """Everything that travels with one checkpoint: how to build it, feed it and credit it.

    Attributes:
        architecture: registered builder name, e.g. ``"tadaconvnextv2_tiny"``.
        tag: checkpoint tag, e.g. ``"k400_16f_in1k"``; the variant name is ``architecture.tag``.
        num_classes: width of the classifier (or number of class texts for ILA).
        label_set: name of the label list in :mod:`tada.labels` (``kinetics400``, ``ssv2``, ``motion`` ...).
        num_frames: frames the model takes per clip.
        sampling: test-time frame sampling protocol: ``"interval"`` (rate at a target fps),
            ``"segment"`` (TSN-style segment centres) or ``"uniform"`` (ILA's deterministic single view).
        sampling_rate: frame interval for ``"interval"`` sampling, at ``target_fps``.
        target_fps: fps the sampling rate refers to (30 in the official TAdaConv loaders).
        test_scale: short side after resizing, in pixels.
        crop_size: side of the square crop fed to the model.
        mean, std: per-channel normalisation, applied on values in ``[0, pixel_range]``.
        pixel_range: 1.0 when mean/std refer to [0, 1] pixels, 255.0 when they refer to 0..255 (ILA).
        family: ``"tadaconv"``, ``"ila"`` or ``"frame2d"`` (:data:`FAMILIES`); ``None`` until a builder
            attaches the config (it then takes the model's own).
        input_layout: ``"BCTHW"`` (TAdaConv family, bundled models) or ``"BTCHW"`` (ILA); read it through
            :attr:`time_first`, :attr:`time_dim` and :meth:`to_model_layout`.
        num_clips, num_crops: the official multi-view test protocol (clips x crops).
        model_kwargs: construction arguments for the builder (e.g. ``num_frames``, ``temp_enhance``).
        gdrive_id: Google Drive file id of the official checkpoint.
        hf_hub_id: optional Hugging Face Hub repo holding converted weights.
        local_dir: optional directory (``config.json`` + ``model.safetensors``) holding the weights,
            relative paths are relative to the repository root (used by the bundled models).
        reported_top1: top-1 accuracy reported by the authors (with ``reported_views``).
        reported_views: the views behind ``reported_top1``, e.g. ``"4x3"``.
        source: where the checkpoint comes from (paper / repository / training command).
        license: licence of the weights, when known.
        notes: free text shown to users (quirks, provenance).
    """

    architecture: str
    tag: str = ""
    num_classes: int = 400
    label_set: str = "kinetics400"
    num_frames: int = 16
    sampling: str = "segment"
    sampling_rate: int | None = None
    target_fps: float | None = None
    test_scale: int = 224
    crop_size: int = 224
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    pixel_range: float = 1.0
    input_layout: str = "BCTHW"
    family: str | None = None
    num_clips: int = 1
    num_crops: int = 1
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    gdrive_id: str | None = None
    hf_hub_id: str | None = None
    local_dir: str | None = None
    reported_top1: float | None = None
    reported_views: str | None = None
    source: str = ""
    license: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        self.input_layout = self.input_layout.upper()
        if self.input_layout not in LAYOUTS:
            raise ValueError(f"input_layout must be one of {LAYOUTS}, got {self.input_layout!r}")
        if self.family is not None and self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")

    # --- the input layout, said once ---------------------------------------------------------------

    @property
    def time_first(self) -> bool:
        """True when the model takes ``(B, T, C, H, W)`` (ILA), False for ``(B, C, T, H, W)``."""
        return layout_time_dim(self.input_layout) == 1

    @property
    def time_dim(self) -> int:
        """Index of the time axis in a batch of model input."""
        return layout_time_dim(self.input_layout)

    @property
    def channel_dim(self) -> int:
        """Index of the colour-channel axis in a batch of model input."""
        return 2 if self.time_first else 1

    def input_shape(self, batch: int = 1, frames: int | None = None, size: int | None = None) -> tuple[int, ...]:
        """Shape of a model input batch (default: the config's own frames and crop)."""
        t, s = frames or self.num_frames, size or self.crop_size
        return (batch, t, 3, s, s) if self.time_first else (batch, 3, t, s, s)

    def to_model_layout(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` (or an unbatched ``(C, T, H, W)``) to the model's layout."""
        return x.transpose(-4, -3) if self.time_first else x

    def from_model_layout(self, x: torch.Tensor) -> torch.Tensor:
        """Model input (batched or not) back to channels-before-time, ``(B, C, T, H, W)``."""
        return x.transpose(-4, -3) if self.time_first else x

    @property
    def name(self) -> str:
        """The variant name, ``architecture.tag`` (just the architecture for an untagged config)."""
        return f"{self.architecture}.{self.tag}" if self.tag else self.architecture

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainedCfg:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so older/newer files still load."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for key in ("mean", "std"):
            if key in kwargs and kwargs[key] is not None:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> PretrainedCfg:
        """A copy with some fields changed (``model_kwargs`` is copied too, never shared)."""
        changes.setdefault("model_kwargs", dict(self.model_kwargs))
        return dataclasses.replace(self, **changes)

    def copy(self) -> PretrainedCfg:
        """An independent copy (registered configs are never handed out to be mutated)."""
        return self.replace()


def generate_default_cfgs(cfgs: dict[str, dict[str, Any]]) -> dict[str, PretrainedCfg]:
    """``{"architecture.tag": {field: value}}`` -> ``{"architecture.tag": PretrainedCfg}`` (timm style).

    Each model file declares its variants in one dict like this, beside its builders; an entry
    without a tag (``"architecture"``) describes the architecture itself.
    """
    out: dict[str, PretrainedCfg] = {}
    for name, fields in cfgs.items():
        architecture, _, tag = name.partition(".")
        out[name] = PretrainedCfg(architecture=architecture, tag=tag, **fields)
    return out
