"""``load_clip`` end to end: the protocol's frames, the model tensor, display frames, views; example clips."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from video_matrix import bad_inputs_fixture, matrix_fixture, read_index, upright  # noqa: F401  (pytest fixtures)

from tada.video import (
    VideoError,
    VideoTransform,
    average_view_scores,
    load_clip,
    probe,
    read_frames,
    sample_clips,
    sample_indices,
)
from tada.video.examples import EXAMPLES, EXAMPLES_DIR, example_paths

K400 = dict(mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), pixel_range=1.0, input_layout="BCTHW")
ILA = dict(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), pixel_range=255.0, input_layout="BTCHW")


def tada_interval(**kw):
    base = dict(num_frames=8, sampling="interval", sampling_rate=2, target_fps=30.0, test_scale=32, crop_size=32,
                num_clips=4, num_crops=3, **K400)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def tadaformer_segment(**kw):
    base = dict(num_frames=8, sampling="segment", sampling_rate=None, target_fps=None, test_scale=32, crop_size=32,
                num_clips=4, num_crops=3, **K400)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def ila_uniform(**kw):
    base = dict(num_frames=8, sampling="uniform", sampling_rate=None, target_fps=None, test_scale=36, crop_size=32,
                num_clips=4, num_crops=3, **ILA)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def test_single_view_interval_on_60fps(matrix):
    spec = matrix["h264_60fps.mp4"]  # 48 frames at 60 fps: the 30-fps rate covers twice the frames
    cfg = tada_interval()
    clip = load_clip(spec.path, cfg)
    expected = sample_indices(48, 60.0, cfg)
    assert clip.indices.shape == (1, 8) and clip.indices[0].tolist() == expected.tolist()
    assert [read_index(f) for f in clip.display_frames] == expected.tolist()  # what the model saw
    np.testing.assert_allclose(clip.timestamps[0], expected / 60.0, atol=1e-6)
    assert clip.tensor.shape == (1, 3, 8, 32, 32) and clip.tensor.dtype == torch.float32
    assert clip.views == [(0, "centre")] and clip.input_layout == "BCTHW"
    assert clip.info.fps == 60.0 and clip.info.num_frames == 48 and clip.info.resolution == (64, 48)
    # The tensor is the transform of exactly those frames.
    frames = read_frames(spec.path, expected)
    torch.testing.assert_close(clip.tensor, VideoTransform(cfg)(frames))


def test_official_views_segment(matrix):
    spec = matrix["vp9.webm"]
    cfg = tadaformer_segment()
    clip = load_clip(spec.path, cfg, views="official")
    expected = sample_clips(30, 30.0, cfg, num_clips=4)
    assert clip.indices.tolist() == expected.tolist()
    assert clip.tensor.shape == (12, 3, 8, 32, 32) and clip.num_views == 12
    assert clip.views[:3] == [(0, "start"), (0, "centre"), (0, "end")]
    assert [read_index(f) for f in clip.display_frames] == expected.ravel().tolist()
    probs = clip.average(torch.randn(12, 5))
    assert probs.shape == (5,) and torch.isclose(probs.sum(), torch.tensor(1.0))


def test_ila_layout_and_protocol(matrix):
    spec = matrix["rot90.mp4"]  # rotated source: display frames and tensor are upright (48 x 64)
    cfg = ila_uniform()
    clip = load_clip(spec.path, cfg)
    assert clip.indices[0].tolist() == sample_indices(24, 30.0, cfg).tolist()
    assert clip.tensor.shape == (1, 8, 3, 32, 32) and clip.input_layout == "BTCHW"
    assert clip.display_frames[0].shape == (64, 48, 3)
    assert [read_index(upright(f, 90)) for f in clip.display_frames] == clip.indices[0].tolist()
    official = load_clip(spec.path, cfg, views="official")
    assert official.tensor.shape == (12, 8, 3, 32, 32)
    assert official.views[:3] == [(0, "start"), (0, "end"), (0, "centre")]


def test_interval_window_from_a_start_time(matrix):
    """A start in seconds moves the one interval window (the rest of the protocol as official)."""
    spec = matrix["h264_60fps.mp4"]  # 48 frames at 60 fps
    cfg = tada_interval(num_frames=4, sampling_rate=2)  # window 4 x 2 frames at 30 fps = 16 at 60 fps
    clip = load_clip(spec.path, cfg, start=0.25)
    expected = sample_indices(48, 60.0, cfg, start_time=0.25)
    assert expected.tolist() == [15, 20, 25, 30]
    assert clip.indices[0].tolist() == expected.tolist()
    assert [read_index(f) for f in clip.display_frames] == expected.tolist()
    np.testing.assert_allclose(clip.timestamps[0], expected / 60.0, atol=1e-6)
    torch.testing.assert_close(clip.tensor, VideoTransform(cfg)(read_frames(spec.path, expected)))
    with pytest.raises(ValueError, match="start time"):
        load_clip(spec.path, tadaformer_segment(), start=0.25)


def test_one_view_of_a_multi_view_clip(matrix):
    """``Clip.view`` is one row with its own clip's frames; ``main_view`` is clip 0, centre crop."""
    spec = matrix["vp9.webm"]
    cfg = tadaformer_segment()
    clip = load_clip(spec.path, cfg, views="official")
    assert clip.main_view_index == 1  # rows: (0, start), (0, centre), (0, end), (1, start) ...
    main = clip.main_view()
    assert main.num_views == 1 and main.views == [(0, "centre")] and main.num_frames == 8
    torch.testing.assert_close(main.tensor, clip.tensor[1:2])
    assert main.frame_indices == clip.indices[0].tolist()
    assert [read_index(f) for f in main.display_frames] == main.frame_indices
    later = clip.view(5)  # clip 1, end crop
    assert later.views == [(0, "end")] and later.frame_indices == clip.indices[1].tolist()
    assert later.frame_timestamps == pytest.approx(clip.timestamps[1].tolist())
    assert [read_index(f) for f in later.display_frames] == clip.indices[1].tolist()
    assert later.info is clip.info and later.input_layout == "BCTHW"
    ila = load_clip(spec.path, ila_uniform())
    assert ila.time_dim == 1 and ila.num_frames == 8 and ila.view(0).tensor.shape == (1, 8, 3, 32, 32)


