"""Training batches of the motion task: clips of the seeded stream, focus classes, reverse pairs, curriculum."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tada.motion.dataset import to_tensor
from tada.motion.generator import REVERSED_LABEL, MotionBatch, clip_label, generate_batch, object_flow

__all__ = ["EASY", "focus_labels", "make_batch"]


#: Rendering of the curriculum's easy clips: no distractors, no noise, no photo backgrounds.
EASY = {"distractors": False, "noise": False, "backgrounds": ("flat", "gradient", "blobs")}


def focus_labels(seed: int, start: int, n: int, focus: Sequence[int], fraction: float) -> list[int]:
    """Labels of clips ``start .. start+n-1`` of stream ``seed`` with a ``fraction`` of them, evenly spaced
    along the stream, given to the ``focus`` classes in turn (the rest keep :func:`clip_label`)."""

    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"the focus fraction must lie in [0, 1], got {fraction}")
    labels = []
    for i in range(start, start + n):
        k = math.floor(i * fraction)
        hit = bool(focus) and math.floor((i + 1) * fraction) > k
        labels.append(int(focus[k % len(focus)]) if hit else clip_label(seed, i))
    return labels


def make_batch(
    cfg: Any,
    seed: int,
    start: int,
    n: int,
    easy: bool = False,
    masks: bool = False,
    flow: bool = False,
    labels: Sequence[int] | None = None,
    reverse_pairs: bool = False,
    centers: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Clips ``start .. start+n-1`` of stream ``seed`` as a model input (in ``cfg.input_layout``) and labels.

    ``labels`` overrides the stream's classes (see :func:`focus_labels`): one per stream clip, so ``n/2``
    with reverse pairs.
    ``reverse_pairs=True`` (``n`` even): clips ``start .. start+n/2-1`` and then the same clips played
    backwards, relabelled (:data:`~tada.motion.generator.REVERSED_LABEL`), with their truth reversed too.
    ``easy=True`` renders the same clips without nuisances (:data:`EASY`), for the curriculum.
    ``masks=True`` adds a third tensor: the target object's masks ``(N, T, H, W)`` as float 0/1;
    ``flow=True`` (with ``masks``) a fourth: its motion ``(N, T, H, W, 2)`` in px per frame
    (:func:`tada.motion.generator.object_flow`).  ``centers=True`` appends, last, the object's centre per
    frame ``(N, T, 2)`` (x, y in input pixels).
    """

    kwargs = EASY if easy else {}
    if reverse_pairs and n % 2:
        raise ValueError(f"reverse pairs need an even batch size, got {n}")
    m = n // 2 if reverse_pairs else n
    if labels is not None and len(labels) != m:
        # With reverse pairs the labels are those of the stream clips; their reversals follow from them.
        raise ValueError(f"make_batch needs {m} labels for {n} clips{' (reverse pairs)' if reverse_pairs else ''}")
    batch = generate_batch(
        m,
        seed,
        start=start,
        num_frames=cfg.num_frames,
        size=cfg.crop_size,
        masks=masks,
        labels=None if labels is None else list(labels),
        **kwargs,
    )
    if reverse_pairs:  # time is axis 1 of the frames and of every truth array
        batch = MotionBatch(
            np.concatenate([batch.frames, batch.frames[:, ::-1]]),
            np.concatenate([batch.labels, np.asarray(REVERSED_LABEL)[batch.labels]]),
            {k: np.concatenate([v, v[:, ::-1]]) for k, v in batch.truth.items()},
        )
    x = to_tensor(batch.frames)  # (N, 3, T, H, W), normalised with the bundled MEAN/STD
    x = cfg.to_model_layout(x).contiguous()
    out: tuple[torch.Tensor, ...] = (x, torch.from_numpy(batch.labels))
    if masks:
        out += (torch.from_numpy(batch.truth["masks"]).float(),)
        if flow:
            t = batch.truth
            out += (torch.from_numpy(object_flow(t["centers"], t["scales"], t["angles"], t["masks"])),)
    if centers:
        out += (torch.from_numpy(np.ascontiguousarray(batch.truth["centers"], dtype=np.float32)),)
    return out
