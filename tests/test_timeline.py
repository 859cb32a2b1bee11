"""Long videos: predictions over sliding windows of the whole clip (``tada.timeline``), CLI and exports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from video_matrix import bad_inputs_fixture, hours_film  # noqa: F401  (pytest fixtures)

import tada
from tada.errors import SettingsError
from tada.motion import generate_clip
from tada.motion.media import write_mp4
from tada.timeline import compute_timeline, plan_windows
from tada.video import VideoTransform, load_clip, probe, read_frames

REPO = Path(__file__).resolve().parents[1]
BUNDLED = ["tadaconvnextv2_motion.tiny_8f", "tadaformer_motion.tiny_8f", "ila_motion.tiny_8f"]


def motion_film(path: Path, segments: list[tuple[str, int]], fps: int = 8, scale: int = 2) -> Path:
    """One generated motion episode (16 frames) every 2 s, ``seconds`` of each label in turn."""
    frames, seed = [], 0
    for label, seconds in segments:
        for _ in range(seconds // 2):
            clip = generate_clip(seed, label, num_frames=2 * fps, size=32, distractors=False, noise=False)
            frames.append(clip.frames)
            seed += 1
    return write_mp4(np.concatenate(frames), path, fps=fps, scale=scale)


def flat_film(path: Path, seconds: int, fps: int, size: tuple[int, int] = (64, 48)) -> Path:
    """A long, cheap clip: a slowly changing flat picture (x264 ultrafast, one keyframe a minute)."""
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(int(60 * fps))}
        img = np.zeros((h, w, 3), np.uint8)
        for i in range(int(seconds * fps)):
            img[:] = (i * 7) % 256, (i * 3) % 256, 128
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def left_then_right(tmp_path_factory) -> Path:
    return motion_film(tmp_path_factory.mktemp("tl") / "left_right.mp4", [("moving left", 20), ("moving right", 20)])


@pytest.fixture(scope="module")
def models() -> dict:
    return {name: tada.create_model(name, pretrained=True).eval() for name in BUNDLED}


@pytest.mark.parametrize("name", BUNDLED)
def test_top_class_switches_where_the_motion_does(left_then_right, models, name):
    """The clip moves left for 0-20 s, then right: the timeline's top class follows within one window."""
    tl = compute_timeline(left_then_right, models[name])
    assert len(tl.windows) == 20 and tl.window_s == pytest.approx(2.0) and tl.stride_s == pytest.approx(2.0)
    top = [tl.labels[int(np.argmax(w.probs))] for w in tl.windows]
    centres = tl.centres_s
    left, right = centres < 20.0, centres > 20.0  # the 2-s windows line up with the 2-s episodes
    assert np.mean([t == "moving left" for t, m in zip(top, left) if m]) >= 0.8, top
    assert np.mean([t == "moving right" for t, m in zip(top, right) if m]) >= 0.8, top
    # Every window's frames lie inside it, with the model's own frame count.
    for w in tl.windows:
        assert len(w.frames) == tl.num_frames
        assert w.start_s * 8 - 1e-6 <= w.frames.min() and w.frames.max() < w.end_s * 8 + 1e-6
    # TAdaConv models report where temporal adaptation is strongest; ILA has no calibration factors.
    has_cal = [w.calibration_variation is not None for w in tl.windows]
    assert all(has_cal) if name.startswith("tada") else not any(has_cal)
    if name.startswith("tada"):
        assert all(w.calibration_variation > 0 for w in tl.windows)


def test_the_2d_baseline_gives_a_timeline_too(left_then_right):
    model = tada.create_model("frame2d_motion.tiny_8f", pretrained=True).eval()
    tl = compute_timeline(left_then_right, model, stride_s=4)
    assert len(tl.windows) == 10 and np.allclose(tl.probs.sum(axis=1), 1.0, atol=1e-5)


