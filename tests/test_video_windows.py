"""Reading many windows of a long video cheaply: gathered pixels, a decoder kept open, costs known up front.

What a timeline needs from the decoder (``tada.timeline.compute_timeline``): the same frames as a plain
read (same indices, same pixels), fewer bytes (only the pixels the model's resize reads), fewer seeks
(the file stays open between calls), the decoding cost before decoding, the isolation of the worker
kept (one call in flight, a worker left busy is not reused), and clips of many hours handled in seconds.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from video_matrix import hours_film, matrix_fixture, read_index, write_clip  # noqa: F401  (pytest fixtures)

from tada.video import VideoError, VideoTransform
from tada.video import decode as vdecode
from tada.video.worker import DecoderPool

TADA_64 = SimpleNamespace(num_frames=8, sampling="segment", test_scale=64, crop_size=64, mean=(0.45,) * 3,
                          std=(0.225,) * 3, pixel_range=1.0, input_layout="BCTHW", num_clips=1,
                          num_crops=1)  # fmt: skip


def _gathered(frames: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return frames[:, rows][:, :, cols]


@pytest.mark.parametrize("name", ["h264.mp4", "long_gop10.mp4", "rot90.mp4", "portrait_48x64.mp4", "vp9.webm"])
def test_gathered_read_is_the_plain_read_at_the_taps(matrix, name):
    """``taps=(rows, cols)`` returns exactly ``frame[rows][:, cols]`` of the upright frames, any order/repeats."""
    spec = matrix[name]
    idx = np.asarray([spec.num_frames - 1, 0, 3, 3, spec.num_frames // 2])
    plain = vdecode.read_file(spec.path, idx)
    rows = np.asarray([0, 1, spec.height // 2, spec.height - 1])
    cols = np.asarray([0, 5, 6, spec.width - 1])
    got = vdecode.read_file(spec.path, idx, taps=(rows, cols))
    assert got.frames.shape == (len(idx), len(rows), len(cols), 3)
    np.testing.assert_array_equal(got.frames, _gathered(plain.frames, rows, cols))
    np.testing.assert_array_equal(got.timestamps, plain.timestamps)
    with pytest.raises(IndexError):
        vdecode.read_file(spec.path, [0], taps=(np.asarray([spec.height]), cols))


def test_the_transform_of_gathered_frames_is_the_transform_of_the_frames(matrix):
    """Decoder taps + ``VideoTransform.crops(..., taps)`` give the model input bit for bit."""
    spec = matrix["long_gop10.mp4"]
    idx = np.arange(40, 300, 33)
    for cfg in (TADA_64, SimpleNamespace(**{**vars(TADA_64), "test_scale": 32, "crop_size": 24})):
        tr = VideoTransform(cfg)
        taps = tr.resize_taps(spec.height, spec.width)
        plain = tr.crops(vdecode.read_file(spec.path, idx).frames)[0]
        fast = tr.crops(vdecode.read_file(spec.path, idx, taps=(taps.rows, taps.cols)).frames, taps)[0]
        assert fast.dtype == plain.dtype and bool((fast == plain).all())


def test_a_kept_open_decoder_reads_on_across_calls(matrix):
    """Batches of later frames continue where the decoder stopped: same frames, fewer seeks than reopening."""
    spec = matrix["long_gop10.mp4"]  # 300 frames, a keyframe every 10, B-frames
    batches = [[3, 5, 8], [9, 12, 14], [16, 40], [41, 43], [120, 125]]
    vdecode._cache.clear()  # a fresh reader: no file left open by another test
    kept = [vdecode.read_file(spec.path, b, keep_open=True) for b in batches]
    fresh = [vdecode.read_file(spec.path, b) for b in batches]
    for k, f, b in zip(kept, fresh, batches):
        np.testing.assert_array_equal(k.frames, f.frames)
        assert [read_index(x) for x in k.frames] == b
    # Reading on: one seek for 3..14 (keyframes 0 and 10: the one at 10 lies ahead, so a seek there is
    # cheaper), one to 40, one to 120; a fresh open per call seeks at least once per call.
    assert sum(k.stats["seeks"] for k in kept) <= 4 < sum(f.stats["seeks"] for f in fresh)
    # Going back is allowed: the decoder seeks again instead of passing the frames by.
    back = vdecode.read_file(spec.path, [2, 130], keep_open=True)
    assert [read_index(x) for x in back.frames] == [2, 130]
    vdecode.read_file(spec.path, [0])  # a call without keep_open closes the file
    reader = next(iter(vdecode._cache.values()))
    assert reader._live is None


def test_read_cost_predicts_the_frames_decoded(tmp_path):
    path = tmp_path / "gop10.mp4"
    write_clip(path, 300, options={"g": "10", "bf": "0", "x264-params": "scenecut=0:log-level=error"})
    targets = [5, 9, 55, 56, 250]
    cost = vdecode.read_cost(path, targets)
    # keyframes every 10: 0..5, on to 9, 50..56, 250 -> 6 + 4 + 7 + 1 frames, 3 seeks
    assert cost == {"frames": 18, "seeks": 3, "targets": 5, "keyframes": 30, "pixels": 64 * 48}
    res = vdecode.read_file(path, targets)
    assert [read_index(f) for f in res.frames] == targets
    assert (res.stats["decoded"], res.stats["seeks"]) == (18, 3)


def test_a_worker_left_busy_is_not_reused(matrix):
    """``submit`` then leaving the lease (a cancelled request): that worker is stopped, the next is fresh."""
    pool = DecoderPool(max_workers=1)
    try:
        with pool.lease() as worker:
            worker.submit(time.sleep, (0.2,), {})
            with pytest.raises(RuntimeError):
                worker.submit(time.sleep, (0.0,), {})  # one call at a time
            busy = worker.proc.pid
        assert busy not in pool.worker_pids()
        with pool.lease() as worker:
            worker.submit(vdecode.read_file, (matrix["h264.mp4"].path, [7]), {})
            assert read_index(worker.collect(30).frames[0]) == 7  # its own answer, not the sleep's
            assert worker.proc.pid != busy
            with pytest.raises(RuntimeError):
                worker.collect(1)  # nothing running
    finally:
        pool.close()


def test_a_10_hour_clip_is_read_in_seconds(tmp_path):
    """36 000 frames at 1 fps: the index scan and a few seeks, never the 10 hours."""
    path = hours_film(tmp_path / "ten_hours.mp4", 10)
    info = vdecode.probe_file(path)
    assert info.num_frames == 36000 and info.duration == pytest.approx(36000, abs=1.5) and info.fps == 1
    idx = [0, 7, 18000, 35999]
    res = vdecode.read_file(path, idx)
    assert [int(f[0, 0, 0]) for f in res.frames] == pytest.approx([40 * (i % 6) for i in idx], abs=3)
    assert res.stats["decoded"] <= 8
    np.testing.assert_allclose(res.timestamps, idx)


def test_a_clip_over_the_duration_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    """13 hours: refused before the packet scan (which grows with the duration) with the limit in words."""
    path = hours_film(tmp_path / "thirteen_hours.mp4", 13, distinct=2)

    def no_scan(*args, **kwargs):
        raise AssertionError("the packet scan ran")

    monkeypatch.setattr(vdecode, "_scan_packets", no_scan)
    vdecode._cache.clear()
    with pytest.raises(VideoError) as err:
        vdecode.probe_file(path)
    assert err.value.code == "too_long"
    assert str(err.value) == "The clip is 13 h 00 min long; the longest accepted is 12 h 00 min. Please trim it."


def test_a_stream_without_timestamps_is_read_on_too(tmp_path):
    """A raw H.264 stream has no timestamp index (frames are numbered as decoded): a kept-open read still
    decodes each frame once across calls, as ``read_cost`` counts, and a step back starts over."""
    path = tmp_path / "raw.h264"
    write_clip(path, 60, fmt="h264", options={"g": "10", "bf": "2"})
    assert vdecode.read_cost(path, [1, 5, 7, 20, 21, 50])["frames"] == 51
    batches = [[1, 5], [7, 20], [21, 50]]
    kept = [vdecode.read_file(path, b, keep_open=True) for b in batches]
    assert [[read_index(f) for f in k.frames] for k in kept] == batches
    assert sum(k.stats["decoded"] for k in kept) == 51
    back = vdecode.read_file(path, [3, 59])
    assert [read_index(f) for f in back.frames] == [3, 59] and back.stats["decoded"] == 60
