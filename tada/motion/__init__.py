"""The procedural temporal-motion task: clip generator (numpy only), torch dataset, mp4 export.

Training and evaluation of the bundled models live in ``tada.motion.train`` / ``tada.motion.evaluate``.
"""

from __future__ import annotations

from tada.motion.generator import (
    BACKGROUNDS,
    CLASSES,
    DIRECTION_PAIRS,
    NUM_CLASSES,
    PHOTOS,
    REVERSED_LABEL,
    SHAPES,
    MotionBatch,
    MotionClip,
    clip_label,
    clip_seed,
    generate_batch,
    generate_clip,
)

__all__ = [
    "BACKGROUNDS",
    "CLASSES",
    "DIRECTION_PAIRS",
    "NUM_CLASSES",
    "PHOTOS",
    "REVERSED_LABEL",
    "SHAPES",
    "MotionBatch",
    "MotionClip",
    "clip_label",
    "clip_seed",
    "generate_batch",
    "generate_clip",
]
