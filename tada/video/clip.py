"""``load_clip``: a user's file -> the model tensor plus what a person needs to see.

One call probes the file, samples frame indices with the model's protocol, decodes only those
frames (isolated worker), builds the model input with :class:`~tada.video.VideoTransform` and
small display images.  :func:`average_view_scores` fuses the predictions of several views.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from tada._pretrained import layout_time_dim
from tada.video import decode
from tada.video.info import VideoInfo, VideoLimits
from tada.video.sampling import sample_clips
from tada.video.transforms import VideoTransform
from tada.video.worker import get_pool

__all__ = ["Clip", "load_clip", "average_view_scores", "display_frame"]


@dataclass
class Clip:
    """A video ready for a model, and the frames behind it; also one view of it (:meth:`view`).

    Attributes:
        tensor: float32 model input, one row per view: ``(V, C, T, S, S)`` for ``"BCTHW"`` models,
            ``(V, T, C, S, S)`` for ILA (``"BTCHW"``).  Pass it as the batch.
        views: ``(clip index, crop name)`` for each row of ``tensor`` (clip-major).
        indices: ``(num_clips, T)`` source frame index of each input frame (None for a bare tensor).
        timestamps: ``(num_clips, T)`` seconds from the first frame of the source (None for a bare tensor).
        display_frames: uint8 ``(h, w, 3)`` images of the sampled frames as a person should see them
            (upright, whole picture, short side at most ``display_size``), in the order of
            ``indices.ravel()``.
        info: the source video (fps, duration, resolution, codec ...); None for a bare tensor.
        input_layout: ``"BCTHW"`` or ``"BTCHW"``.
        warnings: things worth telling the user (damaged frames replaced, file cut off ...).
    """

    tensor: torch.Tensor
    views: list[tuple[int, str]] = field(default_factory=lambda: [(0, "centre")])
    indices: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    display_frames: list[np.ndarray] = field(default_factory=list)
    info: VideoInfo | None = None
    input_layout: str = "BCTHW"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, input_layout: str = "BCTHW") -> Clip:
        """A clip of a bare model input: 5-D in ``input_layout``, or 4-D for one view."""
        if tensor.dim() == 4:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 5:
            raise ValueError(f"expected a 5-D clip tensor in the model layout, got shape {tuple(tensor.shape)}")
        return cls(tensor=tensor, views=[(0, "centre")] * int(tensor.shape[0]), input_layout=input_layout)

    @property
    def num_views(self) -> int:
        return int(self.tensor.shape[0])

    @property
    def time_dim(self) -> int:
        """Index of the time axis of ``tensor``."""
        return layout_time_dim(self.input_layout)

    @property
    def num_frames(self) -> int:
        """Frames of one view (T)."""
        return int(self.tensor.shape[self.time_dim])

    @property
    def frame_indices(self) -> list[int] | None:
        """Source frame index of each input frame of the first clip (the only one of a view)."""
        if self.indices is None:
            return None
        return [int(i) for i in np.asarray(self.indices).reshape(-1, self.num_frames)[0]]

    @property
    def frame_timestamps(self) -> list[float] | None:
        """Seconds of each input frame of the first clip (the only one of a view)."""
        if self.timestamps is None:
            return None
        return [float(t) for t in np.asarray(self.timestamps).reshape(-1, self.num_frames)[0]]

    @property
    def main_view_index(self) -> int:
        """The view explanations and internals are shown for: clip 0, centre crop (else view 0)."""
        return next((i for i, (c, crop) in enumerate(self.views) if c == 0 and crop in ("centre", "center")), 0)

    def view(self, v: int) -> Clip:
        """View ``v`` alone (batch of 1) with its own clip's indices, timestamps and display frames."""
        c, crop = self.views[v]
        t = self.num_frames
        rows = slice(c, c + 1)
        return replace(
            self,
            tensor=self.tensor[v : v + 1],
            views=[(0, crop)],
            indices=None if self.indices is None else np.asarray(self.indices)[rows],
            timestamps=None if self.timestamps is None else np.asarray(self.timestamps)[rows],
            display_frames=list(self.display_frames[c * t : (c + 1) * t]),
        )

    def main_view(self) -> Clip:
        """:meth:`view` of :attr:`main_view_index`."""
        return self.view(self.main_view_index)

    def average(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities over this clip's views (see :func:`average_view_scores`)."""
        return average_view_scores(logits)


def average_view_scores(logits: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Softmax per view, then the mean over views: ``(V, K)`` logits -> ``(K,)`` probabilities.

    The official multi-view tests sum the per-view softmax scores; the mean ranks the classes the
    same way and stays a probability distribution.
    """
    x = torch.as_tensor(logits).float()
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"expected (views, classes) scores, got shape {tuple(x.shape)}")
    return torch.softmax(x, dim=-1).mean(dim=0)


def display_frame(frame: np.ndarray, display_size: int = 256) -> np.ndarray:
    """A frame scaled (antialiased bilinear) so its short side is at most ``display_size``."""
    h, w = frame.shape[:2]
    short = min(h, w)
    if short <= display_size:
        return np.ascontiguousarray(frame)
    s = display_size / short
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))


def window_frames(info: VideoInfo, window: tuple[float, float]) -> tuple[int, int]:
    """``(first frame, frame count)`` of the part ``(start_s, end_s)`` of a video, inside the video and
    at least one frame long (frame ``round(t * fps)`` starts at time ``t``)."""
    fps = float(info.fps) or 25.0
    n = max(int(info.num_frames), 1)
    first = min(max(int(round(float(window[0]) * fps)), 0), n - 1)
    last = min(max(int(round(float(window[1]) * fps)), first + 1), n)
    return first, last - first


def load_clip(
    path: str | os.PathLike,
    cfg: Any,
    views: str = "single",
    limits: VideoLimits | None = None,
    *,
    display_size: int = 256,
    backend: str = "auto",
    start: float | None = None,
    window: tuple[float, float] | None = None,
) -> Clip:
    """Read a video file the way a model was tested.

    Args:
        path: the video file.
        cfg: the model's pretrained config (``tada.PretrainedCfg`` or any object with its
            sampling/preprocessing attributes), or a model that carries one as ``pretrained_cfg``.
        views: ``"single"`` (one centred clip and crop, the default) or ``"official"`` (the published
            clips x crops protocol, e.g. 4 x 3).
        limits: upload limits (size, duration, resolution, decode time); defaults to ``VideoLimits()``.
        display_size: largest short side of ``Clip.display_frames``.
        backend: decoder, ``"auto"``, ``"pyav"`` or ``"decord"``.
        start: seconds where the window starts instead of the centre (``"interval"`` sampling, one
            view; see :func:`~tada.video.sampling.sample_indices`).
        window: ``(start_s, end_s)``: read only that part of the video, sampled with the model's own
            protocol as if it were the whole video (any sampling, any views; replaces ``start``). The
            frames are those of the same window of :func:`tada.timeline.plan_windows`.

    Raises:
        VideoError: the file cannot be used; ``str(err)`` explains why in plain words.
    """
    transform = VideoTransform(cfg, views)
    limits = limits or VideoLimits()
    path = os.fspath(path)
    decode.check_path(path, limits)
    timeout = limits.decode_timeout_s
    views: list[torch.Tensor] = []
    shown: list[np.ndarray] = []
    stamps: list[np.ndarray] = []
    warnings: dict[str, None] = {}
    # Probe and reads in the same worker (they share its packet scan).  One temporal clip at a time:
    # only one clip's full-resolution frames are ever held (a 4K source has 25 MB per frame).
    with get_pool().lease() as worker:
        info: VideoInfo = worker.call(decode.probe_file, (path, limits, backend), {}, timeout)
        if window is not None:
            first, count = window_frames(info, window)
            indices = first + sample_clips(count, info.fps, transform.cfg, transform.num_clips)
        else:
            indices = sample_clips(info.num_frames, info.fps, transform.cfg, transform.num_clips, start_time=start)
        for clip_indices in indices:
            unique, inverse = np.unique(clip_indices, return_inverse=True)
            result = worker.call(decode.read_file, (path, unique, limits, backend), {}, timeout)
            views.extend(transform.crops(result.frames[inverse]))
            small = [display_frame(f, display_size) for f in result.frames]
            shown.extend(small[i] for i in inverse)
            stamps.append(result.timestamps[inverse])
            warnings.update(dict.fromkeys(result.warnings))
            info = result.info
            del result
    return Clip(
        tensor=torch.stack(views),
        views=transform.view_layout,
        indices=indices,
        timestamps=np.stack(stamps),
        display_frames=shown,
        info=info,
        input_layout=transform.input_layout,
        warnings=tuple(warnings),
    )
