"""Public file-level calls: :func:`probe` and :func:`read_frames`, run in the isolated decoder process."""

from __future__ import annotations

import os

import numpy as np

from tada.video import decode
from tada.video.decode import ReadResult
from tada.video.info import VideoInfo, VideoLimits
from tada.video.worker import get_pool

__all__ = ["probe", "read_frames", "read_frames_with_info"]


def probe(path: str | os.PathLike, limits: VideoLimits | None = None, *, backend: str = "auto") -> VideoInfo:
    """Facts about a video file: fps, frame count, duration, size, rotation, codec, container.

    Raises :class:`~tada.video.VideoError` for anything that cannot be used (empty, not a video,
    image, audio only, truncated beyond repair, over a limit, decoder crash or timeout).
    """
    limits = limits or VideoLimits()
    path = os.fspath(path)
    decode.check_path(path, limits)  # cheap checks here, without waking a worker
    return get_pool().run(decode.probe_file, path, limits, backend, timeout=limits.decode_timeout_s)


def read_frames_with_info(
    path: str | os.PathLike,
    indices,
    limits: VideoLimits | None = None,
    *,
    backend: str = "auto",
) -> ReadResult:
    """Like :func:`read_frames`, also returning the video's info, the frames' timestamps and warnings."""
    limits = limits or VideoLimits()
    path = os.fspath(path)
    decode.check_path(path, limits)
    idx = np.asarray(indices, dtype=np.int64)
    return get_pool().run(decode.read_file, path, idx, limits, backend, timeout=limits.decode_timeout_s)


def read_frames(
    path: str | os.PathLike,
    indices,
    limits: VideoLimits | None = None,
    *,
    backend: str = "auto",
) -> np.ndarray:
    """Frames at presentation ``indices`` (any order, repeats allowed) as ``(N, H, W, 3)`` uint8 RGB.

    Decoding happens in an isolated worker process under ``limits.decode_timeout_s``; only the
    needed frames are decoded (the file is never decoded in full unless the frames span it).
    ``backend``: ``"auto"`` (PyAV, then decord if PyAV cannot read the file), ``"pyav"`` or
    ``"decord"``.
    """
    return read_frames_with_info(path, indices, limits, backend=backend).frames