def test_exports_parse_and_match_the_data(left_then_right, models):
    tl = compute_timeline(left_then_right, models["tadaconvnextv2_motion.tiny_8f"], stride_s=2.5)
    data = json.loads(json.dumps(tl.to_dict(top_k=3)))
    assert data["model"] == "tadaconvnextv2_motion.tiny_8f" and data["sampling"]["stride_s"] == 2.5
    rows = list(csv.DictReader(io.StringIO(tl.to_csv(top_k=3))))
    assert len(rows) == len(data["windows"]) == len(tl.windows) == 16
    probs = tl.probs
    for row, item, w, p in zip(rows, data["windows"], tl.windows, probs):
        assert float(row["start_s"]) == item["start_s"] == pytest.approx(w.start_s, abs=1e-4)
        assert row["frames"].split() == [str(i) for i in item["frames"]]
        best = int(np.argmax(p))
        assert row["top1_label"] == item["top"][0]["label"] == tl.labels[best]
        assert float(row["top1_score"]) == pytest.approx(float(p[best]), abs=1e-6)
        assert float(row["calibration_variation"]) == pytest.approx(w.calibration_variation, abs=1e-6)


def test_stride_bounds(left_then_right):
    info = probe(left_then_right)
    cfg = tada.get_pretrained_cfg("tadaconvnextv2_motion.tiny_8f")
    windows, window_s, stride = plan_windows(info, cfg, max_windows=10)
    assert len(windows) == 10 and stride == pytest.approx((40 - 2) / 9)  # automatic: bounded work (2-s windows)
    with pytest.raises(SettingsError) as err:
        plan_windows(info, cfg, stride_s=0.1, max_windows=120)
    assert "at most 120" in str(err.value) and "stride of at least" in str(err.value)
    short, w, _ = plan_windows(info, cfg, window_s=100.0)  # longer than the clip: one window over all of it
    assert len(short) == 1 and w == pytest.approx(40.0)


@pytest.mark.slow
def test_a_20_minute_and_a_2_hour_clip_give_a_full_timeline(tmp_path, models):
    """Cost is the frames decoded, not the duration: both clips get their 120 windows."""
    model = models["tadaconvnextv2_motion.tiny_8f"]
    for seconds, fps in ((20 * 60, 5), (2 * 3600 + 60, 1)):
        path = flat_film(tmp_path / f"film_{seconds}.mp4", seconds, fps)
        tl = compute_timeline(path, model)
        assert len(tl.windows) == 120
        assert tl.windows[-1].end_s == pytest.approx(tl.info.duration, abs=1.5)
        assert tl.windows[0].start_s == 0.0 and np.all(np.diff([w.start_s for w in tl.windows]) > 0)
        os.remove(path)


class InputRecorder:
    """Records what a model is fed (a forward pre-hook), batch by batch."""

    def __init__(self, model) -> None:
        self.inputs: list = []
        self.handle = model.register_forward_pre_hook(lambda module, args: self.inputs.append(args[0].clone()))

    def __enter__(self) -> InputRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def test_the_fast_path_feeds_the_model_the_frames_of_a_plain_read(tmp_path, models):
    """Gathered pixels, one open decoder, batched calls: the model inputs are bit for bit those of
    ``read_frames`` + ``VideoTransform`` for the same indices, and ``load_clip``'s for a whole-clip window."""
    path = motion_film(tmp_path / "big.mp4", [("moving left", 6), ("moving up", 6)], scale=8)  # 256x256 -> 64
    model = models["tadaconvnextv2_motion.tiny_8f"]
    transform = VideoTransform(model.pretrained_cfg)
    with InputRecorder(model) as rec:
        tl = compute_timeline(path, model, stride_s=2.5, batch_size=2)
    fed = np.concatenate([x.numpy() for x in rec.inputs])
    assert len(tl.windows) == len(fed) == 5 and tl.stats["decoder_calls"] == 3  # 2-s windows over 12 s
    for w, x in zip(tl.windows, fed):
        expected = transform.crops(read_frames(path, w.frames))[0].numpy()
        np.testing.assert_array_equal(x, expected)
    assert tl.stats["frames_converted"] == len(np.unique(np.concatenate([w.frames for w in tl.windows])))
    assert tl.stats["distinct_frames"] <= tl.stats["frames_decoded"] <= tl.stats["planned_frames"] + 8
    for name in ("tadaconvnextv2_motion.tiny_8f", "ila_motion.tiny_8f"):
        with InputRecorder(models[name]) as rec:
            whole = compute_timeline(path, models[name], window_s=100.0)
        clip = load_clip(path, models[name].pretrained_cfg)
        assert len(whole.windows) == 1 and whole.windows[0].frames.tolist() == clip.frame_indices
        np.testing.assert_array_equal(rec.inputs[0].numpy(), clip.tensor.numpy())


