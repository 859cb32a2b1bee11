"""The bundled offline models: tiny TAdaConvNeXtV2, TAdaFormer, ILA and a per-frame 2-D baseline
trained on the procedural motion task (:mod:`tada.motion`), shipped in ``assets/models/<name>/``.

Each is a thin registered architecture (the real model class with reduced widths/depths as defaults)
plus one variant with tag ``tiny_8f`` whose weights are bundled, so that, with no network::

    model = tada.create_model(DEFAULT_MODEL, pretrained=True)

Training: ``python -m tada train`` (:mod:`tada.motion.train`); evaluation: ``python -m tada evaluate``.

The tiny ILA keeps the CLIP text side (its scores are cosine similarities with the class texts), but
its token embedding covers only the CLIP BPE ids that occur in the 11 motion class names (a
*vocabulary remap*: id -> rank among those sorted ids, so padding stays 0 and end-of-text stays the
largest id).  A phrase with any other word raises :class:`OutOfVocabularyError` instead of returning
scores for untrained embeddings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch

from tada._pretrained import generate_default_cfgs
from tada._registry import register_model
from tada.constants import DEFAULT_MODEL, MOTION_MEAN, MOTION_STD
from tada.errors import OutOfVocabularyError, quote
from tada.models.frame2d import Frame2D
from tada.models.ila import ILA
from tada.models.tadaconvnextv2 import TAdaConvNeXtV2
from tada.models.tadaformer import TAdaFormer
from tada.motion.generator import CLASSES, NUM_CLASSES
from tada.text import class_texts, encode_in_chunks, tokenize
from tada.trace import untraced

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "MODEL_KWARGS",
    "MotionILA",
    "OutOfVocabularyError",
    "motion_vocabulary",
]

TAG = "tiny_8f"
NUM_FRAMES = 8
SIZE = 32
#: Input side per architecture (default :data:`SIZE`); the ConvNeXt sees 64 px.  The reasons behind
#: these values, with the runs that measured them, are the *Lab notes* of each model card
#: (``assets/models/<architecture>/README.md``).
INPUT_SIZE: dict[str, int] = {"tadaconvnextv2_motion": 64}

#: Construction arguments of the bundled models (also the builders' defaults).
MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "tadaconvnextv2_motion": {
        "num_frames": NUM_FRAMES,
        "dims": (24, 48, 96, 192),
        "depths": (1, 1, 2, 1),
        "route_head_dim": 12,
        "layer_scale_init": 0.1,  # not the ImageNet 1e-6
        "head_dropout": 0.0,
    },
    "tadaformer_motion": {
        "num_frames": NUM_FRAMES,
        "width": 64,
        "layers": 3,
        "heads": 2,
        "patch_size": 4,  # 8 x 8 tokens per frame
        "input_res": SIZE,
        "route_head_dim": 8,
        "head_dropout": 0.0,
    },
    "ila_motion": {
        "num_frames": NUM_FRAMES,
        "image_resolution": SIZE,
        "vision_patch_size": 4,  # 8 x 8 tokens per frame
        "align_hidden": 64,  # ILA modules' interactive block (released models: 256)
        "vision_width": 64,
        "vision_layers": 2,
        "embed_dim": 64,
        "transformer_width": 64,
        "transformer_layers": 1,
        "mit_layers": 1,
        "prompts_layers": 1,
    },
    "frame2d_motion": {
        "num_frames": NUM_FRAMES,
        "dims": (24, 48, 96, 192),
        "depths": (1, 1, 2, 1),
        "layer_scale_init": 0.1,
    },
}

#: Family of each bundled architecture (the 2-D baseline has no temporal modelling at all).
FAMILY: dict[str, str] = {
    "tadaconvnextv2_motion": "tadaconv",
    "tadaformer_motion": "tadaconv",
    "ila_motion": "ila",
    "frame2d_motion": "frame2d",
}
#: Bundled variants, temporal models first; the first one is the app's offline default.
BUNDLED_MODELS: tuple[str, ...] = tuple(f"{arch}.{TAG}" for arch in MODEL_KWARGS)
assert DEFAULT_MODEL in BUNDLED_MODELS, "tada.constants.DEFAULT_MODEL names a bundled model"
#: Whether each bundled architecture models time (the 2-D baseline does not).
TEMPORAL: dict[str, bool] = {arch: family != "frame2d" for arch, family in FAMILY.items()}


def _kwargs(arch: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"num_classes": NUM_CLASSES, **MODEL_KWARGS[arch], **kwargs}


# --- the ILA text side over a remapped vocabulary ---------------------------------------------------------


@cache
def motion_vocabulary() -> tuple[int, ...]:
    """Sorted CLIP BPE ids occurring in the motion class names (index = remapped id; 0 = padding)."""
    ids = torch.unique(tokenize(list(CLASSES)))
    return tuple(int(i) for i in ids)


class MotionILA(ILA):
    """ILA whose text side knows only the motion vocabulary (see the module docstring)."""

    def __init__(self, **kwargs: Any):
        vocab = motion_vocabulary()
        super().__init__(vocab_size=len(vocab), **kwargs)
        with torch.device("cpu"):  # a lookup table for token ids (CPU data), also when built on ``meta``
            self._remap = torch.full((max(vocab) + 1,), -1, dtype=torch.long)
            self._remap[torch.tensor(vocab)] = torch.arange(len(vocab))
        self.set_class_names(None)

    def remap_tokens(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP token ids of ``texts`` in this model's vocabulary; unknown words raise."""
        clip = tokenize(list(texts), self.context_length)
        inside = clip < len(self._remap)
        mapped = torch.where(inside, self._remap[clip.clamp(max=len(self._remap) - 1)], torch.full_like(clip, -1))
        bad = [t for t, row in zip(texts, mapped, strict=True) if bool((row < 0).any())]
        if bad:
            shown = ", ".join(quote(b) for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise OutOfVocabularyError(
                f"this bundled tiny ILA only knows the words of its {len(CLASSES)} motion classes "
                f"({', '.join(CLASSES)}); it cannot score {shown}. "
                "Use a released ILA (e.g. ila_b16.k400_8f) for open-vocabulary phrases."
            )
        return mapped

    def set_class_names(self, names: Sequence[str] | None, template: str = "{}") -> None:
        """Score against these phrases (made of motion-class words); ``None``: the motion classes."""
        texts = list(CLASSES) if names is None else class_texts(names, template)
        self.set_text_tokens(self.remap_tokens(texts), names=texts)

    def text_features(self, class_names: Sequence[str] | None = None) -> torch.Tensor:
        tokens = self._text_tokens if class_names is None else self.remap_tokens(class_texts(class_names))
        weight = self.token_embedding.weight
        if self.training and torch.is_grad_enabled():
            return self.encode_text(tokens.to(weight.device))  # training: no cache, gradients flow
        digest = hashlib.sha1(tokens.numpy().tobytes()).hexdigest()
        key = ("tokens", digest, tuple(tokens.shape), weight.device, weight.dtype, self._weights_version)
        return self.text_cache.get(
            key,
            lambda: encode_in_chunks(lambda t: untraced(lambda: self.encode_text(t)), tokens.to(weight.device)),
        )


# --- bundled variants (registered with their builders below) --------------------------------------------

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _reported_top1(arch: str) -> float | None:
    """Held-out top-1 recorded in the bundled folder's ``config.json`` by ``python -m tada train --eval-clips``."""
    try:
        config = json.loads((_REPO_ROOT / "assets" / "models" / arch / "config.json").read_text(encoding="utf-8"))
        return round(float(config["evaluation"]["top1"]), 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _bundled(arch: str) -> dict[str, Any]:
    ila = FAMILY[arch] == "ila"
    size = INPUT_SIZE.get(arch, SIZE)
    return {
        "family": FAMILY[arch],
        "num_classes": NUM_CLASSES,
        "label_set": "motion",
        "num_frames": NUM_FRAMES,
        "sampling": "segment",
        "test_scale": size,
        "crop_size": size,
        # ILA takes 0..255 pixels like the released ILA models; the same normalisation either way.
        "mean": tuple(255.0 * m for m in MOTION_MEAN) if ila else MOTION_MEAN,
        "std": tuple(255.0 * s for s in MOTION_STD) if ila else MOTION_STD,
        "pixel_range": 255.0 if ila else 1.0,
        "input_layout": "BTCHW" if ila else "BCTHW",
        "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in MODEL_KWARGS[arch].items()},
        "local_dir": f"assets/models/{arch}",
        "reported_top1": _reported_top1(arch),
        "reported_views": "1x1",
        "source": f"trained with: python -m tada train --model {arch} (see assets/models/{arch}/README.md)",
        "license": "CC0-1.0",
        "notes": "Trained from scratch on the procedural motion task (tada.motion); not a video-dataset model.",
    }


default_cfgs = generate_default_cfgs({f"{arch}.{TAG}": _bundled(arch) for arch in MODEL_KWARGS})


# --- architectures -----------------------------------------------------------------------------------------


@register_model
def tadaconvnextv2_motion(**kwargs: Any) -> TAdaConvNeXtV2:
    """Tiny TAdaConvNeXtV2 for 8x64x64 motion clips (dims 24..192, depths 1-1-2-1, routing head dim 12)."""
    return TAdaConvNeXtV2(**_kwargs("tadaconvnextv2_motion", kwargs))


@register_model
def tadaformer_motion(**kwargs: Any) -> TAdaFormer:
    """Tiny TAdaFormer for 8x32x32 motion clips (width 64, 3 layers, 2 heads, patch 4)."""
    return TAdaFormer(**_kwargs("tadaformer_motion", kwargs))


@register_model
def ila_motion(**kwargs: Any) -> MotionILA:
    """Tiny ILA (K400 form, text side on the motion vocabulary), 8x32x32 clips: width 64, 2 layers, patch 4."""
    kwargs = _kwargs("ila_motion", kwargs)
    kwargs.pop("ssv2", None)
    return MotionILA(**kwargs)


@register_model
def frame2d_motion(**kwargs: Any) -> Frame2D:
    """Per-frame 2-D ConvNeXt baseline (dims 24..192, depths 1-1-2-1), mean over time."""
    return Frame2D(**_kwargs("frame2d_motion", kwargs))
