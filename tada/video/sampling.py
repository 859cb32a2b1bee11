"""Which frames a model sees: the official test-time sampling protocols, index for index.

Three protocols, chosen by a pretrained config's ``sampling`` field:

``"interval"`` (TAda2D / TAdaConvNeXtV2 on Kinetics; TAdaConv ``_interval_based_sampling``)
    A window of ``clip_len = num_frames * sampling_rate * fps / target_fps`` source frames (the rate
    is defined at ``target_fps`` = 30, so a 60 fps video is covered at the same speed).  One clip:
    the window is centred, ``start = max(L - clip_len, 0) / 2``; clip ``i`` of ``n``:
    ``start = max(L - clip_len, 0) * i / n``.  Indices ``linspace(start, start + clip_len - 1,
    num_frames)`` in float32, clamped to ``[0, L-1]`` and truncated.  A clip shorter than the window
    therefore repeats its last frame, as the official loader does.

``"segment"`` (TAdaFormer, SSV2 models; TAdaConv ``_segment_based_sampling``)
    ``[0, L]`` is cut into ``num_frames`` equal segments (float32 ``linspace``).  One clip: the segment
    midpoints; clip ``i`` of ``n``: ``seg_start + seg_len * (i + 1) / n``.  Rounded (half to even,
    ``torch.round``) after clamping to ``[0, L-1]``.

``"uniform"`` (ILA; mmaction ``SampleFrames(frame_uniform=True, test_mode=True)``)
    ``seg = (L - 1) / T``; frame ``i`` is ``(round(seg*i) + round(seg*(i+1))) // 2`` (numpy rounding).
    ILA's official multi-view test draws 4 *random* TSN samplings (training-mode ``SampleFrames``);
    here they are made deterministic: with ``s = L // T`` frames per segment, clip ``c`` of ``C``
    takes frame ``j*s + floor(s * (c + 1/2) / C)`` of segment ``j`` (the official draws that offset
    uniformly in ``[0, s)``); when ``L < T`` the official fallback ``round(j * L / T)`` is used.

``num_frames == 1`` under ``"interval"`` is random in the official code; here it is the window
position's first frame (the middle of the video for one clip).

A chosen start (``start_time``, seconds; one ``"interval"`` clip only) replaces the centred window
start by ``start_time * fps``, kept so that the window ends inside the video when it fits; the rest
of the protocol (window length, linspace, clamping) is unchanged.  Segment and uniform sampling
always cover the whole video, so they take no start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["SAMPLING_PROTOCOLS", "sample_indices", "sample_clips"]

SAMPLING_PROTOCOLS = ("interval", "segment", "uniform")


def _param(name: str, explicit: Any, cfg: Any, default: Any = None) -> Any:
    if explicit is not None:
        return explicit
    if cfg is not None and getattr(cfg, name, None) is not None:
        return getattr(cfg, name)
    return default


def sample_indices(
    num_video_frames: int,
    fps: float | None = None,
    cfg: Any = None,
    *,
    num_frames: int | None = None,
    sampling: str | None = None,
    sampling_rate: int | None = None,
    target_fps: float | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
    start_time: float | None = None,
) -> np.ndarray:
    """Frame indices (int64, length ``num_frames``) of clip ``clip_index`` of ``num_clips``.

    Args:
        num_video_frames: frames in the video (``VideoInfo.num_frames``).
        fps: the video's average frame rate (``VideoInfo.fps``); only ``"interval"`` uses it
            (``None`` means "same as ``target_fps``").
        cfg: any object with ``num_frames``, ``sampling``, ``sampling_rate``, ``target_fps``
            (a ``tada.PretrainedCfg``); explicit keyword arguments override it.
        clip_index, num_clips: which temporal clip of a multi-clip protocol.
        start_time: seconds where the window starts instead of the centre (``"interval"``, one clip).
    """
    length = int(num_video_frames)
    if length < 1:
        raise ValueError("the video has no frame")
    num_frames = int(_param("num_frames", num_frames, cfg))
    sampling = _param("sampling", sampling, cfg)
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    if not 0 <= clip_index < num_clips:
        raise ValueError(f"clip_index must be in [0, {num_clips}), got {clip_index}")
    if start_time is not None and (sampling != "interval" or num_clips != 1):
        raise ValueError("a start time applies to one clip of interval sampling only")
    if sampling == "interval":
        rate = _param("sampling_rate", sampling_rate, cfg)
        if rate is None:
            raise ValueError("interval sampling needs a sampling_rate")
        tfps = float(_param("target_fps", target_fps, cfg, 30.0))
        fps = float(fps) if fps else tfps
        return _interval(length, fps, clip_index, num_clips, num_frames, int(rate), tfps, start_time)
    if sampling == "segment":
        return _segment(length, clip_index, num_clips, num_frames)
    if sampling == "uniform":
        if num_clips == 1:
            return _uniform(length, num_frames)
        return _uniform_multiview(length, num_frames, clip_index, num_clips)
    raise ValueError(f"unknown sampling {sampling!r}; expected one of {SAMPLING_PROTOCOLS}")


def sample_clips(
    num_video_frames: int, fps: float | None, cfg: Any, num_clips: int = 1, start_time: float | None = None
) -> np.ndarray:
    """Indices of every clip of a protocol, shape ``(num_clips, num_frames)`` (``start_time``: see
    :func:`sample_indices`)."""
    return np.stack(
        [
            sample_indices(num_video_frames, fps, cfg, clip_index=c, num_clips=num_clips, start_time=start_time)
            for c in range(num_clips)
        ]
    )


def _interval(
    length: int,
    fps: float,
    clip_idx: int,
    num_clips: int,
    num_frames: int,
    rate: int,
    tfps: float,
    start_time: float | None = None,
) -> np.ndarray:
    if num_frames == 1:
        max_idx = max(length - 1, 0)
        start = max_idx / 2 if num_clips == 1 else max_idx * clip_idx / num_clips
        if start_time is not None:
            start = min(max(start_time, 0.0) * fps, max_idx)
        return np.asarray([min(int(start), length - 1)], dtype=np.int64)
    # Same operation order as the official code (Python floats, then a float32 linspace).
    clip_length = num_frames * rate * fps / tfps
    max_idx = max(length - clip_length, 0)
    start = max_idx / 2 if num_clips == 1 else max_idx * clip_idx / num_clips
    if start_time is not None:  # the user's start, moved back so the window still fits when it can
        start = min(max(start_time, 0.0) * fps, max_idx)
    end = start + clip_length - 1
    index = torch.linspace(start, end, num_frames)
    return torch.clamp(index, 0, length - 1).long().numpy()


def _segment(length: int, clip_idx: int, num_clips: int, num_frames: int) -> np.ndarray:
    edges = torch.linspace(0, length, num_frames + 1)
    lo, hi = edges[:-1], edges[1:]
    if num_clips == 1:
        index = (lo + hi) / 2
    else:
        index = lo + (hi - lo) * (clip_idx + 1) / num_clips
    return torch.round(torch.clamp(index, 0, length - 1)).long().numpy()


def _uniform(length: int, num_frames: int) -> np.ndarray:
    seg = float(length - 1) / num_frames
    out = [(int(np.round(seg * i)) + int(np.round(seg * (i + 1)))) // 2 for i in range(num_frames)]
    return np.asarray(out, dtype=np.int64)


def _uniform_multiview(length: int, num_frames: int, clip_idx: int, num_clips: int) -> np.ndarray:
    per_segment = length // num_frames
    if per_segment > 0:
        offset = int(per_segment * (clip_idx + 0.5) / num_clips)
        index = np.arange(num_frames) * per_segment + offset
    else:
        index = np.around(np.arange(num_frames) * (length / num_frames)).astype(np.int64)
    return np.mod(index, length).astype(np.int64)
