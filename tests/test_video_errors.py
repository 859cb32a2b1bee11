"""Every bad input gives its own clear ``VideoError`` (through the isolated worker, as the app calls it)."""

from __future__ import annotations

import pickle

import pytest
from video_matrix import bad_inputs_fixture, make_frame, matrix_fixture, write_clip  # noqa: F401  (pytest fixtures)

from tada.video import ERROR_CODES, VideoError, VideoLimits, probe, read_frames
from tada.video.info import VideoInfo

CASES = {
    # input: (code, words the message must contain)
    "zero": ("empty", "empty"),
    "text": ("not_video", "text file"),
    "png": ("image", "PNG image"),
    "png_renamed": ("image", "PNG image"),
    "jpeg": ("image", "JPEG image"),
    "audio": ("no_video_stream", "no video stream"),
    "truncated_beyond": ("truncated", "incomplete"),
    "noise": ("not_video", "not a video"),
    "unknown_codec": ("unsupported_codec", "cannot be decoded"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_clear_error(bad_inputs, name):
    code, words = CASES[name]
    with pytest.raises(VideoError) as err:
        probe(bad_inputs[name])
    assert err.value.code == code
    assert err.value.code in ERROR_CODES
    assert words in str(err.value)
    # The message is a sentence for people: no paths, no FFmpeg jargon, no error numbers.
    msg = str(err.value)
    assert msg[0].isupper() and msg.endswith(".")
    assert "Errno" not in msg and "avcodec" not in msg and str(bad_inputs[name].parent) not in msg
    with pytest.raises(VideoError) as err2:  # reading frames fails the same way
        read_frames(bad_inputs[name], [0])
    assert err2.value.code == code


def test_missing_path_and_directory(tmp_path):
    for path in (tmp_path / "nope.mp4", tmp_path):
        with pytest.raises(VideoError) as err:
            probe(path)
        assert err.value.code == "not_found"


def test_limits(matrix):
    path = matrix["long_gop10.mp4"].path  # 300 frames at 30 fps, 64 x 48
    with pytest.raises(VideoError) as err:
        probe(path, VideoLimits(max_bytes=100))
    assert err.value.code == "too_large" and "MB" in str(err.value)
    with pytest.raises(VideoError) as err:
        probe(path, VideoLimits(max_duration_s=5))
    assert err.value.code == "too_long" and "10 s long" in str(err.value)
    with pytest.raises(VideoError) as err:
        read_frames(path, [0], VideoLimits(max_pixels=64 * 47))
    assert err.value.code == "too_high_resolution" and "64x48" in str(err.value)
    info = probe(path, VideoLimits(max_duration_s=10.5, max_pixels=64 * 48))
    assert isinstance(info, VideoInfo) and info.duration == pytest.approx(10.0)


def test_default_limits():
    lim = VideoLimits()
    assert lim.max_bytes == 200 * 1024 * 1024 and lim.max_duration_s == 12 * 3600 and lim.max_pixels == 3840 * 2160
    lim.check_size(lim.max_bytes)
    with pytest.raises(VideoError):
        lim.check_size(lim.max_bytes + 1)


def test_video_error_survives_pickling_and_reads_well():
    err = VideoError("The clip is 0 frames long.", "no_frames", "detail for logs")
    back = pickle.loads(pickle.dumps(err))
    assert (back.message, back.code, back.detail) == (err.message, err.code, err.detail)
    assert str(back) == "The clip is 0 frames long." and "no_frames" in repr(back)


def test_declared_size_is_refused_before_any_frame_is_decoded(tmp_path, monkeypatch):
    """A small file can declare a huge picture: refuse it from the codec parameters, decoding nothing."""
    from tada.video import decode as vdecode

    path = tmp_path / "wide.mp4"
    write_clip(path, 3, width=640, height=480)
    decoded = []
    real = vdecode._decode_tolerant
    monkeypatch.setattr(vdecode, "_decode_tolerant", lambda *a: decoded.append(1) or real(*a))
    with pytest.raises(VideoError) as err:
        vdecode.probe_file(path, VideoLimits(max_pixels=320 * 240))
    assert err.value.code == "too_high_resolution" and "640x480" in str(err.value)
    assert decoded == []
    assert vdecode.probe_file(path).width == 640 and decoded  # within the limit it decodes as usual


def test_index_first_mp4_cut_before_its_first_frame_says_so(tmp_path):
    """The index lists frames whose data lies past the end of the file: "cut off", not "0 frames long"."""
    write_clip(tmp_path / "full.mp4", 30, options={"g": "10"}, container_options={"movflags": "+faststart"})
    data = (tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.index(b"mdat") + 16])  # the index and a few bytes of the first sample
    for reader in (probe, lambda p: read_frames(p, [0])):
        with pytest.raises(VideoError) as err:
            reader(cut)
        assert err.value.code == "truncated"
        assert "cut off" in str(err.value) and "no frame can be recovered" in str(err.value)


def test_a_second_video_stream_is_mentioned(tmp_path):
    import av

    path = tmp_path / "two_streams.mkv"
    with av.open(str(path), "w") as container:
        streams = [container.add_stream("libx264", rate=25) for _ in range(2)]
        for s in streams:
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            for s in streams:
                frame = av.VideoFrame.from_ndarray(make_frame(i), format="rgb24")
                container.mux(s.encode(frame))
        for s in streams:
            container.mux(s.encode())
    info = probe(path)
    assert info.num_frames == 5
    assert any("2 video streams" in w and "first" in w for w in info.warnings)
