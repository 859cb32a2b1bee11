"""Bounds on what one request may ask for, checked before anything is allocated.

A model folder's ``config.json``, an ``--override`` or a crafted checkpoint decides how large a model
gets built; a pasted list decides how many texts ILA encodes.  Without bounds one request could ask
for a 10^6-block network or a 10^7-class head and take the machine's memory for minutes.  So:

* :func:`check_model_args`: every construction argument against a bound chosen by its name (layer
  counts, widths, heads, classes, frames, sizes; anything else gets a generic bound), before any
  module exists;
* :func:`check_model_bytes`: the parameters and buffers of the model built on the ``meta`` device
  (no memory) against :data:`MAX_MODEL_BYTES`, before the real build (:mod:`tada._builder`);
* :func:`check_tensor_shapes`: a checkpoint's tensor shapes (read from the file's header or an mmap,
  not the data) against the same byte cap and :data:`MAX_TENSOR_DIM`;
* :func:`check_class_phrases`: the count and length of ILA class phrases.

Every released variant lies well inside these bounds (a test builds each one's config through them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import nn

from tada.errors import CheckpointTooLargeError, ModelConfigError, TextTooLongError, TooManyPhrasesError, quote

__all__ = [
    "MAX_MODEL_BYTES",
    "MAX_TENSOR_DIM",
    "MAX_CLASS_PHRASES",
    "MAX_PHRASE_CHARS",
    "ARG_BOUNDS",
    "check_model_args",
    "model_bytes",
    "check_model_bytes",
    "check_tensor_shapes",
    "check_class_phrases",
]

#: Largest model (parameters + buffers) built or loaded, in bytes; ``$TADA_MAX_MODEL_BYTES`` changes it.
#: The largest released model (ILA L/14@336, 16 frames) is 2.1 GiB in fp32.
MAX_MODEL_BYTES: int = int(os.environ.get("TADA_MAX_MODEL_BYTES") or 4 * 2**30)
#: Largest single dimension of a checkpoint tensor (the CLIP token table has 49,408 rows).
MAX_TENSOR_DIM: int = 2**20
#: Most class phrases scored at once (Kinetics-400's 400 names fit).
MAX_CLASS_PHRASES: int = 500
#: Longest class phrase in characters (CLIP reads at most 77 tokens; the token count is checked too).
MAX_PHRASE_CHARS: int = 300

# (low, high, what it is) per argument name; a list value is checked element by element.
_LAYERS = (0, 128, "a layer count")
_WIDTH = (1, 16384, "a channel width")
_SMALL = (1, 64, "a kernel size, stride or ratio")
ARG_BOUNDS: dict[str, tuple[int, int, str]] = {
    "num_classes": (1, 100_000, "the number of classes"),
    "num_frames": (1, 1024, "the number of frames"),
    **dict.fromkeys(
        ("depths", "layers", "vision_layers", "transformer_layers", "mit_layers", "prompts_layers"), _LAYERS
    ),
    **dict.fromkeys(
        ("dims", "num_filters", "width", "embed_dim", "vision_width", "transformer_width", "align_hidden"), _WIDTH
    ),
    "route_head_dim": _WIDTH,
    "heads": (1, 1024, "a number of attention heads"),
    "transformer_heads": (1, 1024, "a number of attention heads"),
    "input_res": (1, 4096, "an input size in pixels"),
    "image_resolution": (1, 4096, "an input size in pixels"),
    "patch_size": (1, 1024, "a patch size in pixels"),
    "vision_patch_size": (1, 1024, "a patch size in pixels"),
    "context_length": (1, 1024, "a text length in tokens"),
    "vocab_size": (1, 1_000_000, "a vocabulary size"),
    **dict.fromkeys(
        (
            "route_kernels",
            "pool_k",
            "tubelet_size",
            "tubelet_stride",
            "stem_t_kernel",
            "stem_t_stride",
            "reduction",
            "route_ratio",
            "expansion",
            "in_channels",
        ),
        _SMALL,
    ),
}
#: Bound on an integer argument not named in :data:`ARG_BOUNDS`.
_GENERIC = (-1_000_000, 1_000_000, "a whole-number setting")
#: All layer-count arguments together (the deepest released model has 36 blocks).
MAX_TOTAL_LAYERS = 256
_MAX_LIST = 64
_MAX_TEXT = 200


def _fmt(n: float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:g}"


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_model_args(architecture: str, args: Mapping[str, Any]) -> None:
    """Refuse construction arguments out of bounds or of the wrong type, before anything is built.

    Raises:
        ModelConfigError: names the argument, its value, the bound and what to change.
    """
    where = f"arguments of {architecture}"
    layers = 0
    for key, value in args.items():
        low, high, what = ARG_BOUNDS.get(key, _GENERIC)
        values = value if isinstance(value, (list, tuple)) else [value]
        if len(values) > _MAX_LIST:
            raise ModelConfigError(f"{key} has {len(values)} entries in the {where}; at most {_MAX_LIST} are accepted.")
        for v in values:
            if v is None or isinstance(v, bool):
                continue
            if isinstance(v, float):
                if not math.isfinite(v) or (key in ARG_BOUNDS and not v.is_integer()):
                    raise ModelConfigError(f"{key}={quote(value)} in the {where} is not a usable number.")
                continue
            if isinstance(v, str):
                if len(v) > _MAX_TEXT:
                    raise ModelConfigError(f"{key}={quote(v)} in the {where} is too long (at most {_MAX_TEXT} chars).")
                if key in ARG_BOUNDS:
                    raise ModelConfigError(
                        f"{key} must be a whole number ({what}), not the text {quote(v)}; fix the {where}."
                    )
                continue
            if not isinstance(v, int):
                if key in ARG_BOUNDS:
                    raise ModelConfigError(f"{key} must be a whole number ({what}), got {quote(value)}.")
                continue
            if not low <= v <= high:
                raise ModelConfigError(
                    f"{key}={quote(value)} is out of bounds for {architecture}: {what} must be between "
                    f"{_fmt(low)} and {_fmt(high)}. Change it where it was set (config.json, --override or "
                    "the builder call)."
                )
            if ARG_BOUNDS.get(key) is _LAYERS:
                layers += v
    if layers > MAX_TOTAL_LAYERS:
        raise ModelConfigError(
            f"the {where} ask for {layers:,} layers in all; at most {MAX_TOTAL_LAYERS} are accepted "
            "(the released models have up to 36). Check depths / layers."
        )


def model_bytes(model: nn.Module) -> int:
    """Bytes of a model's parameters and buffers (shared tensors counted once); works on ``meta``."""
    seen: set[int] = set()
    total = 0
    for t in (*model.parameters(), *model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def check_model_bytes(architecture: str, size: int, limit: int | None = None) -> None:
    """Refuse a model of ``size`` bytes above ``limit`` (default :data:`MAX_MODEL_BYTES`)."""
    limit = MAX_MODEL_BYTES if limit is None else limit
    if size > limit:
        raise ModelConfigError(
            f"this {architecture} configuration would need {_gib(size)} for its weights alone, above the "
            f"{_gib(limit)} TAda Lab builds (the largest released model needs 2.1 GiB). Check its num_classes "
            "and model_kwargs (config.json or --override); raise TADA_MAX_MODEL_BYTES only for a model "
            "you know is that large."
        )


def check_tensor_shapes(shapes: Iterable[tuple[str, Sequence[int], int]], source: str) -> None:
    """Refuse a checkpoint whose tensors ``(name, shape, bytes per element)`` are absurd or too large,
    before their data is read.

    Raises:
        CheckpointTooLargeError: a dimension above :data:`MAX_TENSOR_DIM`, or more than
            :data:`MAX_MODEL_BYTES` in all.
    """
    total = 0
    for name, shape, itemsize in shapes:
        big = max(shape, default=0)
        if big > MAX_TENSOR_DIM or min(shape, default=0) < 0:
            raise CheckpointTooLargeError(
                f"{source}: tensor {quote(name)} has shape {quote(list(shape))}, with a dimension above the "
                f"{MAX_TENSOR_DIM:,} TAda Lab accepts; this is not a TAdaConv/ILA checkpoint (or it is damaged)."
            )
        total += math.prod(shape) * itemsize
    if total > MAX_MODEL_BYTES:
        raise CheckpointTooLargeError(
            f"{source} holds {_gib(total)} of weights, above the {_gib(MAX_MODEL_BYTES)} TAda Lab loads "
            "(set TADA_MAX_MODEL_BYTES for a model you know is that large)."
        )


def check_class_phrases(texts: Sequence[str]) -> None:
    """Refuse more than :data:`MAX_CLASS_PHRASES` phrases or one longer than :data:`MAX_PHRASE_CHARS`
    characters (before any tokenisation: BPE of a megabyte of text alone takes seconds)."""
    if len(texts) > MAX_CLASS_PHRASES:
        raise TooManyPhrasesError(
            f"{len(texts):,} class phrases were given; at most {MAX_CLASS_PHRASES} can be scored at once. "
            "Keep the phrases you want to compare."
        )
    for text in texts:
        if len(text) > MAX_PHRASE_CHARS:
            raise TextTooLongError(
                f"The class phrase {quote(text, 60)} is longer than {MAX_PHRASE_CHARS} characters; "
                "use a short phrase (a few words, as the text encoder reads at most 77 tokens)."
            )
