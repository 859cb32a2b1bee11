"""Decoding: from a file to exact frames, as RGB uint8, without decoding more than needed.

This module runs inside the isolated decoder process (:mod:`tada.video.worker`); it imports only
numpy, PyAV and (lazily) decord, never torch.  The functions are also callable in-process.

Backends
    ``pyav`` (default): FFmpeg 8 through PyAV.  A cheap demux pass (no decoding) lists every
    packet's timestamp, so frame ``i`` is the ``i``-th frame in presentation order, exactly as
    decord numbers them.  Reading ``N`` frames then seeks to the keyframe before each wanted frame
    only when that is cheaper than decoding on, skips decoding of non-reference frames that are not
    wanted (``skip_frame=NONREF``) and converts only the wanted frames to RGB.  This handles what
    decord 0.6 cannot: AV1, browser MediaRecorder WebM without a duration, truncated files whose
    first frames are intact, and it is faster than ``decord.VideoReader.get_batch``
    (``bench/bench_video.py``).
    ``decord``: the official TAdaConv/ILA loaders' decoder.  Used when asked for, and as a second
    try when PyAV cannot read a file.  A reader is created per call and never shared across threads.

Frames come back upright (the rotation tag is applied, as decord and the ffmpeg CLI do) and in RGB
order; 10-bit and grayscale sources are converted to 8-bit RGB.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from tada.video.errors import VideoError
from tada.video.info import VideoInfo, VideoLimits

__all__ = ["ReadResult", "probe_file", "read_cost", "read_file", "check_path"]

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}


@dataclass
class ReadResult:
    """Frames read from a file: ``frames[k]`` is frame ``indices[k]``, shown at ``timestamps[k]`` s."""

    info: VideoInfo
    frames: np.ndarray  # (N, H, W, 3) uint8
    timestamps: np.ndarray  # (N,) float64 seconds from the first frame
    warnings: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Checks that need no decoder


def _read_head(path: str, n: int = 64) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def check_path(path: str | os.PathLike, limits: VideoLimits | None = None) -> int:
    """Cheap checks before any decoder touches the file; returns the size in bytes.

    Raises ``VideoError`` for a missing path, a directory, an empty file, a file over the size limit
    and a still image recognised by its first bytes.
    """
    path = os.fspath(path)
    name = os.path.basename(path) or path
    if not os.path.exists(path) or os.path.isdir(path):
        raise VideoError(f"The file '{name}' could not be found.", "not_found")
    size = os.path.getsize(path)
    if size == 0:
        raise VideoError("The file is empty (0 bytes). Please upload the video again.", "empty")
    (limits or VideoLimits()).check_size(size)
    head = _read_head(path)
    kind = _image_kind(head)
    if kind:
        raise VideoError(f"This is a {kind} image, not a video. Please choose a video clip.", "image")
    return size


def _image_kind(head: bytes) -> str | None:
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIC/AVIF"
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the end of the sample.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _open_failure(path: str, exc: Exception) -> VideoError:
    """Turn a demuxer's refusal into a message that says what the file is."""
    head = _read_head(path)
    detail = f"{type(exc).__name__}: {exc}"
    if head[4:8] in _MP4_BOXES:
        return VideoError(
            "This MP4/MOV file is incomplete (cut off during upload or recording) and no frame can be recovered.",
            "truncated",
            detail,
        )
    if head.startswith(b"\x1aE\xdf\xa3"):
        return VideoError("This WebM/MKV file is damaged and no frame can be recovered.", "truncated", detail)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return VideoError("This AVI file is damaged and no frame can be recovered.", "truncated", detail)
    if _looks_like_text(head):
        return VideoError("This is a text file, not a video. Please choose a video clip.", "not_video", detail)
    return VideoError("This file is not a video that can be read (unknown format, or damaged).", "not_video", detail)


# ----------------------------------------------------------------------------------------------
# PyAV backend


