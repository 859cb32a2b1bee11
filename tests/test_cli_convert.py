"""``python -m tada`` run for real in a subprocess: convert the reference fixtures, list, info, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import tada
from tada import cli

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_tada(*args: str, cache: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TADA_CACHE": str(cache),
        "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("TADA_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "tada", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def ila_logits(model: torch.nn.Module, io: dict[str, torch.Tensor]) -> torch.Tensor:
    # the reduced fixture has its own 45-token vocabulary: feed its token ids (see reference README)
    model.set_text_tokens(io["text_tokens"])
    with torch.no_grad():
        return model(io["input"])


@pytest.mark.slow  # interpreter start-up (torch, timm) dominates: ~3-5 s a run
def test_convert_ila_fixture_and_load_back(tmp_path, reference_dir):
    fixtures = reference_dir / "ila" / "fixtures"
    out = tmp_path / "ila_tiny"
    proc = run_tada("convert", str(fixtures / "ila_tiny.pth"), str(out), cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert f"local-dir:{out}" in proc.stdout
    assert {"model.safetensors", "config.json", "README.md", "official_config.json"} <= {p.name for p in out.iterdir()}

    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "ila_b16"  # patch 16; sizes from the checkpoint, not the config's ARCH
    assert config["model_kwargs"]["vision_width"] == 128 and config["num_classes"] == 8
    assert config["pretrained_cfg"]["input_layout"] == "BTCHW"

    io = load_file(str(fixtures / "ila_tiny.io.safetensors"))
    model = tada.create_model(f"local-dir:{out}")
    torch.testing.assert_close(ila_logits(model, io), io["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # interpreter start-up (torch, timm) dominates: ~3-5 s a run
def test_convert_tadaformer_with_override_and_load_back(tmp_path, reference_dir):
    """The routing head dim is not in the official config (64 is hard-coded): the fixture used 8."""
    fixtures = reference_dir / "tadaconv" / "fixtures"
    out = tmp_path / "tadaformer_mini"
    src = str(fixtures / "tadaformer_mini.pyth")
    proc = run_tada("convert", src, str(out), "--override", "route_head_dim=8", cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "tadaformer_b16" and config["model_kwargs"]["route_head_dim"] == 8
    assert config["provenance"]["overrides"] == {"route_head_dim": 8}
    io = load_file(str(fixtures / "tadaformer_mini.io.safetensors"))
    with torch.no_grad():
        logits = tada.create_model(f"local-dir:{out}")(io["input"])
    torch.testing.assert_close(logits, io["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["tada2d_mini", "tadaconvnextv2_mini", "tadaformer_mini_ssv2"])
def test_convert_tadaconv_fixtures_in_process(name, tmp_path, reference_dir, capsys):
    fixtures = reference_dir / "tadaconv" / "fixtures"
    out = tmp_path / name
    assert cli.main(["convert", str(fixtures / f"{name}.pyth"), str(out)]) == 0, capsys.readouterr().err
    io = load_file(str(fixtures / f"{name}.io.safetensors"))
    model = tada.create_model(f"local-dir:{out}")
    assert model.pretrained_cfg.num_classes == 10 and model.pretrained_cfg.input_layout == "BCTHW"
    with torch.no_grad():
        torch.testing.assert_close(model(io["input"]), io["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # interpreter start-up (torch, timm) dominates: ~3-5 s a run
def test_mismatched_variant_is_one_line_error(tmp_path, reference_dir):
    cache = tmp_path / "cache"
    ila = str(reference_dir / "ila" / "fixtures" / "ila_tiny.pth")
    mismatched = run_tada("convert", ila, str(tmp_path / "out"), "--variant", "ila_b16.k400_8f", cache=cache)
    assert_one_line_error(mismatched, "does not match variant ila_b16.k400_8f", "positional_embedding")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["{tmp}/nope.pyth", "{tmp}/out"], ["nope.pyth"]),
        (["{tmp}/notes.pyth", "{tmp}/out"], ["notes.pyth", "not a PyTorch checkpoint"]),
        (["{ila}", "{tmp}/out", "--variant", "ila_b16.k400_99f"], ["k400_99f"]),
        (["{ila}", "{tmp}/out", "--override", "frames"], ["key=value"]),
        (["{ila}", "{tmp}/out", "--override", "no_such_parameter=3"], []),
    ],
)
def test_more_convert_errors_in_process(args, needles, tmp_path, reference_dir, capsys):
    ila = str(reference_dir / "ila" / "fixtures" / "ila_tiny.pth")
    (tmp_path / "notes.pyth").write_text("this is not a checkpoint\n" * 20)
    argv = ["convert", *(a.format(tmp=tmp_path, ila=ila) for a in args)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert all(n in err for n in needles), err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # interpreter start-up (torch, timm) dominates: ~3-5 s a run
def test_download_offline_is_one_line_with_instructions(tmp_path):
    cfg = tada.get_pretrained_cfg("ila_b16.k400_8f")
    proc = run_tada("download", cfg.name, cache=tmp_path / "cache")
    assert_one_line_error(
        proc,
        f"https://drive.google.com/file/d/{cfg.gdrive_id}",
        str(tmp_path / "cache" / cfg.name),
        "python -m tada convert",
    )


# In-process runs of the same entry point (no interpreter start-up) for the read-only commands.


def test_list_and_info(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TADA_CACHE", str(tmp_path))
    assert cli.main(["list", "ila_b16"]) == 0
    out = capsys.readouterr().out
    assert "ila_b16.k400_8f" in out and "84.0 (4x3)" in out and "gdrive" in out and "ila_b32" not in out

    assert cli.main(["list", "--json", "ila_*ssv2*"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["classes"] == 174 and r["label_set"] == "ssv2" for r in rows)

    assert cli.main(["info", "ila_b16.k400_16f", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_frames"] == 16 and info["cache_dir"] == str(tmp_path / "ila_b16.k400_16f")
    assert info["official_url"].startswith("https://drive.google.com/file/d/")

    assert cli.main(["list", "no_such_thing"]) == 1
    assert capsys.readouterr().err.startswith("error: no variant matches")


def test_converted_into_cache_shows_as_cached(tmp_path, monkeypatch, capsys, reference_dir):
    """`list` reports weights that a manual convert put into the cache (the offline recipe)."""
    monkeypatch.setenv("TADA_CACHE", str(tmp_path))
    # the tiny fixture is not a full-size release, so it goes into the cache of a bare architecture entry
    assert cli.main(["convert", str(reference_dir / "ila/fixtures/ila_tiny.pth"), str(tmp_path / "x")]) == 0
    capsys.readouterr()
    assert cli.main(["list", "--json", "ila_b16.k400_8f"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["weights"] == "gdrive"
    (tmp_path / "ila_b16.k400_8f").mkdir()
    for name in ("model.safetensors", "config.json"):
        (tmp_path / "ila_b16.k400_8f" / name).write_bytes((tmp_path / "x" / name).read_bytes())
    assert cli.main(["list", "--json", "ila_b16.k400_8f"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["weights"] == "cached"


def test_external_commands_are_imported_lazily(monkeypatch, capsys):
    """The hook other modules use to add subcommands (train/evaluate): a real module, imported on use."""
    import types

    module = types.ModuleType("tada_test_cmd")
    module.HELP = "echo a word"
    module.configure = lambda p: p.add_argument("word")
    module.run = lambda args: print(f"echo {args.word}") or 3
    monkeypatch.setitem(sys.modules, "tada_test_cmd", module)
    monkeypatch.setitem(cli.EXTERNAL_COMMANDS, "echo", "tada_test_cmd")
    assert cli.main(["echo", "hi"]) == 3
    assert capsys.readouterr().out == "echo hi\n"
    assert cli.main(["--help"]) == 0
    assert "echo" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "needle"), [(["info"], "required"), (["frobnicate"], "invalid choice")])
def test_usage_errors_exit_2(argv, needle, capsys):
    assert cli.main(argv) == 2
    assert needle in capsys.readouterr().err
