"""``python -m tada predict``: the app's prediction from a shell, one clear line on errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import catalogue
from tada.motion import CLASSES, generate_clip
from tada.motion.media import write_mp4

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="2")
    return subprocess.run(
        [sys.executable, "-m", "tada", "predict", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    c = generate_clip(21, "moving left", num_frames=16, size=64, distractors=False, noise=False)
    return write_mp4(c, tmp_path_factory.mktemp("cli") / "left.mp4", fps=8, scale=2)


def test_predict_json_with_the_default_model(clip: Path) -> None:
    r = run_cli(str(clip), "--json", "--top-k", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == catalogue.default_model_name()
    assert out["top"][0]["label"] in CLASSES  # the right one once trained weights are bundled: test_app_api
    assert len(out["top"]) == 3 and out["top"][0]["score"] >= out["top"][1]["score"]
    assert len(out["frames"]) == len(out["timestamps"]) > 0


def test_predict_text_output(clip: Path, capsys) -> None:
    from tada.cli import main

    assert main(["predict", str(clip), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert catalogue.default_model_name() in lines[0]
    assert len(lines) == 3 and lines[1].lstrip().startswith("1.") and lines[1].rstrip().endswith("%")


@pytest.mark.parametrize("kind", ["text", "missing", "no model"])
def test_bad_input_is_one_line_on_stderr(tmp_path: Path, clip: Path, kind: str, capsys) -> None:
    from tada.cli import main

    path = tmp_path / "clip.mp4"
    if kind == "text":
        path.write_text("hello, not a video\n" * 30)
    args = ["predict", str(clip if kind == "no model" else path)]
    if kind == "no model":
        args += ["--model", "tadaconvnextv2_tiny.k400_99f"]
    assert main(args) == 1
    out = capsys.readouterr()
    err = out.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), out.err
    assert "Traceback" not in out.err and out.out == ""
    if kind == "text":
        assert "not a video" in err[0]


def test_bad_clip_through_python_m_tada(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00" * 4096)
    r = run_cli(str(path))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