@dataclass
class _Scan:
    """Every video packet of a file, in presentation order (the frame numbering)."""

    pts: np.ndarray  # int64 timestamps in time_base units (frame numbers when not seekable)
    key: np.ndarray  # bool, keyframe
    time_base: Fraction
    seekable: bool  # every packet has a distinct timestamp: frames can be found by pts
    complete: bool  # the demuxer reached the end of the file without an error
    header_frames: int  # frame count the container header announces (0 when unknown)
    discarded: int  # packets an edit list trims away (never shown, not counted as frames)


def _video_stream(container):
    streams = [s for s in container.streams.video if not (s.disposition & _attached_pic_flag())]
    return streams[0] if streams else None


def _attached_pic_flag() -> int:
    import av

    return int(av.stream.Disposition.attached_pic)


def _scan_packets(container, stream, file_size: int) -> _Scan:
    import av

    times: list[int | None] = []
    keys: list[bool] = []
    complete = True
    discarded = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # end-of-stream marker
                continue
            if packet.is_discard:  # trimmed by an edit list: decoders drop these frames too
                discarded += 1
                continue
            pos = packet.pos
            if packet.is_corrupt or (pos is not None and pos >= 0 and pos + packet.size > file_size):
                complete = False  # a packet cut off by a truncation: its frame cannot be decoded
                continue
            times.append(packet.pts if packet.pts is not None else packet.dts)
            keys.append(bool(packet.is_keyframe))
    except (av.FFmpegError, OSError):
        complete = False
    seekable = bool(times) and all(t is not None for t in times) and len(set(times)) == len(times)
    if seekable:
        pts = np.asarray(times, dtype=np.int64)
        order = np.argsort(pts, kind="stable")
        pts, key = pts[order], np.asarray(keys, dtype=bool)[order]
    else:
        pts, key = np.arange(len(times), dtype=np.int64), np.asarray(keys, dtype=bool)
    tb = stream.time_base or Fraction(1, 1)
    return _Scan(pts, key, Fraction(tb), seekable, complete, int(stream.frames or 0), discarded)


