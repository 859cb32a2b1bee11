"""``python -m tada batch`` end to end on a generated, labelled motion dataset (real mp4 files).

The dataset is clips 0..59 of the held-out stream that ``python -m tada evaluate`` scores
(:data:`tada.motion.evaluate.EVAL_SEED`), written by the project's own generator and mp4 writer,
plus a damaged mp4 and a text file named ``.mp4``.  Each clip's 8 frames are written twice at 8 fps
(16 frames), so the official segment sampling of 8 frames picks exactly the 8 rendered ones (frames
1, 3, ..., 15): the only difference from ``evaluate``, which feeds the generated frames as tensors,
is the H.264 / yuv420p compression of the files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import tada
from tada.batch import BatchOptions, ListError, run_batch
from tada.motion import CLASSES, clip_label, clip_seed, generate_clip
from tada.motion.evaluate import EVAL_SEED, evaluate_model
from tada.motion.media import write_mp4
from tada.video import load_clip

REPO = Path(__file__).resolve().parents[1]
MODEL = "tadaconvnextv2_motion.tiny_8f"  # 64 px input; the others take 32 px
BUNDLED = ("tadaconvnextv2_motion.tiny_8f", "tadaformer_motion.tiny_8f", "ila_motion.tiny_8f", "frame2d_motion.tiny_8f")
NUM_CLIPS = 60
TIMING = ("decode_s", "model_s")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _untimed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``list.txt``: 60 labelled clips (labels as class names), then a damaged mp4 and a non-video."""
    root = tmp_path_factory.mktemp("motion_set")
    (root / "clips").mkdir()
    lines = []
    for i in range(NUM_CLIPS):
        clip = generate_clip(clip_seed(EVAL_SEED, i), clip_label(EVAL_SEED, i), num_frames=8, size=64)
        write_mp4(clip.frames.repeat(2, axis=0), root / "clips" / f"{i:03d}.mp4", fps=8, scale=1)
        lines.append(f"clips/{i:03d}.mp4 {clip.label_name}")
    good = (root / "clips" / "000.mp4").read_bytes()
    (root / "clips" / "damaged.mp4").write_bytes(good[: len(good) // 3])  # cut off: no usable stream
    (root / "clips" / "notes.mp4").write_text("not a video at all\n")
    lines += ["clips/damaged.mp4 moving left", "clips/notes.mp4 3"]
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root / "list.txt"


@pytest.fixture(scope="module")
def single(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One in-process run over the whole list (the reference the other runs are compared with)."""
    out = tmp_path_factory.mktemp("single") / "results.jsonl"
    summary = run_batch(
        BatchOptions(list=str(dataset), model=MODEL, out=str(out), summary=str(out.with_name("summary.json")),
                     batch_size=8, workers=1, quiet=True)
    )  # fmt: skip
    return out, summary


def test_rows_in_list_order_with_errors_for_bad_files(single: tuple[Path, dict[str, Any]], dataset: Path) -> None:
    out, summary = single
    rows = _rows(out)
    assert [r["index"] for r in rows] == list(range(NUM_CLIPS + 2))
    assert [Path(r["path"]).name for r in rows[:2]] == ["000.mp4", "001.mp4"]
    for r in rows[:NUM_CLIPS]:
        assert r["error"] is None and r["views"] == [[0, "centre"]] and r["frames"] == [list(range(1, 16, 2))]
        assert len(r["top"]) == 5 and r["top"][0]["prob"] >= r["top"][1]["prob"] and r["model_s"] > 0
        assert CLASSES[r["label_index"]] == r["label"]
    damaged, notes = rows[NUM_CLIPS:]
    assert damaged["top"] is None and damaged["error_code"] in ("no_video_stream", "truncated", "not_video")
    assert notes["error"] == "This is a text file, not a video. Please choose a video clip."
    assert notes["label_index"] == 3 and notes["error_code"] == "not_video"
    assert summary["videos"] == NUM_CLIPS + 2 and summary["scored"] == NUM_CLIPS and summary["errors"] == 2
    assert sum(summary["error_codes"].values()) == 2
    assert not Path(f"{out}.parts").exists()  # merged, parts removed


def test_summary_figures_follow_from_the_rows(single: tuple[Path, dict[str, Any]]) -> None:
    out, summary = single
    rows = [r for r in _rows(out) if r["error"] is None]
    truth = np.array([r["label_index"] for r in rows])
    pred = np.array([r["top"][0]["index"] for r in rows])
    assert summary["top1"] == pytest.approx(100 * np.mean(truth == pred), abs=1e-3)
    assert summary["top5"] == pytest.approx(100 * np.mean([r["label_rank"] <= 5 for r in rows]), abs=1e-3)
    per_class = {CLASSES[c]: 100 * np.mean(pred[truth == c] == c) for c in np.unique(truth)}
    assert summary["per_class_accuracy"] == pytest.approx(per_class, abs=1e-3)
    assert summary["mean_class_accuracy"] == pytest.approx(np.mean(list(per_class.values())), abs=1e-3)
    cm = np.array(summary["confusion_matrix"])
    assert cm.shape == (11, 11) and cm.sum() == len(rows) and np.trace(cm) == (truth == pred).sum()
    assert summary["reported"] == {"top1": tada.get_pretrained_cfg(MODEL).reported_top1, "views": "1x1",
                                   "same_protocol": True}  # fmt: skip
    saved = json.loads(out.with_name("summary.json").read_text())
    assert saved["top1"] == summary["top1"] and "softmax per view" in saved["aggregation"]
    html = Path(saved["confusion_html"])
    assert html.is_file() and "moving left" in html.read_text() and (html.parent / "plotly.min.js").is_file()
    assert summary["clips_per_s"] > 0


def test_agrees_with_tada_evaluate_on_the_same_clips(single: tuple[Path, dict[str, Any]]) -> None:
    """Same clips, same model: ``evaluate`` feeds the generated frames, batch decodes the mp4 files."""
    out, summary = single
    model = tada.create_model(MODEL, pretrained=True)
    reference = evaluate_model(model, num_clips=NUM_CLIPS, points=False)
    assert reference["seed"] == EVAL_SEED
    rows = _rows(out)[:NUM_CLIPS]
    from tada.motion import generate_batch
    from tada.motion.dataset import to_tensor

    frames = generate_batch(NUM_CLIPS, EVAL_SEED, num_frames=8, size=64, masks=False).frames
    with torch.no_grad():
        direct = model(to_tensor(frames)).argmax(1).tolist()
    agree = sum(r["top"][0]["index"] == p for r, p in zip(rows, direct))
    # H.264 compression moves probabilities by a few hundredths; it may flip a borderline clip or two.
    assert agree >= NUM_CLIPS - 2, f"{agree}/{NUM_CLIPS} predictions agree"
    assert abs(summary["top1"] - reference["top1"]) <= 100 * 2 / NUM_CLIPS


def test_torchrun_two_ranks_gives_the_same_rows_and_summary(
    single: tuple[Path, dict[str, Any]], dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dist.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tada", "batch", str(dataset), "--model", MODEL, "--out", str(out), "--workers", "1",
           "--summary", str(tmp_path / "summary.json"), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # only rank 0 prints; --json: no progress bar
    assert summary["world_size"] == 2 and summary["backend"] == "gloo"
    assert "clip/s" not in proc.stderr
    assert _untimed(_rows(out)) == _untimed(_rows(single[0]))
    keys = ("videos", "scored", "errors", "error_codes", "top1", "top5", "mean_class_accuracy", "per_class_accuracy")
    assert {k: summary[k] for k in keys} == {k: single[1][k] for k in keys}
    assert json.loads((tmp_path / "summary.json").read_text())["confusion_matrix"] == single[1]["confusion_matrix"]


def test_killed_run_resumes_to_the_same_file(
    single: tuple[Path, dict[str, Any]], dataset: Path, tmp_path: Path
) -> None:
    """SIGKILL a real run after a few rows (plus a half-written line), then ``--resume`` it."""
    n = 24
    out = tmp_path / "resumed.jsonl"
    part = Path(f"{out}.parts") / "rank0.jsonl"
    base = [sys.executable, "-m", "tada", "batch", str(dataset), "--model", MODEL, "--out", str(out), "--json",
            "--limit", str(n)]  # fmt: skip
    proc = subprocess.Popen([*base, "--batch-size", "1", "--workers", "0"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if part.is_file() and part.read_bytes().count(b"\n") >= 5:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait(60) == -signal.SIGKILL, "the run ended before it could be killed"
    done = part.read_bytes().count(b"\n")
    assert 5 <= done < n and not out.exists()
    with part.open("ab") as f:  # what a crash in the middle of a write would leave
        f.write(b'{"index": 20, "path": "cut o')
    resumed = subprocess.run([*base, "--resume", "--batch-size", "4", "--workers", "1"], env=_env(),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["clips_run"] == n - done  # nothing done twice
    rows = _rows(out)
    assert _untimed(rows) == _untimed(_rows(single[0])[:n])
    # resuming a finished run runs nothing and keeps the file; other settings are refused
    opts = BatchOptions(list=str(dataset), model=MODEL, out=str(out), limit=n, resume=True, workers=0, quiet=True)
    assert run_batch(opts)["clips_run"] == 0 and _rows(out) == rows
    with pytest.raises(ListError, match="other settings"):
        run_batch(BatchOptions(**{**opts.__dict__, "model": "tadaformer_motion.tiny_8f"}))


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_model_features_and_calibration_stats(name: str, dataset: Path, tmp_path: Path) -> None:
    """``--features`` rows equal the model's own pooled features; statistics per TAdaConv/ILA layer."""
    from safetensors.numpy import load_file

    out = tmp_path / "r.jsonl"
    summary = run_batch(
        BatchOptions(list=str(dataset), model=name, out=str(out), limit=3, batch_size=2, workers=0,
                     features=True, calibration_stats=True, quiet=True)
    )  # fmt: skip
    assert summary["videos"] == 3 and summary["errors"] == 0
    rows = _rows(out)
    table = load_file(str(tmp_path / "r.features.safetensors"))
    model = tada.create_model(name, pretrained=True).eval()
    for r in rows:
        x = load_clip(r["path"], model.pretrained_cfg).tensor
        with torch.no_grad():
            own = model.forward_features(x)
            own = own["video_features"] if isinstance(own, dict) else own
            logits = model(x)
        np.testing.assert_allclose(table[r["feature"]], own[0].numpy(), rtol=1e-4, atol=1e-5)
        probs = torch.softmax(logits, -1)[0]
        assert r["top"][0]["index"] == int(probs.argmax())
        assert r["top"][0]["prob"] == pytest.approx(float(probs.max()), abs=1e-5)
        stats = r["calibration_stats"]
        if name.startswith("frame2d"):
            assert stats == {"statistic": None, "layers": {}}
        elif name.startswith("ila"):
            assert stats["statistic"] == "point_displacement_px" and len(stats["layers"]) == 2
            assert all(v >= 0 for v in stats["layers"].values())
        else:
            with tada.trace(model) as tr, torch.no_grad():
                model(x)
            assert stats["statistic"] == "calibration_temporal_variance"
            assert list(stats["layers"]) == tr.layers()
            first = tr.layers()[0]
            expected = tr.calibration[first][0].var(dim=-1, unbiased=False).mean()
            assert stats["layers"][first] == pytest.approx(float(expected), rel=1e-4, abs=1e-7)


def test_bf16_uses_the_app_tolerance_check(dataset: Path, tmp_path: Path) -> None:
    from tada.precision import BF16_TOLERANCE, bf16_difference

    out = tmp_path / "r.jsonl"
    summary = run_batch(BatchOptions(list=str(dataset), model=MODEL, out=str(out), limit=2, workers=0,
                                     precision="bf16", quiet=True))  # fmt: skip
    model = tada.create_model(MODEL, pretrained=True).eval()
    expected = "bf16" if bf16_difference(model, torch.device("cpu")) <= BF16_TOLERANCE else "fp32"
    assert summary["precision"] == expected and summary["precision_note"].startswith(
        f"bf16 {'checked' if expected == 'bf16' else 'rejected'}"
    )
    assert {r["precision"] for r in _rows(out)} == {expected}


_OFFICIAL_VIEWS_SCRIPT = r"""
import json, sys, numpy as np, tada
from tada.motion import generate_clip
from tada.motion.media import write_mp4
from tada.batch import BatchOptions, ListError, run_batch
from app.service import Service, Sampling

root = sys.argv[1]
base = tada.get_pretrained_cfg("tadaconvnextv2_motion.tiny_8f")
cfg = tada.register_pretrained(base.replace(tag="test_4x3", num_clips=4, num_crops=3))
paths = []
for i, label in enumerate(("moving right", "rotating clockwise")):  # wide clips: three distinct crops
    clip = generate_clip(100 + i, label, num_frames=24, size=64)
    frames = np.concatenate([clip.frames, clip.frames[:, :, :32]], axis=2)  # 64 x 96
    paths.append(write_mp4(frames, f"{root}/{i}.mp4", fps=8, scale=1))
(open(f"{root}/list.txt", "w")).write("\n".join(p.name for p in paths) + "\n")
run_batch(BatchOptions(list=f"{root}/list.txt", model=cfg.name, out=f"{root}/r.jsonl", views="official",
                       top_k=11, batch_size=2, workers=0, quiet=True))
service = Service(device="cpu")
out = []
for row in map(json.loads, open(f"{root}/r.jsonl")):
    a = service.analyse(row["path"], cfg.name, Sampling(views="official"), internals=False)
    app = {a.labels[int(i)]: float(a.probs[i]) for i in range(len(a.labels))}
    out.append({"batch": {t["name"]: t["prob"] for t in row["top"]}, "app": app, "views": row["views"],
                "app_views": [list(v) for v in a.clip.views], "frames": row["frames"],
                "app_frames": a.clip.indices.tolist()})
print(json.dumps(out))
"""


def test_official_views_equal_the_apps_official_views(tmp_path: Path) -> None:
    """A 4 x 3 variant of the bundled model (run in a child: the test variant stays out of this registry)."""
    proc = subprocess.run([sys.executable, "-c", _OFFICIAL_VIEWS_SCRIPT, str(tmp_path)], env=_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for clip in json.loads(proc.stdout.splitlines()[-1]):
        assert len(clip["views"]) == 12 and clip["views"] == clip["app_views"]
        assert clip["frames"] == clip["app_frames"] and len(clip["frames"]) == 4
        assert clip["batch"] == pytest.approx(clip["app"], abs=2e-6)  # rows keep 6 decimals


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    from tada.cli import main

    lst = tmp_path / "l.txt"
    lst.write_text("a.mp4 not a class\n")
    code = main(["batch", str(lst), "--model", MODEL, "--out", str(tmp_path / "o.jsonl"), "--json"])
    assert code == 1
