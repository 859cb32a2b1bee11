"""From uint8 frames to the exact tensor a model was tested with (resize, crop, normalise, layout).

Two official test pipelines exist, told apart by the config's sampling protocol:

TAdaConv family (``sampling`` ``"interval"`` / ``"segment"``; ``KineticsResizedCrop``)
    frames / 255 -> short side resized to ``test_scale`` with ``F.interpolate(mode="bilinear",
    align_corners=False)`` (no antialias; the long side is ``int(long / short * test_scale)``) ->
    ``crop_size`` crop: the centre for one crop; for three crops the start, centre and end of the
    long side (official order) -> ``(x - mean) / std`` -> ``C, T, H, W``.

ILA (``sampling == "uniform"``; mmaction ``Resize``/``CenterCrop``/``ThreeCrop``/``Normalize``)
    0..255 values; short side resized with mmcv's rounding (``int(side * scale + 0.5)``) to
    ``test_scale`` (= ``int(256 / 224 * crop_size)``) then a centre crop; for the official 3-crop
    protocol the short side goes to ``crop_size`` and the crops are left/top, right/bottom, centre
    (official order) -> ``(x - mean) / std`` -> ``T, C, H, W``.  mmcv resizes uint8 pictures with
    OpenCV; here the bilinear result is rounded back to integers, which matches it to within one
    grey level (OpenCV's fixed-point weights).

Views are ordered clip-major (clip 0's crops first); averaging scores makes the order irrelevant.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from tada._pretrained import layout_time_dim

__all__ = ["ResizeTaps", "VideoTransform"]

_CHUNK_BYTES = 64 * 1024 * 1024  # float working memory per resize chunk (frames are resized in groups)


class ResizeTaps(NamedTuple):
    """The source rows and columns the resize of a ``height x width`` frame reads (sorted, unique).

    The resize is bilinear without antialiasing: each output pixel reads at most two rows and two
    columns of the source.  A decoder can send only those (``frame[rows][:, cols]``, see
    :meth:`VideoTransform.resize_taps`): a 64-pixel model reads about 2 % of a 1280x720 frame, and
    :meth:`VideoTransform.crops` with ``taps`` gives exactly the tensor the whole frames give.
    """

    height: int
    width: int
    rows: np.ndarray
    cols: np.ndarray

    @property
    def whole(self) -> bool:
        """Every pixel is read (no resize, or an enlargement): the gathered frame is the frame."""
        return len(self.rows) == self.height and len(self.cols) == self.width


def _taps(size_in: int, size_out: int) -> np.ndarray:
    """Source indices ``F.interpolate(mode="bilinear", align_corners=False)`` reads along one axis."""
    if size_out == size_in:
        return np.arange(size_in, dtype=np.int64)
    # PyTorch's rule, in float32 as its CPU kernel computes it: src = max(scale * (dst + 0.5) - 0.5, 0),
    # taps floor(src) and floor(src) + 1 (clamped).
    scale = np.float32(size_in) / np.float32(size_out)
    src = np.maximum(scale * (np.arange(size_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    src = src.astype(np.float64)
    low = np.floor(src).astype(np.int64)
    taps = [low, low + 1]
    # Where src is within rounding of an integer the kernel's floor may differ by one: take both sides.
    near = np.abs(src - np.round(src)) < 1e-3
    centre = np.round(src[near]).astype(np.int64)
    taps += [centre - 1, centre, centre + 1]
    return np.unique(np.clip(np.concatenate(taps), 0, size_in - 1))


def _as_uint8_frames(frames: Any) -> torch.Tensor:
    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames of shape (T, H, W, 3), got {tuple(t.shape)} {t.dtype}")
    return t


class VideoTransform:
    """Callable turning decoded frames into a model's input, following its pretrained config.

    Args:
        cfg: any object with ``num_frames``, ``sampling``, ``test_scale``, ``crop_size``, ``mean``,
            ``std``, ``pixel_range``, ``input_layout``, ``num_clips``, ``num_crops`` (a
            ``tada.PretrainedCfg``), or a model carrying one as ``model.pretrained_cfg``.
        views: ``"single"`` (one clip, centre crop: the default, cheapest) or ``"official"`` (the
            published ``num_clips x num_crops`` protocol).

    ``transform(frames)`` takes ``(T, H, W, 3)`` uint8 frames (numpy or torch) for one clip, or a
    sequence of ``num_clips`` such arrays, and returns a float32 tensor ``(num_views, *layout)``:
    ``(V, C, T, S, S)`` for ``"BCTHW"`` models, ``(V, T, C, S, S)`` for ``"BTCHW"`` (ILA).  Feed it
    to the model as a batch of views and average with :func:`tada.video.average_view_scores`.
    """

    def __init__(self, cfg: Any, views: str = "single") -> None:
        cfg = getattr(cfg, "pretrained_cfg", cfg)
        if views not in ("single", "official"):
            raise ValueError(f"views must be 'single' or 'official', not {views!r}")
        self.cfg = cfg
        self.views = views
        self.num_frames = int(cfg.num_frames)
        self.sampling = cfg.sampling
        self.family = "ila" if cfg.sampling == "uniform" else "tadaconv"
        self.test_scale = int(cfg.test_scale)
        self.crop_size = int(cfg.crop_size)
        self.pixel_range = float(cfg.pixel_range)
        self.input_layout = str(cfg.input_layout).upper()
        layout_time_dim(self.input_layout)  # refuses an unknown layout
        self.num_clips = int(cfg.num_clips) if views == "official" else 1
        self.num_crops = int(cfg.num_crops) if views == "official" else 1
        if self.num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 or 3, got {self.num_crops}")
        if self.crop_size > self._resize_short_side():
            raise ValueError(f"crop_size {self.crop_size} is larger than the resized short side")
        self._canvas: torch.Tensor | None = None  # see _resize_gathered
        self._levels: np.ndarray | None = None
        self._mean = torch.tensor([float(m) for m in cfg.mean], dtype=torch.float32)
        self._std = torch.tensor([float(s) for s in cfg.std], dtype=torch.float32)

    @classmethod
    def from_model(cls, model: Any, views: str = "single") -> VideoTransform:
        """The transform matching ``model.pretrained_cfg`` (model and preprocessing travel together)."""
        return cls(model.pretrained_cfg, views)

    # -- description ------------------------------------------------------------------------------

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops

    @property
    def crop_names(self) -> list[str]:
        """Crop names in the order they appear among a clip's views."""
        if self.num_crops == 1:
            return ["centre"]
        if self.family == "ila":
            return ["start", "end", "centre"]  # mmaction ThreeCrop: left/top, right/bottom, centre
        return ["start", "centre", "end"]  # TAdaConv spatial index 0, 1, 2

    @property
    def view_layout(self) -> list[tuple[int, str]]:
        """``(clip index, crop name)`` for each row of the output (clip-major)."""
        return [(c, name) for c in range(self.num_clips) for name in self.crop_names]

    def __repr__(self) -> str:
        return (
            f"VideoTransform(family={self.family!r}, frames={self.num_frames}, views={self.num_clips}x"
            f"{self.num_crops}, resize={self._resize_short_side()}, crop={self.crop_size}, "
            f"layout={self.input_layout!r})"
        )

    # -- computation ------------------------------------------------------------------------------

    def __call__(self, frames: Any) -> torch.Tensor:
        clips = [frames] if _is_single_clip(frames) else list(frames)
        if len(clips) != self.num_clips:
            raise ValueError(f"expected {self.num_clips} clip(s) of frames, got {len(clips)}")
        views = [view for clip in clips for view in self.crops(clip)]
        return torch.stack(views)

    def resize_taps(self, height: int, width: int) -> ResizeTaps:
        """The rows and columns of a ``height x width`` frame that the resize reads (see :class:`ResizeTaps`)."""
        nh, nw = self._new_size(height, width)
        return ResizeTaps(int(height), int(width), _taps(height, nh), _taps(width, nw))

    def crops(self, frames: Any, taps: ResizeTaps | None = None) -> list[torch.Tensor]:
        """The normalised crops of one clip, each in the model layout without the batch axis.

        With ``taps`` the frames are gathered ones (``frame[taps.rows][:, taps.cols]`` of frames of
        ``taps.height x taps.width``); the result is bit for bit the one of the whole frames.
        """
        x = _as_uint8_frames(frames)
        if taps is not None and tuple(x.shape[1:3]) != (len(taps.rows), len(taps.cols)):
            raise ValueError(f"gathered frames of shape {tuple(x.shape)} do not match the taps")
        if taps is not None and not taps.whole:
            resized = self._resize_gathered(x, taps)
        else:
            resized = self._resize(x)  # (T, C, h, w) float32 on the model's pixel scale
        out = []
        for top, left in self._crop_origins(resized.shape[-2], resized.shape[-1]):
            crop = resized[..., top : top + self.crop_size, left : left + self.crop_size]
            crop = (crop - self._mean.view(1, 3, 1, 1)) / self._std.view(1, 3, 1, 1)
            if layout_time_dim(self.input_layout) == 2:  # (T, C, h, w) -> (C, T, h, w)
                crop = crop.permute(1, 0, 2, 3)
            out.append(crop.contiguous())
        return out

    def _resize_short_side(self) -> int:
        if self.family == "ila" and self.num_crops == 3:
            return self.crop_size  # ILA's 3-crop protocol resizes the short side to the crop size
        return self.test_scale

    def _new_size(self, h: int, w: int) -> tuple[int, int]:
        short = self._resize_short_side()
        if self.family == "ila":
            scale = short / min(h, w)  # mmcv.rescale_size with scale (inf, short)
            return int(h * scale + 0.5), int(w * scale + 0.5)
        if h < w:  # KineticsResizedCrop._get_controlled_crop
            return int(short), int(w / h * short)
        return int(h / w * short), int(short)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w, _ = x.shape
        nh, nw = self._new_size(h, w)
        # Frames are resized a few at a time: a float copy of a whole 4K clip would take gigabytes.
        chunk = max(1, _CHUNK_BYTES // (h * w * 3 * 4))
        out = torch.empty((t, 3, nh, nw), dtype=torch.float32)
        for s in range(0, t, chunk):
            part = x[s : s + chunk].permute(0, 3, 1, 2).float()
            if self.family == "tadaconv":
                part = part / 255.0  # the official order: to [0, 1] first, then resize
            if (nh, nw) != (h, w):
                part = F.interpolate(part, size=(nh, nw), mode="bilinear", align_corners=False)
            if self.family == "ila":
                part = part.round().clamp_(0.0, 255.0)  # mmcv resizes uint8 -> uint8
                if self.pixel_range != 255.0:
                    part = part * (self.pixel_range / 255.0)
            elif self.pixel_range != 1.0:
                part = part * self.pixel_range
            out[s : s + chunk] = part
        return out

    def _resize_gathered(self, x: torch.Tensor, taps: ResizeTaps) -> torch.Tensor:
        """:meth:`_resize` of frames of which only the pixels the resize reads are given.

        Each frame's pixels are put at their places on a zero canvas of the full size, laid out
        like :meth:`_resize`'s input (channels last), and resized by the same call: every pixel the
        interpolation weighs is the real one, so the output is identical.  Places never written stay
        0 and are never weighed (or weighed by 0).
        """
        t = x.shape[0]
        h, w = taps.height, taps.width
        nh, nw = self._new_size(h, w)
        if self._canvas is None or self._canvas.shape[1:3] != (h, w):
            self._canvas = torch.zeros((1, h, w, 3), dtype=torch.float32)  # kept: one per frame size
        canvas = self._canvas
        place = canvas.numpy()[0]  # numpy's fancy assignment is ~10x faster than torch's index_put here
        rows = np.asarray(taps.rows, dtype=np.intp)[:, None]
        cols = np.asarray(taps.cols, dtype=np.intp)[None, :]
        if self._levels is None:
            # The 256 values a uint8 pixel can become, by the same operation as in _resize (x / 255
            # for TAdaConv); a lookup is exact and avoids a float pass (and a thread pool) per frame.
            levels = torch.arange(256, dtype=torch.uint8).float()
            self._levels = (levels / 255.0 if self.family == "tadaconv" else levels).numpy()
        scaled = self._levels[x.numpy()]
        out = torch.empty((t, 3, nh, nw), dtype=torch.float32)
        for s in range(t):
            place[rows, cols] = scaled[s]
            part = F.interpolate(canvas.permute(0, 3, 1, 2), size=(nh, nw), mode="bilinear", align_corners=False)
            if self.family == "ila":
                part = part.round().clamp_(0.0, 255.0)
                if self.pixel_range != 255.0:
                    part = part * (self.pixel_range / 255.0)
            elif self.pixel_range != 1.0:
                part = part * self.pixel_range
            out[s : s + 1] = part
        return out

    def _crop_origins(self, h: int, w: int) -> list[tuple[int, int]]:
        """(top, left) of each crop, in the official order of the family."""
        s = self.crop_size
        y_max, x_max = h - s, w - s
        if self.num_crops == 1:
            return [(y_max // 2, x_max // 2)]
        if self.family == "ila":  # mmaction ThreeCrop
            if h == s:
                step = (w - s) // 2
                return [(0, 0), (0, 2 * step), (0, step)]
            step = (h - s) // 2
            return [(0, 0), (2 * step, 0), (step, 0)]
        short = self._resize_short_side()
        if w == short:  # portrait or square: crops along the height (official checks width first)
            return [(0, x_max // 2), (y_max // 2, x_max // 2), (y_max, x_max // 2)]
        return [(y_max // 2, 0), (y_max // 2, x_max // 2), (y_max // 2, x_max)]


def _is_single_clip(frames: Any) -> bool:
    if isinstance(frames, (np.ndarray, torch.Tensor)):
        return frames.ndim == 4
    return False