def _declared_duration(container, stream) -> float | None:
    """Seconds the container header announces for the video stream (None when it says nothing)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _rotation_k(frame) -> int:
    """np.rot90 turns for a decoded frame (PyAV reports the display-matrix angle, counter-clockwise)."""
    rot = getattr(frame, "rotation", 0) or 0
    return int(round(rot / 90.0)) % 4


def _rgb_view(frame, height: int, width: int) -> np.ndarray:
    """A decoded frame as an upright (height, width, 3) uint8 RGB array (a view of the converted frame).

    The colour conversion is FFmpeg's (what decord and ``to_ndarray`` give); the result is a view of
    the converted frame's buffer, so the caller copies only the pixels it keeps.  A frame of another
    size (a resolution switch mid-stream, as WebRTC recordings do) is scaled to ``height x width``.
    """
    k = _rotation_k(frame)
    sw, sh = (width, height) if k % 2 == 0 else (height, width)
    if frame.width == sw and frame.height == sh:
        rgb = frame.reformat(format="rgb24")
    else:
        rgb = frame.reformat(format="rgb24", width=sw, height=sh)
    plane = rgb.planes[0]
    rows = np.frombuffer(plane, np.uint8, count=sh * plane.line_size).reshape(sh, plane.line_size)
    view = rows[:, : sw * 3].reshape(sh, sw, 3)
    return np.rot90(view, k) if k else view


def _to_rgb_into(frame, dst: np.ndarray) -> None:
    """Write a decoded frame into ``dst`` (height, width, 3) as upright uint8 RGB (see :func:`_rgb_view`)."""
    dst[...] = _rgb_view(frame, dst.shape[0], dst.shape[1])


class _Slots:
    """Where decoded frames go: one slot of a preallocated array per wanted frame index.

    A slot holds the whole upright frame (H, W, 3), or with ``taps = (rows, cols)`` only those rows
    and columns of it (``frame[rows][:, cols]``: the pixels a model's resize reads, see
    :class:`tada.video.transforms.ResizeTaps`), gathered straight from the converted picture.
    """

    def __init__(
        self, targets: list[int], height: int, width: int, taps: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        self.height, self.width = height, width
        self.taps = None
        shape = (height, width)
        if taps is not None:
            rows, cols = (np.asarray(t, dtype=np.intp).reshape(-1) for t in taps)
            inside = rows.size and cols.size and rows.min() >= 0 and cols.min() >= 0
            if not inside or rows.max() >= height or cols.max() >= width:
                raise IndexError(f"taps lie outside the {width}x{height} frame")
            self.taps = (rows, cols)
            shape = (len(rows), len(cols))
        self.array = np.empty((len(targets), *shape, 3), dtype=np.uint8)
        self.position = {i: k for k, i in enumerate(targets)}
        self.done: set[int] = set()

    def __contains__(self, index: int) -> bool:
        return index in self.done

    def __len__(self) -> int:
        return len(self.done)

    def _gather(self, full: np.ndarray, dst: np.ndarray) -> None:
        rows, cols = self.taps
        np.take(np.take(full, rows, axis=0), cols, axis=1, out=dst)

    def put_frame(self, index: int, frame) -> None:
        dst = self.array[self.position[index]]
        if self.taps is None:
            _to_rgb_into(frame, dst)
        else:
            self._gather(_rgb_view(frame, self.height, self.width), dst)
        self.done.add(index)

    def put_array(self, index: int, array: np.ndarray) -> None:
        """A whole upright frame (H, W, 3)."""
        dst = self.array[self.position[index]]
        if self.taps is None:
            dst[...] = array
        else:
            self._gather(array, dst)
        self.done.add(index)

    def copy_slot(self, index: int, source: int) -> None:
        """Fill ``index`` with the frame already read for ``source`` (a damaged frame's stand-in)."""
        self.array[self.position[index]] = self.array[self.position[source]]
        self.done.add(index)


class _PyAVReader:
    """One file opened with PyAV: its packet scan, and frame reading by presentation index."""

    def __init__(self, path: str, file_size: int, limits: VideoLimits | None = None) -> None:
        import av

        self.path = path
        self.file_size = file_size
        try:
            container = av.open(path, metadata_errors="ignore")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise _open_failure(path, exc) from None
        with container:
            fmt = container.format.name
            if fmt.endswith("_pipe") or fmt in ("image2", "image2pipe"):
                kind = fmt.replace("_pipe", "").upper()
                raise VideoError(f"This is a {kind} image, not a video. Please choose a video clip.", "image")
            stream = _video_stream(container)
            if stream is None:
                audio = " (it contains only sound)" if container.streams.audio else ""
                raise VideoError(f"This file has no video stream{audio}.", "no_video_stream")
            self.stream_index = stream.index
            self.container_name = fmt
            self.has_audio = bool(container.streams.audio)
            try:
                cc = stream.codec_context
            except Exception:  # PyAV raises when no decoder exists for the codec
                cc = None
            if cc is None:  # FFmpeg has no decoder for this codec (or does not know it at all)
                raise VideoError(
                    "This video's codec is unknown or not supported, so it cannot be decoded.", "unsupported_codec"
                )
            self.codec = cc.name
            # The size the codec parameters declare, checked before a frame is decoded: a small file
            # can declare 15360x15360, and decoding one such frame alone costs ~0.5 GB.
            (limits or VideoLimits()).check_pixels(int(cc.width or 0), int(cc.height or 0))
            self.average_rate = stream.average_rate
            # A clip far over the duration limit is refused from its header, before the packet scan
            # (which grows with the duration: ~1 s per hour of 30 fps video).
            declared = _declared_duration(container, stream)
            if declared is not None:
                (limits or VideoLimits()).check_duration(declared)
            self.scan = _scan_packets(container, stream, file_size)
            others = (
                len(container.streams.video)
                - 1
                - sum(1 for s in container.streams.video if s.disposition & _attached_pic_flag())
            )
        if len(self.scan.pts) == 0:
            if not self.scan.complete or self.scan.header_frames > 0:
                # The index lists frames but their data lies past the end of the file.
                raise VideoError(
                    "The file is cut off (incomplete upload or recording) and no frame can be recovered.",
                    "truncated",
                )
            raise VideoError("The clip is 0 frames long: it holds no picture.", "no_frames")
        self.extra_video_streams = max(0, others)
        self.index_of_pts = {int(t): i for i, t in enumerate(self.scan.pts)} if self.scan.seekable else {}
        self.width = self.height = 0
        self.rotation = 0
        self.pix_fmt = ""
        self.stats = {"decoded": 0, "converted": 0, "seeks": 0, "bad_packets": 0}
        self._live: tuple | None = None  # (open container, last index given[, frame iterator]) between reads
        self._first_frame_meta()
        self._info = self._make_info()

    # -- info -----------------------------------------------------------------------------------

    def _first_frame_meta(self) -> None:
        """Decode the first decodable frame: real size, rotation, pixel format (and proves decodability)."""
        import av

        with av.open(self.path, metadata_errors="ignore") as container:
            stream = container.streams[self.stream_index]
            try:
                for frame in _decode_tolerant(container, stream, self.stats):
                    k = _rotation_k(frame)
                    self.rotation = k * 90
                    w, h = frame.width, frame.height
                    self.width, self.height = (w, h) if k % 2 == 0 else (h, w)
                    self.pix_fmt = frame.format.name
                    return
            except av.DecoderNotFoundError as exc:
                raise VideoError(
                    f"This codec cannot be decoded: {self.codec}.", "unsupported_codec", str(exc)
                ) from None
            except av.FFmpegError as exc:
                raise VideoError(
                    "The video is damaged: no frame could be decoded.", "decode_failed", str(exc)
                ) from None
        if self.scan.complete:
            raise VideoError("The clip is 0 frames long: no picture could be decoded.", "no_frames")
        raise VideoError(
            "The file is incomplete (cut off during upload or recording) and no frame can be recovered.",
            "truncated",
        )

    def info(self) -> VideoInfo:
        return self._info

    def _make_info(self) -> VideoInfo:
        s = self.scan
        n = len(s.pts)
        measured = None
        if s.seekable and n > 1 and s.pts[-1] > s.pts[0]:
            measured = (n - 1) / float((s.pts[-1] - s.pts[0]) * s.time_base)
        rate = float(self.average_rate) if self.average_rate else 0.0
        fps = rate if 0.0 < rate < 1000.0 else (measured or 25.0)
        if s.seekable and n > 1:
            duration = float((s.pts[-1] - s.pts[0]) * s.time_base) + 1.0 / fps
        else:
            duration = n / fps
        vfr = False
        if s.seekable and n > 2:
            d = np.diff(s.pts)
            med = float(np.median(d))
            vfr = bool(np.any(np.abs(d - med) > max(0.1 * med, 1.5)))
        warnings: list[str] = []
        if self.extra_video_streams:
            n_streams = self.extra_video_streams + 1
            warnings.append(f"The file holds {n_streams} video streams; only the first one is used.")
        # An MP4/MOV header lists every frame: fewer packets than that means the file was cut.
        expected = s.header_frames - s.discarded if self.container_name.startswith("mov") else 0
        truncated = not s.complete or expected > n
        if truncated:
            of = f" of {expected}" if expected > n else ""
            warnings.append(f"The file is cut off: {n}{of} frames could be recovered.")
        return VideoInfo(
            path=self.path,
            container=self.container_name,
            codec=self.codec,
            width=self.width,
            height=self.height,
            fps=fps,
            num_frames=n,
            duration=duration,
            rotation=self.rotation,
            pix_fmt=self.pix_fmt,
            file_size=self.file_size,
            has_audio=self.has_audio,
            variable_fps=vfr,
            truncated=truncated,
            backend="pyav",
            warnings=tuple(warnings),
        )

    def timestamps(self, indices: np.ndarray) -> np.ndarray:
        s = self.scan
        if s.seekable:
            return np.asarray([float((s.pts[i] - s.pts[0]) * s.time_base) for i in indices], dtype=np.float64)
        fps = self.info().fps
        return np.asarray(indices, dtype=np.float64) / fps

    # -- frames ---------------------------------------------------------------------------------

    def read(self, targets: list[int], got: _Slots, keep_open: bool = False) -> None:
        """Decode the frames at the given presentation indices (sorted, unique) into ``got``; frames
        that cannot be decoded (damaged data) are left out.

        ``keep_open``: keep the file open and the decoder where it stopped, so that a next call
        asking for later frames (the next windows of a timeline) decodes on instead of reopening
        the file and seeking.
        """
        if self.scan.seekable:
            self._read_by_pts(targets, got, keep_open)
        else:
            self._read_on(targets, got, keep_open)
        rest = [i for i in targets if i not in got]
        if rest:
            # Damaged data, or a container whose seeking misbehaves: decode the rest from the start,
            # single-threaded (FFmpeg's frame threads drop the frames around a decoding error).
            self.close()
            self._read_sequential(rest, got, by_pts=self.scan.seekable, threads="NONE")

    def close(self) -> None:
        """Close the file a previous ``read(keep_open=True)`` left open."""
        live, self._live = self._live, None
        if live is not None:
            live[0].close()

    def _read_on(self, targets: list[int], got: _Slots, keep_open: bool) -> None:
        """Without a timestamp index frames are numbered as they come: decode from the start, or on from
        where a kept-open read stopped (``_live = (container, last index given, frame iterator)``)."""
        import av

        live, self._live = self._live, None
        if live is not None and len(live) == 3 and live[1] < targets[0]:
            container, n, frames = live
        else:
            if live is not None:
                live[0].close()
            container = av.open(self.path, metadata_errors="ignore")
            stream = container.streams[self.stream_index]
            stream.codec_context.thread_type = "AUTO"
            n, frames = -1, _decode_tolerant(container, stream, self.stats)
        wanted, last, keep = set(targets), targets[-1], False
        try:
            for frame in frames:
                n += 1
                if n in wanted:
                    got.put_frame(n, frame)
                    self.stats["converted"] += 1
                if n >= last:
                    keep = keep_open
                    break
        finally:
            if keep:
                self._live = (container, n, frames)
            else:
                container.close()

    def cost(self, targets: list[int]) -> tuple[int, int]:
        """``(frames decoded, seeks)`` that reading ``targets`` (sorted, unique) from a closed file takes.

        The same rule as :meth:`_read_by_pts`: seek to the keyframe before a target only when it lies
        ahead of the decoder, else decode on.  Without a timestamp index every frame up to the last
        target is decoded.
        """
        if not targets:
            return 0, 0
        if not self.scan.seekable:  # decoded from the start, or on from the last call (see _read_on)
            return int(targets[-1]) + 1, 0
        key_idx = np.flatnonzero(self.scan.key)
        t = np.asarray(targets, dtype=np.int64)
        j = np.searchsorted(key_idx, t, side="right") - 1
        k = np.where(j >= 0, key_idx[np.maximum(j, 0)], 0)
        decoded = seeks = 0
        pos = -1
        for i, key in zip(t.tolist(), k.tolist()):
            if key > pos:
                decoded += i - key + 1
                seeks += 1
            else:
                decoded += i - pos
            pos = i
        return decoded, seeks

    def _read_by_pts(self, targets: list[int], got: _Slots, keep_open: bool = False) -> None:
        import av

        pts = self.scan.pts
        key_idx = np.flatnonzero(self.scan.key)
        wanted = {int(pts[i]) for i in targets}
        live, self._live = self._live, None
        if live is not None and len(live) == 3:  # left by _read_on (not expected on the same reader)
            live[0].close()
            live = None
        if live is not None:
            container, pos = live
            # Decode on from where the last call stopped when every target lies ahead of it.
            positioned = 0 <= pos < targets[0]
        else:
            container = av.open(self.path, metadata_errors="ignore")
            container.streams[self.stream_index].codec_context.thread_type = "AUTO"
            pos, positioned = -1, False  # pos: presentation index of the last frame the decoder gave
        keep = False
        try:
            stream = container.streams[self.stream_index]
            cc = stream.codec_context
            ti = 0
            while ti < len(targets):
                i = targets[ti]
                if i in got or (positioned and pos >= i):
                    ti += 1  # read, or passed without being produced (damaged): give up on it here
                    continue
                j = np.searchsorted(key_idx, i, side="right") - 1
                k = int(key_idx[j]) if j >= 0 else 0
                if not positioned or k > pos:
                    # Seek only when the keyframe before the target lies ahead of the decoder:
                    # otherwise decoding on is cheaper than restarting at that keyframe.
                    container.seek(int(pts[k]), stream=stream, backward=True, any_frame=False)
                    self.stats["seeks"] += 1
                    positioned, pos, first = True, -1, True
                else:
                    first = False
                reached = False
                for packet in container.demux(stream):
                    p = packet.pts
                    # Frames nobody wants and nothing references need not be decoded at all.
                    want_it = p is None or packet.size == 0 or (p in wanted and self.index_of_pts.get(p) not in got)
                    cc.skip_frame = "DEFAULT" if want_it else "NONREF"
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        self.stats["bad_packets"] += 1
                        continue
                    for frame in frames:
                        self.stats["decoded"] += 1
                        fi = self.index_of_pts.get(frame.pts) if frame.pts is not None else None
                        if fi is None:
                            continue
                        if first and fi > i:
                            return  # the seek landed after the target: let the caller fall back
                        first = False
                        pos = fi
                        if frame.pts in wanted and fi not in got:
                            got.put_frame(fi, frame)
                            self.stats["converted"] += 1
                    if pos >= i:
                        reached = True
                        break
                if not reached:  # end of file: what was not produced is not there
                    positioned, pos = True, len(pts)
            keep = keep_open
        finally:
            if keep:
                self._live = (container, pos if positioned else -1)
            else:
                container.close()

    def _read_sequential(self, targets: list[int], got: _Slots, by_pts: bool, threads: str) -> None:
        """Decode from the start, numbering frames as they come (no seeking): the safe path."""
        import av

        wanted = set(targets)
        last = max(targets)
        with av.open(self.path, metadata_errors="ignore") as container:
            stream = container.streams[self.stream_index]
            stream.codec_context.thread_type = threads
            for n, frame in enumerate(_decode_tolerant(container, stream, self.stats)):
                fi = self.index_of_pts.get(frame.pts) if by_pts else n
                if fi in wanted and fi not in got:
                    got.put_frame(fi, frame)
                    self.stats["converted"] += 1
                if fi is not None and fi >= last:
                    break


def _decode_tolerant(container, stream, stats: dict[str, int]):
    """Frames of a stream in order; damaged packets are skipped instead of ending the read."""
    import av

    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.DecoderNotFoundError:
            raise
        except av.FFmpegError:
            stats["bad_packets"] += 1
            continue
        for frame in frames:
            stats["decoded"] += 1
            yield frame


# ----------------------------------------------------------------------------------------------
# decord backend (the official loaders' decoder)


class _DecordReader:
    """decord ``VideoReader`` created for one call in this process and dropped after it.

    decord aborts the process when a reader is used from several threads; a reader here lives in
    one call of the single-threaded worker, so that cannot happen.
    """

    def __init__(self, path: str, file_size: int) -> None:
        import decord

        self.path = path
        self.file_size = file_size
        try:
            self.vr = decord.VideoReader(path, num_threads=0)
        except Exception as exc:  # decord raises RuntimeError / DECORDError (an Exception subclass)
            raise _open_failure(path, exc) from None
        n = len(self.vr)
        if n == 0:
            raise VideoError("The clip is 0 frames long: it holds no picture.", "no_frames")
        first = self.vr[0].asnumpy()
        self.height, self.width = first.shape[:2]
        self.stats = {"decoded": 0, "converted": 0, "seeks": 0, "bad_packets": 0}

    def info(self) -> VideoInfo:
        n = len(self.vr)
        fps = float(self.vr.get_avg_fps()) or 25.0
        return VideoInfo(
            path=self.path,
            container="unknown",
            codec="unknown",
            width=self.width,
            height=self.height,
            fps=fps,
            num_frames=n,
            duration=n / fps,
            file_size=self.file_size,
            backend="decord",
        )

    def timestamps(self, indices: np.ndarray) -> np.ndarray:
        ts = self.vr.get_frame_timestamp(np.asarray(indices, dtype=np.int64))
        return np.asarray(ts, dtype=np.float64).reshape(len(indices), -1)[:, 0] - float(
            self.vr.get_frame_timestamp([0]).reshape(-1)[0]
        )

    def close(self) -> None:
        """Nothing stays open between calls (decord keeps its own reader state)."""

    def cost(self, targets: list[int]) -> tuple[int, int]:
        """``(frames decoded, seeks)``: unknown for decord, counted as the targets themselves."""
        return len(targets), len(targets)

    def read(self, targets: list[int], got: _Slots, keep_open: bool = False) -> None:
        try:
            batch = self.vr.get_batch(list(targets)).asnumpy()
        except Exception as exc:
            raise VideoError("The video is damaged: frames could not be decoded.", "decode_failed", str(exc)) from None
        self.stats["decoded"] += len(targets)
        for k, i in enumerate(targets):
            got.put_array(i, batch[k])


# ----------------------------------------------------------------------------------------------
# Entry points (called in the worker process)

_CACHE_SIZE = 8
_cache: OrderedDict[tuple, Any] = OrderedDict()
# PyAV decoding failures worth a second try with decord.  Not the demuxing ones ("not a video",
# "cut off"): decord's FFmpeg 4.1 demuxers are older than PyAV's, so they cannot do better there.
_RETRY_WITH_DECORD = {"decode_failed", "no_frames", "unsupported_codec"}


def _open_reader(path: str, limits: VideoLimits | None, backend: str):
    """A reader for ``path`` (cached per file version: probe then read costs one scan)."""
    if backend not in ("auto", "pyav", "decord"):
        raise ValueError(f"backend must be 'auto', 'pyav' or 'decord', not {backend!r}")
    path = os.fspath(path)
    size = check_path(path, limits)
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, backend)
    if key in _cache:
        _cache.move_to_end(key)
        reader = _cache[key]
    else:
        if backend == "decord":
            reader = _DecordReader(path, size)
        else:
            try:
                reader = _PyAVReader(path, size, limits)
            except VideoError as err:
                if backend == "pyav" or err.code not in _RETRY_WITH_DECORD:
                    raise
                try:
                    reader = _DecordReader(path, size)
                except Exception:
                    raise err from None
        _cache[key] = reader
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)[1].close()
    (limits or VideoLimits()).check_info(reader.info())
    return reader