def test_progress_per_window_and_a_cancel_mid_way(left_then_right, models):
    """``progress`` is called once per window; raising from it stops the work (with a decoder call in
    flight: that worker is dropped) and the next timeline is whole."""
    model = models["tadaconvnextv2_motion.tiny_8f"]
    seen: list[tuple[float, str]] = []
    tl = compute_timeline(left_then_right, model, stride_s=2, progress=lambda f, t: seen.append((f, t)))
    assert [t for _, t in seen[:-1]] == [f"window {i + 1} of 20 ({2 * i} s)" for i in range(20)]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1] == (1.0, "20 windows")

    class Stop(Exception):
        pass

    def stop_at_window_11(fraction: float, text: str) -> None:
        if text.startswith("window 11 "):
            raise Stop

    with pytest.raises(Stop):
        compute_timeline(left_then_right, model, stride_s=2, progress=stop_at_window_11)
    again = compute_timeline(left_then_right, model, stride_s=2)
    np.testing.assert_array_equal(again.probs, tl.probs)


def test_a_cut_off_file_and_a_damaged_one_give_a_timeline_with_a_warning(bad_inputs, models):
    model = models["tadaconvnextv2_motion.tiny_8f"]
    cut = compute_timeline(bad_inputs["truncated_salvageable"], model)  # index first, cut in its media data
    assert cut.windows and cut.info.truncated
    assert any("cut off" in w and "frames could be recovered" in w for w in cut.warnings)
    assert cut.windows[-1].frames.max() < cut.info.num_frames < 120
    damaged = compute_timeline(bad_inputs["corrupted"], model)  # random bytes in the second half
    assert len(damaged.windows) == 1 and np.allclose(damaged.probs.sum(axis=1), 1.0, atol=1e-5)
    assert any("damaged" in w for w in damaged.warnings)


def test_a_10_hour_clip_gives_a_full_timeline(tmp_path, models):
    """36 000 frames at 1 fps: 120 windows from the keyframe index and 120 short reads."""
    path = hours_film(tmp_path / "ten_hours.mp4", 10)
    tl = compute_timeline(path, models["tadaconvnextv2_motion.tiny_8f"])
    assert len(tl.windows) == 120 and tl.info.duration == pytest.approx(36000, abs=1.5)
    assert tl.windows[-1].end_s == pytest.approx(36000, abs=1.5) and tl.stride_s == pytest.approx((36000 - 2) / 119)
    assert tl.stats["frames_decoded"] <= 2 * 120  # every frame is a keyframe: no decoding between windows


