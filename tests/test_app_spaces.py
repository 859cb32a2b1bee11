"""The repository is a Hugging Face Space as it stands: front matter, entry point, requirements."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import gradio
from huggingface_hub import metadata_load
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _requirements() -> dict[str, str]:
    """Package name -> pinned version ('' when not pinned with ==)."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            exact = [s.version for s in req.specifier if s.operator == "=="]
            pins[canonicalize_name(req.name)] = exact[0] if exact else ""
    return pins


def test_front_matter_is_a_gradio_space_pinned_to_the_tested_version() -> None:
    meta = metadata_load(REPO / "README.md")
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == gradio.__version__
    assert (REPO / meta["app_file"]).is_file() and meta["app_file"] == "app.py"
    assert re.fullmatch(r"3\.\d+", str(meta["python_version"]))
    assert len(meta["short_description"]) <= 60
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    body = text.split("\n---\n", 1)[1].lstrip()
    lines = body.splitlines()
    assert lines[0] == "# TAda Lab"
    fence = lines.index("```bash")
    assert lines[fence + 1].startswith("bash scripts/dev.sh app") and lines[fence + 2].startswith(
        "bash scripts/dev.sh test"
    )


def test_requirements_pin_what_the_space_runs() -> None:
    pins = _requirements()
    assert pins.get("gradio") == gradio.__version__
    for name in ("torch", "spaces", "gradio-client", "decord", "av", "plotly", "captum"):
        assert name in pins, f"{name} missing from requirements.txt"


def test_app_py_only_wires_the_ui() -> None:
    tree = ast.parse((REPO / "app.py").read_text(encoding="utf-8"))
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert defs == [], "app.py must not define logic; it lives in app/, tada/ and visualizations/"
    imported = {
        a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "app.ui" for a in n.names
    }
    assert {"create_app", "launch_kwargs"} <= imported
