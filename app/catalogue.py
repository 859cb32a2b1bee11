"""The model picker's catalogue: one :class:`ModelInfo` per registered variant, with where its weights
are (no model is built, nothing is downloaded), the default model, and how to get missing weights.

The catalogue row (what ``/models`` returns and the picker shows) is written here once:
:meth:`ModelInfo.row`, :attr:`ModelInfo.choice_label`, :meth:`ModelInfo.summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tada
from tada import PretrainedCfg, hub
from tada.constants import DEFAULT_MODEL

__all__ = [
    "FAMILY_NAMES",
    "ModelInfo",
    "catalogue",
    "default_model_name",
    "family",
    "how_to_get_weights",
    "model_info",
]

#: How the picker names each family.
FAMILY_NAMES = {
    "tadaconv": "TAdaConv family",
    "ila": "ILA",
    "frame2d": "2-D per-frame baseline (no temporal modelling)",
}


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model picker."""

    name: str
    architecture: str
    family: str  # "tadaconv", "ila" or "frame2d" (PretrainedCfg.family)
    label_set: str
    num_classes: int
    num_frames: int
    sampling: str
    sampling_rate: int | None
    weights: str  # hub.weights_status: bundled / cached / hub-cached / hub / gdrive / none
    bundled: bool
    open_vocabulary: bool
    num_views: int
    reported: str

    @property
    def available(self) -> bool:
        """Weights are on this machine: the model runs offline, now."""
        return self.weights in ("bundled", "cached", "hub-cached")

    @property
    def family_name(self) -> str:
        """The family as the page names it."""
        return FAMILY_NAMES.get(self.family, self.family)

    @property
    def choice_label(self) -> str:
        """Text of the dropdown entry."""
        if self.bundled:
            mark = "bundled"
        elif self.available:
            mark = "available"
        else:
            mark = "needs weights"
        return f"{self.name}  ({mark})"

    def summary(self) -> str:
        """One line about the model: family, classes, frames, sampling, reported accuracy."""
        return (
            f"`{self.name}` · {self.family_name} · {self.num_classes} classes "
            f"({self.label_set or 'no label set'}) · "
            f"{self.num_frames} frames, {self.sampling} sampling"
            + (f" · reported {self.reported}" if self.reported else "")
        )

    def row(self) -> dict[str, Any]:
        """The catalogue as JSON (``/models``)."""
        return {
            "name": self.name,
            "family": self.family,
            "available": self.available,
            "weights": self.weights,
            "bundled": self.bundled,
            "frames": self.num_frames,
            "classes": self.num_classes,
            "label_set": self.label_set,
            "open_vocabulary": self.open_vocabulary,
            "reported": self.reported,
            "get_weights": "" if self.available else how_to_get_weights(self.name),
        }


def family(cfg: PretrainedCfg) -> str:
    """``"tadaconv"``, ``"ila"`` or ``"frame2d"`` (the per-frame 2-D baseline, which is no TAdaConv model)."""
    return cfg.family or ("ila" if cfg.time_first else "tadaconv")  # a folder written before configs said it


def model_info(name: str) -> ModelInfo:
    """Catalogue entry of a registered variant (no model is built, nothing is downloaded)."""
    cfg = tada.get_pretrained_cfg(name)
    weights = hub.weights_status(cfg)
    ssv2 = bool(cfg.model_kwargs.get("ssv2"))
    reported = ""
    if cfg.reported_top1 is not None:
        reported = f"{cfg.reported_top1:.1f}% top-1" + (
            f" ({cfg.reported_views} views)" if cfg.reported_views not in (None, "", "1x1") else ""
        )
    return ModelInfo(
        name=cfg.name,
        architecture=cfg.architecture,
        family=family(cfg),
        label_set=cfg.label_set,
        num_classes=cfg.num_classes,
        num_frames=cfg.num_frames,
        sampling=cfg.sampling,
        sampling_rate=cfg.sampling_rate,
        weights=weights,
        bundled=weights == "bundled",
        open_vocabulary=family(cfg) == "ila" and not ssv2,
        num_views=cfg.num_clips * cfg.num_crops,
        reported=reported,
    )


def catalogue() -> list[ModelInfo]:
    """Every registered variant, bundled models first, then available ones, then the rest."""
    infos = [model_info(n) for n in tada.list_models()]
    return sorted(infos, key=lambda i: (not i.bundled, not i.available, i.name))


def how_to_get_weights(name: str, markdown: bool = False) -> str:
    """Plain instructions for a variant whose weights are not on this machine (Markdown list when asked)."""
    return hub.how_to_get_weights(tada.get_pretrained_cfg(name), markdown=markdown)


def default_model_name(names: Sequence[str] | None = None) -> str | None:
    """The bundled model the app opens with (``tada.constants.DEFAULT_MODEL``, else the first bundled one),
    or None when none exists."""
    names = list(names if names is not None else tada.list_models())
    bundled = [n for n in names if hub.weights_status(tada.get_pretrained_cfg(n)) == "bundled"]
    if DEFAULT_MODEL in bundled:
        return DEFAULT_MODEL
    return bundled[0] if bundled else None
