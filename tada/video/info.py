"""Plain data about a video file (``VideoInfo``) and the limits a service puts on uploads (``VideoLimits``).

No heavy imports: both classes travel between the app and the decoder worker process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tada.video.errors import VideoError

__all__ = ["VideoInfo", "VideoLimits"]


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`tada.video.probe` finds out about a file.

    Attributes:
        path: the file.
        container: demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"``, ``"avi"``.
        codec: video codec, e.g. ``"h264"``, ``"hevc"``, ``"vp9"``, ``"av1"``.
        width, height: size of the frames as displayed (after applying ``rotation``).
        fps: average frame rate (frames per second) as the container states it (what the official
            loaders use), or measured from the timestamps when the container has none.
        num_frames: frames that can be read; frame ``i`` is the ``i``-th in presentation order.
        duration: seconds, from the first frame's timestamp to the end of the last frame.
        rotation: degrees (0/90/180/270) the stored picture is turned counter-clockwise for display;
            returned frames are already upright.
        pix_fmt: the stored pixel format (``"yuv420p"``, ``"yuv420p10le"``, ``"gray"`` ...).
        file_size: bytes.
        has_audio: whether the file also holds an audio stream.
        variable_fps: whether frame intervals vary (VFR: phones, screen recorders, browsers).
        truncated: the file is cut off; only the frames before the cut are available.
        backend: decoder used, ``"pyav"`` or ``"decord"``.
        warnings: things a user may want to know (e.g. "recovered 35 of 100 frames").
    """

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    rotation: int = 0
    pix_fmt: str = ""
    file_size: int = 0
    has_audio: bool = False
    variable_fps: bool = False
    truncated: bool = False
    backend: str = "pyav"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def resolution(self) -> tuple[int, int]:
        """``(width, height)`` as displayed."""
        return self.width, self.height


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


@dataclass(frozen=True)
class VideoLimits:
    """Limits a service puts on uploads; every check raises a :class:`VideoError` a user understands.

    Attributes:
        max_bytes: largest file accepted (default 200 MB).
        max_duration_s: longest clip accepted, in seconds (default 12 hours). Reading a request's frames
            costs seeks and decoded frames, not the clip's duration; only the packet index grows with it
            (about 1 s per hour of 30 fps video), so films and lectures of hours are accepted.
        max_pixels: largest frame accepted, width x height (default 4K UHD, 3840 x 2160, either way up).
        decode_timeout_s: wall-clock limit for one decoder call; a stuck decoder is killed after it.
    """

    max_bytes: int = 200 * 1024 * 1024
    max_duration_s: float = 12 * 3600.0
    max_pixels: int = 3840 * 2160
    decode_timeout_s: float = 60.0

    def check_size(self, num_bytes: int) -> None:
        """Raise ``VideoError('too_large')`` when a file of ``num_bytes`` is over the limit."""
        if num_bytes > self.max_bytes:
            raise VideoError(
                f"The file is {num_bytes / 1e6:.0f} MB; the largest accepted is {self.max_bytes / 1e6:.0f} MB.",
                "too_large",
            )

    def check_info(self, info: VideoInfo) -> None:
        """Raise ``VideoError`` when a probed video is too long or too large in pixels."""
        self.check_size(info.file_size)
        self.check_duration(info.duration)
        self.check_pixels(info.width, info.height)

    def check_duration(self, seconds: float) -> None:
        """Raise ``VideoError('too_long')`` for a clip over ``max_duration_s`` (also checked from the
        header's duration before the packet scan, so a far too long file is refused in a moment)."""
        if seconds > self.max_duration_s:
            raise VideoError(
                f"The clip is {_fmt_seconds(seconds)} long; the longest accepted is "
                f"{_fmt_seconds(self.max_duration_s)}. Please trim it.",
                "too_long",
            )

    def check_pixels(self, width: int, height: int) -> None:
        """Raise ``VideoError('too_high_resolution')`` for frames over ``max_pixels``.

        Called with the size the codec parameters declare before any frame is decoded (one frame of a
        huge picture costs hundreds of MB), and again with the decoded size.
        """
        if width * height > self.max_pixels:
            raise VideoError(
                f"The video is {width}x{height} pixels; the largest accepted is "
                f"{self.max_pixels / 1e6:.1f} megapixels (4K). Please use a smaller version.",
                "too_high_resolution",
            )
