"""``load_clip``: a user's file -> the model tensor plus what a person needs to see.

One call probes the file, samples frame indices with the model's protocol, decodes only those
frames (isolated worker), builds the model input with :class:`~tada.video.VideoTransform` and
small display images.  :func:`average_view_scores` fuses the predictions of several views.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from tada.video import decode
from tada.video.info import VideoInfo, VideoLimits
from tada.video.sampling import sample_clips
from tada.video.transforms import VideoTransform
from tada.video.worker import get_pool

__all__ = ["Clip", "load_clip", "average_view_scores", "display_frame"]


@dataclass
class Clip:
    """A video ready for a model, and the frames behind it.

    Attributes:
        tensor: float32 model input, one row per view: ``(V, C, T, S, S)`` for ``"BCTHW"`` models,
            ``(V, T, C, S, S)`` for ILA (``"BTCHW"``).  Pass it as the batch.
        views: ``(clip index, crop name)`` for each row of ``tensor`` (clip-major).
        indices: ``(num_clips, T)`` source frame index of each input frame.
        timestamps: ``(num_clips, T)`` seconds from the first frame of the source.
        display_frames: uint8 ``(h, w, 3)`` images of the sampled frames as a person should see them
            (upright, whole picture, short side at most ``display_size``), in the order of
            ``indices.ravel()``.
        info: the source video (fps, duration, resolution, codec ...).
        input_layout: ``"BCTHW"`` or ``"BTCHW"``.
        warnings: things worth telling the user (damaged frames replaced, file cut off ...).
    """

    tensor: torch.Tensor
    views: list[tuple[int, str]]
    indices: np.ndarray
    timestamps: np.ndarray
    display_frames: list[np.ndarray]
    info: VideoInfo
    input_layout: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_views(self) -> int:
        return int(self.tensor.shape[0])

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


def load_clip(
    path: str | os.PathLike,
    cfg: Any,
    views: str = "single",
    limits: VideoLimits | None = None,
    *,
    display_size: int = 256,
    backend: str = "auto",
) -> Clip:
    """Read a video file the way a model was tested.

    Args:
        path: the video file.
        cfg: the model's pretrained config (``tada.registry.PretrainedCfg`` or any object with its
            sampling/preprocessing attributes), or a model that carries one as ``pretrained_cfg``.
        views: ``"single"`` (one centred clip and crop, the default) or ``"official"`` (the published
            clips x crops protocol, e.g. 4 x 3).
        limits: upload limits (size, duration, resolution, decode time); defaults to ``VideoLimits()``.
        display_size: largest short side of ``Clip.display_frames``.
        backend: decoder, ``"auto"``, ``"pyav"`` or ``"decord"``.

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
        indices = sample_clips(info.num_frames, info.fps, transform.cfg, transform.num_clips)
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
