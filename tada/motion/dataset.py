"""Torch side of the motion task: normalised (B, C, T, H, W) tensors and a map-style dataset.

Never flip clips horizontally or reverse them as augmentation: that changes the right answer
(use :meth:`MotionClip.reversed` / :data:`REVERSED_LABEL` when a reversal is meant).
"""

from __future__ import annotations

import numpy as np
import torch

from tada.constants import MOTION_MEAN, MOTION_STD
from tada.motion.generator import clip_label, clip_seed, generate_clip

__all__ = ["MotionDataset", "to_tensor"]


def to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., T, H, W, 3) -> normalised float32 (..., 3, T, H, W)."""
    x = torch.as_tensor(np.asarray(frames))
    if x.dtype != torch.uint8 or x.ndim < 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 (..., T, H, W, 3) frames, got {tuple(x.shape)} {x.dtype}")
    x = x.movedim(-1, -4).float().div_(255.0)
    mean = torch.tensor(MOTION_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(MOTION_STD).view(3, 1, 1, 1)
    return x.sub_(mean).div_(std)


class MotionDataset(torch.utils.data.Dataset):
    """Clips ``start .. start+length-1`` of the stream ``seed`` as ``(x (3, T, H, W), label)``.

    Deterministic per index (so it works unchanged with ``DataLoader`` workers); use a fresh ``seed``
    or ``start`` per epoch for new data. With ``with_truth=True`` items are ``(x, label, truth)``
    where ``truth`` holds tensors ``centers`` (T, 2), ``boxes`` (T, 4), ``masks`` (T, H, W).
    ``kwargs`` go to :func:`generate_clip` (``distractors``, ``jitter``, ``noise``, ``backgrounds``).
    """

    def __init__(
        self,
        length: int,
        seed: int,
        *,
        num_frames: int = 8,
        size: int = 64,
        start: int = 0,
        with_truth: bool = False,
        **kwargs,
    ) -> None:
        self.length, self.seed, self.start = length, seed, start
        self.num_frames, self.size, self.with_truth, self.kwargs = num_frames, size, with_truth, kwargs

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(index)
        i = self.start + index
        clip = generate_clip(
            clip_seed(self.seed, i), clip_label(self.seed, i), self.num_frames, self.size, **self.kwargs
        )
        x = to_tensor(clip.frames)
        if not self.with_truth:
            return x, clip.label
        truth = {k: torch.from_numpy(np.ascontiguousarray(getattr(clip, k))) for k in ("centers", "boxes", "masks")}
        return x, clip.label, truth
