"""Test clips made on the fly: every frame carries its own index in big blocks, so a decoded frame can be
identified despite compression, rotation and resizing.

Layout of a frame: a 4 x 3 grid of cells; cell 0 is pure red (checks RGB order), cells 1..11 hold the
frame index in binary (white = 1, black = 0), most significant bit first.  Everything is written with
PyAV (no ffmpeg CLI needed).  ``build_matrix(tmpdir)`` makes the whole matrix in about a second.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner otherwise

COLS, ROWS = 4, 3
# Decoded codec name -> PyAV encoder.
ENCODERS = {
    "h264": "libx264",
    "hevc": "libx265",
    "vp8": "libvpx",
    "vp9": "libvpx-vp9",
    "av1": "libsvtav1",
    "mpeg4": "mpeg4",
    "mjpeg": "mjpeg",
}
BITS = COLS * ROWS - 1


def _cells(h: int, w: int):
    ys = np.linspace(0, h, ROWS + 1).astype(int)
    xs = np.linspace(0, w, COLS + 1).astype(int)
    for r in range(ROWS):
        for c in range(COLS):
            yield ys[r], ys[r + 1], xs[c], xs[c + 1]


def make_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """(height, width, 3) uint8 frame showing ``index`` (0 <= index < 2**11)."""
    assert 0 <= index < 2**BITS
    img = np.zeros((height, width, 3), np.uint8)
    for k, (y0, y1, x0, x1) in enumerate(_cells(height, width)):
        if k == 0:
            img[y0:y1, x0:x1] = (255, 0, 0)
        elif (index >> (BITS - k)) & 1:
            img[y0:y1, x0:x1] = 255
    return img


def read_index(frame: np.ndarray, check_red: bool = True) -> int:
    """The index a decoded frame shows (inverse of :func:`make_frame`); checks cell 0 is red."""
    h, w = frame.shape[:2]
    value = 0
    for k, (y0, y1, x0, x1) in enumerate(_cells(h, w)):
        cy0, cy1 = y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4
        cx0, cx1 = x0 + (x1 - x0) // 4, x1 - (x1 - x0) // 4
        patch = frame[cy0:cy1, cx0:cx1].reshape(-1, 3).astype(float).mean(0)
        if k == 0:
            if check_red:
                assert patch[0] > 150 and patch[1] < 100 and patch[2] < 100, f"cell 0 is not red: {patch}"
            continue
        value = (value << 1) | int(patch.mean() > 128)
    return value


@dataclass
class ClipSpec:
    """A generated clip and what decoding it must give."""

    path: Path
    num_frames: int
    fps: float
    width: int  # displayed
    height: int
    codec: str = ""
    rotation: int = 0
    color: bool = True
    vfr: bool = False


class _NonSeekable(io.RawIOBase):
    """A write-only stream without seek: what a browser's MediaRecorder gives (no duration, no cues)."""

    def __init__(self, f) -> None:
        self._f = f

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return self._f.write(b)


def write_clip(
    path: str | Path | io.RawIOBase,
    num_frames: int,
    *,
    codec: str = "libx264",
    fps: float | Fraction = 30,
    width: int = 64,
    height: int = 48,
    fmt: str | None = None,
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    pts_ms: list[int] | None = None,
    rotation: int = 0,
    first_index: int = 0,
) -> None:
    """Encode frames ``first_index .. first_index + num_frames - 1`` (index patterns) into a file."""
    rate = Fraction(fps).limit_denominator(1001)
    target = str(path) if isinstance(path, (str, Path)) else path
    with av.open(target, "w", format=fmt, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if options:
            stream.options = options
        if pts_ms is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(make_frame(first_index + i, width, height), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def hours_film(
    path: str | Path, hours: float, fps: int = 1, size: tuple[int, int] = (32, 24), distinct: int = 6
) -> Path:
    """A clip of ``hours`` at ``fps`` made in about a second: a few all-keyframe H.264 packets muxed again
    and again (frame ``i`` shows grey level ``40 * (i % distinct)``)."""
    w, h = size
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.options = {"preset": "ultrafast", "g": "1", "x264-params": "log-level=error"}
    packets = []
    for i in range(distinct):
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 * i, np.uint8), format="rgb24")
        frame.pts = i
        packets += [bytes(p) for p in enc.encode(frame)]
    packets += [bytes(p) for p in enc.encode(None)]
    assert len(packets) == distinct
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.extradata = enc.extradata
        for i in range(int(hours * 3600 * fps)):
            packet = av.Packet(packets[i % distinct])
            packet.stream, packet.pts, packet.dts = stream, i, i
            packet.time_base, packet.is_keyframe = Fraction(1, fps), True
            out.mux(packet)
    return path