def test_a_request_over_the_decoding_budget_says_what_fits(tmp_path, models):
    """Keyframes far apart make windows costly; the message gives the cost, the limit and what to change."""
    path = tmp_path / "sparse_keys.mp4"
    with av.open(str(path), "w") as container:  # 10 min at 2 fps, a keyframe every 2 min
        stream = container.add_stream("libx264", rate=2)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "240", "x264-params": "scenecut=0:log-level=error"}
        for i in range(1200):
            img = np.full((48, 64, 3), (i * 5) % 256, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    model = models["tadaconvnextv2_motion.tiny_8f"]
    # 64x48 frames count 1/16 of a 720p frame: a budget of 20 is 320 frames of this clip.
    with pytest.raises(SettingsError) as err:
        compute_timeline(path, model, max_decoded_frames=20)
    msg = str(err.value)
    assert msg.startswith("These 120 windows would need decoding about 1,")
    assert "keyframe only every 120 s" in msg and "at most 320 frames of 64x48 are decoded per request" in msg
    fit = int(msg.split("Ask for at most ")[1].split(" windows")[0])
    stride = float(msg.split("a stride of at least ")[1].split(" s)")[0])
    assert 2 <= fit < 120
    tl = compute_timeline(path, model, stride_s=stride, max_decoded_frames=20)  # the advice works
    assert len(tl.windows) == fit and tl.stats["frames_decoded"] <= 320 + 8
    with pytest.raises(SettingsError) as err:
        compute_timeline(path, model, max_decoded_frames=1)  # 16 frames: not even 2 windows fit
    assert "Ask for" not in str(err.value) and "Re-encode the clip with a keyframe every few seconds" in str(err.value)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="2")
    return subprocess.run(
        [sys.executable, "-m", "tada", "predict", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_timeline_json_and_csv(left_then_right):
    r = _cli(str(left_then_right), "--timeline", "--stride", "4", "--json", "--top-k", "2")  # on the episodes
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["windows"]) == 10 and len(out["windows"][0]["top"]) == 2
    assert out["windows"][0]["top"][0]["label"] == "moving left"
    assert out["windows"][-1]["top"][0]["label"] == "moving right"
    assert "@ 0x" not in r.stderr  # FFmpeg's own log lines never reach the terminal
    r = _cli(str(left_then_right), "--timeline", "--stride", "0.01")
    assert r.returncode == 1 and r.stderr.startswith("error: A stride of 0.01 s needs")
    assert "Traceback" not in r.stderr


def test_cli_timeline_of_a_damaged_file_warns_without_ffmpeg_lines(bad_inputs):
    """The decoder logs errors on the damaged frames (to the worker's stderr, routed to the Python logger):
    the CLI's stderr carries our warnings only."""
    for name, said in (("corrupted", "damaged"), ("truncated_salvageable", "cut off")):
        r = _cli(str(bad_inputs[name]), "--timeline", "--csv")
        assert r.returncode == 0, r.stderr
        assert len(list(csv.DictReader(io.StringIO(r.stdout)))) >= 1
        lines = r.stderr.splitlines()
        assert lines and all(line.startswith("warning: ") for line in lines), r.stderr
        assert any(said in line for line in lines)


def test_timeline_figure_matches_the_data(left_then_right, models):
    from visualizations.figures.timeline import timeline_figure

    tl = compute_timeline(left_then_right, models["tadaconvnextv2_motion.tiny_8f"], stride_s=2)
    fig = timeline_figure(tl, top_k=3, current_s=21.0)
    lines = [t for t in fig.data if t.type == "scatter" and t.name != "calibration variation"]
    assert len(lines) == 3 and {t.name for t in lines} >= {"moving left", "moving right"}
    for t in lines:
        c = tl.labels.index(t.name)
        assert np.allclose(t.y, tl.probs[:, c]) and np.allclose(t.x, tl.centres_s)
        assert [int(row[0]) for row in t.customdata] == [w.index for w in tl.windows]  # a click names its window
    heat = next(t for t in fig.data if t.type == "heatmap")
    assert (heat.zmin, heat.zmax) == (0.0, 1.0) and np.asarray(heat.z).shape == (3, len(tl.windows))
    cal = next(t for t in fig.data if t.name == "calibration variation")
    assert np.allclose(cal.y, [w.calibration_variation for w in tl.windows])
    assert any(s.type == "line" and s.x0 == 21.0 for s in fig.layout.shapes)  # the playback time
    assert fig.layout.width is None  # fits its container