def probe_file(path: str | os.PathLike, limits: VideoLimits | None = None, backend: str = "auto") -> VideoInfo:
    """Facts about a video (in this process). Raises :class:`VideoError` for anything unusable."""
    return _open_reader(os.fspath(path), limits, backend).info()


def _keep_only_open(reader: Any) -> None:
    """At most one file stays open in a worker (the one a timeline is reading through)."""
    global _open_reader_ref
    if _open_reader_ref is not None and _open_reader_ref is not reader:
        _open_reader_ref.close()
    _open_reader_ref = reader


_open_reader_ref: Any = None


def read_cost(
    path: str | os.PathLike,
    indices,
    limits: VideoLimits | None = None,
    backend: str = "auto",
) -> dict[str, int]:
    """What reading ``indices`` in one pass would decode, from the keyframe index alone (no decoding).

    ``{"frames": frames decoded, "seeks": seeks, "targets": distinct frames asked, "keyframes":
    keyframes in the file (0 when unknown), "pixels": pixels per frame}``.
    """
    reader = _open_reader(os.fspath(path), limits, backend)
    info = reader.info()
    targets = sorted(set(np.asarray(indices, dtype=np.int64).reshape(-1).tolist()))
    decoded, seeks = reader.cost(targets)
    keyframes = int(np.count_nonzero(reader.scan.key)) if isinstance(reader, _PyAVReader) else 0
    return {
        "frames": int(decoded),
        "seeks": int(seeks),
        "targets": len(targets),
        "keyframes": keyframes,
        "pixels": int(info.width * info.height),
    }


