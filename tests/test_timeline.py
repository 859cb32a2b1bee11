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

import tada
from tada.errors import SettingsError
from tada.motion import generate_clip
from tada.motion.media import write_mp4
from tada.timeline import compute_timeline, plan_windows
from tada.video import probe

REPO = Path(__file__).resolve().parents[1]
BUNDLED = ["tadaconvnextv2_motion.tiny_8f", "tadaformer_motion.tiny_8f", "ila_motion.tiny_8f"]


def motion_film(path: Path, segments: list[tuple[str, int]], fps: int = 8) -> Path:
    """One generated motion episode (8 frames) per second, ``seconds`` of each label in turn."""
    frames, seed = [], 0
    for label, seconds in segments:
        for _ in range(seconds):
            clip = generate_clip(seed, label, num_frames=fps, size=32, distractors=False, noise=False)
            frames.append(clip.frames)
            seed += 1
    return write_mp4(np.concatenate(frames), path, fps=fps, scale=2)


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
    assert len(tl.windows) == 40 and tl.window_s == pytest.approx(1.0) and tl.stride_s == pytest.approx(1.0)
    top = [tl.labels[int(np.argmax(w.probs))] for w in tl.windows]
    centres = tl.centres_s
    left, right = centres < 19.0, centres > 21.0  # one window either side of the change is not judged
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
    assert len(windows) == 10 and stride == pytest.approx(39 / 9)  # automatic: bounded work
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


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="2")
    return subprocess.run(
        [sys.executable, "-m", "tada", "predict", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_timeline_json_and_csv(left_then_right):
    r = _cli(str(left_then_right), "--timeline", "--stride", "5", "--json", "--top-k", "2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["windows"]) == 8 and len(out["windows"][0]["top"]) == 2
    assert out["windows"][0]["top"][0]["label"] == "moving left"
    assert out["windows"][-1]["top"][0]["label"] == "moving right"
    assert "@ 0x" not in r.stderr  # FFmpeg's own log lines never reach the terminal
    r = _cli(str(left_then_right), "--timeline", "--stride", "0.01")
    assert r.returncode == 1 and r.stderr.startswith("error: A stride of 0.01 s needs")
    assert "Traceback" not in r.stderr


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