def test_short_clips_repeat_frames(matrix):
    for name in ["one_frame.mp4", "three_frames.mp4"]:
        clip = load_clip(matrix[name].path, tada_interval(num_frames=8))
        n = matrix[name].num_frames
        assert clip.indices.max() == n - 1 and clip.tensor.shape == (1, 3, 8, 32, 32)
        assert [read_index(f) for f in clip.display_frames] == clip.indices[0].tolist()


def test_model_object_and_display_size(matrix):
    model = SimpleNamespace(pretrained_cfg=tadaformer_segment(num_frames=4))
    clip = load_clip(matrix["odd_65x47.mkv"].path, model, display_size=32)
    assert clip.tensor.shape == (1, 3, 4, 32, 32)
    assert all(min(f.shape[:2]) == 32 and f.dtype == np.uint8 for f in clip.display_frames)


def test_with_the_registry_config(matrix):
    """The real ``PretrainedCfg`` of the registry is accepted as is."""
    registry = pytest.importorskip("tada._pretrained")
    cfg = registry.PretrainedCfg(architecture="demo", num_frames=4, sampling="interval", sampling_rate=4,
                                 target_fps=30.0, test_scale=40, crop_size=40)  # fmt: skip
    clip = load_clip(matrix["h264.mp4"].path, cfg)
    assert clip.tensor.shape == (1, 3, 4, 40, 40)


def test_average_view_scores():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    expected = (torch.softmax(logits[0], 0) + torch.softmax(logits[1], 0)) / 2
    torch.testing.assert_close(average_view_scores(logits), expected)
    torch.testing.assert_close(average_view_scores(logits[0].numpy()), torch.softmax(logits[0], 0))
    with pytest.raises(ValueError):
        average_view_scores(torch.zeros(2, 3, 4))


def test_load_clip_from_threads(matrix):
    names = ["h264.mp4", "hevc.mp4", "av1.webm", "mjpeg.avi", "h264_10bit.mp4", "mediarecorder_vp8.webm"]
    cfg = tadaformer_segment()
    out: dict[str, object] = {}

    def work(name: str) -> None:
        try:
            clip = load_clip(matrix[name].path, cfg)
            out[name] = [read_index(f) for f in clip.display_frames] == clip.indices[0].tolist()
        except BaseException as exc:
            out[name] = exc

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert out == {n: True for n in names}


def test_bad_input_through_load_clip(bad_inputs):
    with pytest.raises(VideoError) as err:
        load_clip(bad_inputs["audio"], tada_interval())
    assert err.value.code == "no_video_stream"
    with pytest.raises(VideoError) as err:
        load_clip(bad_inputs["zero"], tada_interval())
    assert err.value.code == "empty"


def test_bundled_examples():
    paths = example_paths()
    assert [p.name for p in paths] == [e.filename for e in EXAMPLES]
    assert sum(p.stat().st_size for p in paths) < 3e6
    licences = (EXAMPLES_DIR / "LICENSES.md").read_text()
    assert "CC-BY 3.0" in licences and "Blender Foundation" in licences
    for e in EXAMPLES:
        assert e.filename in licences and e.license
    bunny = probe(EXAMPLES_DIR / "big_buck_bunny.mp4")
    assert (bunny.width, bunny.height, bunny.num_frames, bunny.fps) == (1280, 720, 132, 25.0)
    clip = load_clip(EXAMPLES_DIR / "big_buck_bunny.mp4", tada_interval(num_frames=4, test_scale=64, crop_size=64))
    assert clip.display_frames[0].shape == (256, 455, 3)  # short side 256 for display
    for p in paths[1:]:  # the pan/zoom clips move: first and last frames differ
        info = probe(p)
        first, last = read_frames(p, [0, info.num_frames - 1]).astype(int)
        assert info.duration == pytest.approx(4.0) and np.abs(first - last).mean() > 10


def test_examples_dir_is_in_the_repo():
    assert EXAMPLES_DIR == Path(__file__).resolve().parents[1] / "assets" / "examples"