def read_file(
    path: str | os.PathLike,
    indices,
    limits: VideoLimits | None = None,
    backend: str = "auto",
    *,
    taps: tuple[np.ndarray, np.ndarray] | None = None,
    keep_open: bool = False,
) -> ReadResult:
    """Frames at presentation ``indices`` (any order, repeats allowed), in this process.

    A frame that cannot be decoded (damaged data) is replaced by the nearest frame that could, and a
    warning says so; when none can, :class:`VideoError` ``decode_failed`` is raised.

    ``taps = (rows, cols)``: return only those rows and columns of each upright frame
    (``frame[rows][:, cols]``, e.g. the pixels a model's resize reads: :meth:`VideoTransform.resize_taps
    <tada.video.transforms.VideoTransform.resize_taps>`), so a call carries kilobytes per frame instead
    of megabytes.  ``keep_open``: leave the file open with the decoder where it stopped, so a next call
    for later frames decodes on (one open file per worker; any call without it closes it).
    """
    reader = _open_reader(os.fspath(path), limits, backend)
    info = reader.info()
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError("indices is empty")
    if idx.min() < 0 or idx.max() >= info.num_frames:
        raise IndexError(f"frame indices must be in [0, {info.num_frames - 1}], got {idx.min()}..{idx.max()}")
    targets = sorted(set(idx.tolist()))
    before = dict(reader.stats)
    got = _Slots(targets, info.height, info.width, taps)
    _keep_only_open(reader)
    try:
        reader.read(targets, got, keep_open=keep_open)
    finally:
        if not keep_open:
            reader.close()
    if not len(got):
        raise VideoError("The video is damaged: none of the needed frames could be decoded.", "decode_failed")
    warnings = list(info.warnings)
    missing = [i for i in targets if i not in got]
    if missing:
        have = np.asarray(sorted(got.done))
        for i in missing:
            got.copy_slot(i, int(have[np.argmin(np.abs(have - i))]))
        warnings.append(
            f"{len(missing)} of {len(targets)} frames were damaged and replaced by their nearest readable frame."
        )
    if idx.tolist() == targets:
        frames = got.array  # sorted and unique (what load_clip asks for): no copy
    else:
        frames = got.array[[got.position[i] for i in idx.tolist()]]
    stats = {k: reader.stats[k] - before.get(k, 0) for k in reader.stats}
    stats["backend"] = info.backend
    return ReadResult(
        info=replace(info, warnings=tuple(dict.fromkeys(warnings))),
        frames=frames,
        timestamps=reader.timestamps(idx),
        warnings=tuple(dict.fromkeys(warnings)),
        stats=stats,
    )