def write_audio_only(path: str | Path, seconds: float = 1.0) -> None:
    """An AAC-in-MP4 file with no video stream (named .mp4 on purpose)."""
    rate = 16000
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        t = np.arange(int(rate * seconds)) / rate
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for s in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, s : s + 1024], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = s
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def build_matrix(root: str | Path) -> dict[str, ClipSpec]:
    """Write the good clips (and the bad inputs, see :func:`build_bad_inputs`) under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    x264 = {"g": "10", "bf": "3"}
    specs: dict[str, ClipSpec] = {}

    def add(name: str, n: int, fps: float = 30, w: int = 64, h: int = 48, codec: str = "h264", **kw) -> None:
        spec_kw = {k: kw.pop(k) for k in ("color", "vfr") if k in kw}
        rotation = kw.get("rotation", 0)
        dw, dh = (h, w) if rotation % 180 else (w, h)
        write_clip(root / name, n, codec=ENCODERS[codec], fps=fps, width=w, height=h, **kw)
        specs[name] = ClipSpec(root / name, n, float(fps), dw, dh, codec, rotation % 360, **spec_kw)

    add("h264.mp4", 40, 30, options=x264)
    add("h264.mov", 30, 25, fmt="mov", options=x264)
    add("h264.mkv", 30, 24, options=x264)
    add("h264_2997.mp4", 36, Fraction(30000, 1001), options=x264)
    add("h264_60fps.mp4", 48, 60, options=x264)
    add("hevc.mp4", 30, 25, codec="hevc", options={"g": "10", "x265-params": "log-level=error"})
    add("hevc_open_gop.mkv", 40, 30, codec="hevc", options={"x265-params": "log-level=error:keyint=12:open-gop=1"})
    add("vp8.webm", 30, 30, codec="vp8", options={"g": "10"})
    add("vp9.webm", 30, 30, codec="vp9", options={"g": "10"})
    add("av1.mp4", 30, 30, codec="av1", options={"g": "10"})
    add("av1.webm", 20, 24, codec="av1")
    add("mpeg4.avi", 30, 25, codec="mpeg4", options={"g": "10"})
    add("mjpeg.avi", 20, 25, codec="mjpeg", pix_fmt="yuvj420p")
    add("mjpeg.mov", 20, 30, codec="mjpeg", pix_fmt="yuvj420p", fmt="mov")
    add("h264_10bit.mp4", 24, 30, pix_fmt="yuv420p10le", options=x264)
    add("hevc_10bit.mkv", 20, 30, codec="hevc", pix_fmt="yuv420p10le", options={"x265-params": "log-level=error"})
    add("gray.mp4", 24, 30, pix_fmt="gray", color=False, options=x264)
    add("odd_65x47.mkv", 24, 30, w=65, h=47, pix_fmt="yuv444p", options=x264)
    add("portrait_48x64.mp4", 24, 30, w=48, h=64, options=x264)
    add("one_frame.mp4", 1, 30)
    add("three_frames.mp4", 3, 30, options=x264)
    add("long_gop10.mp4", 300, 30, options=x264)
    for rot in (90, 180, 270):
        add(f"rot{rot}.mp4", 24, 30, rotation=rot, options=x264)
    # Variable frame rate: irregular gaps, as phones and screen recorders write.
    gaps = [33, 100, 17, 50, 33, 200, 40, 33, 66, 10]
    pts = np.concatenate([[0], np.cumsum([gaps[i % len(gaps)] for i in range(39)])]).tolist()
    add("vfr.mp4", 40, 30, options=x264, pts_ms=pts, vfr=True)
    specs["vfr.mp4"].fps = 0.0  # measured, not nominal
    # Browser MediaRecorder: WebM streamed to a non-seekable sink, so no duration and no cues.
    for codec, name in (("vp8", "mediarecorder_vp8.webm"), ("vp9", "mediarecorder_vp9.webm")):
        with open(root / name, "wb") as f:
            write_clip(_NonSeekable(f), 30, codec=ENCODERS[codec], fps=30, fmt="webm")
        specs[name] = ClipSpec(root / name, 30, 30.0, 64, 48, codec)
    return specs


def build_bad_inputs(root: str | Path) -> dict[str, Path]:
    """Inputs that must fail (or be salvaged) with a clear message."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    (root / "zero.mp4").write_bytes(b"")
    out["zero"] = root / "zero.mp4"
    (root / "text.mp4").write_text("This is not a video, just some notes.\nline two\n")
    out["text"] = root / "text.mp4"
    from PIL import Image

    Image.fromarray(make_frame(5)).save(root / "picture.png")
    out["png"] = root / "picture.png"
    (root / "picture_renamed.mp4").write_bytes((root / "picture.png").read_bytes())
    out["png_renamed"] = root / "picture_renamed.mp4"
    Image.fromarray(make_frame(5)).save(root / "picture.jpg", quality=90)
    out["jpeg"] = root / "picture.jpg"
    write_audio_only(root / "audio_only.mp4")
    out["audio"] = root / "audio_only.mp4"
    # An mp4 whose index (moov) is at the end, cut in half: nothing can be recovered.
    write_clip(root / "_full.mp4", 60, options={"g": "10"})
    data = (root / "_full.mp4").read_bytes()
    (root / "truncated_beyond.mp4").write_bytes(data[: len(data) // 2])
    out["truncated_beyond"] = root / "truncated_beyond.mp4"
    # A fast-start mp4 (index first) cut in the middle of its media data: the first frames are intact.
    write_clip(root / "_faststart.mp4", 120, options={"g": "10"}, container_options={"movflags": "+faststart"})
    data = (root / "_faststart.mp4").read_bytes()
    mdat = data.index(b"mdat") - 4
    (root / "truncated_salvageable.mp4").write_bytes(data[: mdat + (len(data) - mdat) // 2])
    out["truncated_salvageable"] = root / "truncated_salvageable.mp4"
    # Random bytes overwritten in the second half of the media data (the index stays intact).
    data = bytearray((root / "_full.mp4").read_bytes())
    start, size = data.index(b"mdat") - 4, int.from_bytes(data[data.index(b"mdat") - 4 : data.index(b"mdat")], "big")
    rng = np.random.default_rng(0)
    for pos in rng.integers(start + size // 2, start + size, size=100):
        data[pos] = rng.integers(0, 256)
    (root / "corrupted.mp4").write_bytes(bytes(data))
    out["corrupted"] = root / "corrupted.mp4"
    # Garbage with a video extension, and an AVI whose codec tag no decoder knows.
    (root / "noise.mkv").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    out["noise"] = root / "noise.mkv"
    write_clip(root / "_mpeg4.avi", 10, codec="mpeg4")
    data = (root / "_mpeg4.avi").read_bytes()
    assert data.count(b"FMP4") >= 1
    (root / "unknown_codec.avi").write_bytes(data.replace(b"FMP4", b"QQQ9"))
    out["unknown_codec"] = root / "unknown_codec.avi"
    return out


# ----------------------------------------------------------------------------------------------
# pytest fixtures ``matrix`` and ``bad_inputs``: import ``matrix_fixture`` / ``bad_inputs_fixture`` into a
# test module to make them available there.
# The clips are built once per session, whichever module asks first.

_built: dict[str, object] = {}


def _root(tmp_path_factory) -> Path:
    if "root" not in _built:
        _built["root"] = tmp_path_factory.mktemp("video_matrix")
    return _built["root"]  # type: ignore[return-value]


try:
    import pytest

    @pytest.fixture(scope="session", name="matrix")
    def matrix_fixture(tmp_path_factory) -> dict[str, ClipSpec]:
        if "good" not in _built:
            _built["good"] = build_matrix(_root(tmp_path_factory) / "good")
        return _built["good"]  # type: ignore[return-value]

    @pytest.fixture(scope="session", name="bad_inputs")
    def bad_inputs_fixture(tmp_path_factory) -> dict[str, Path]:
        if "bad" not in _built:
            _built["bad"] = build_bad_inputs(_root(tmp_path_factory) / "bad")
        return _built["bad"]  # type: ignore[return-value]

except ImportError:  # pragma: no cover - the module is also usable as a plain script helper
    pass


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Undo a display rotation applied by the decoder, to read the pattern as it was encoded."""
    return np.rot90(frame, -(rotation // 90) % 4)
