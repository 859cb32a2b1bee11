"""Turning generated clips into media: an mp4 for the app's example gallery, a contact sheet image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tada.motion.generator import MotionClip

__all__ = ["contact_sheet", "write_mp4"]


def _as_frames(clip: MotionClip | np.ndarray) -> np.ndarray:
    frames = clip.frames if isinstance(clip, MotionClip) else np.asarray(clip)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    return frames


def write_mp4(
    clip: MotionClip | np.ndarray,
    path: str | Path,
    *,
    fps: int = 8,
    scale: int = 4,
    repeat: int = 1,
    crf: int = 18,
) -> Path:
    """Write a clip (or (T, H, W, 3) uint8 frames) as H.264/yuv420p mp4, browser-playable.

    ``scale`` enlarges pixels (nearest neighbour, so the tiny frames stay crisp); ``repeat`` loops the
    clip that many times. Odd sizes are padded by one pixel (yuv420p needs even sides).
    """
    import av

    frames = _as_frames(clip)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium", "movflags": "+faststart"}
        for _ in range(repeat):
            for img in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
        container.mux(stream.encode())
    return path


def contact_sheet(clips: Sequence[MotionClip | np.ndarray], *, scale: int = 1, gap: int = 2) -> np.ndarray:
    """One row per clip, one column per frame, as an (H', W', 3) uint8 image (white gaps)."""
    rows = [_as_frames(c) for c in clips]
    t, h, w = rows[0].shape[:3]
    sheet = np.full((len(rows) * (h + gap) - gap, t * (w + gap) - gap, 3), 255, np.uint8)
    for i, frames in enumerate(rows):
        for k, img in enumerate(frames):
            sheet[i * (h + gap) : i * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = img
    return sheet.repeat(scale, 0).repeat(scale, 1) if scale > 1 else sheet
