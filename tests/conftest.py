"""Shared pytest fixtures: the reference data beside the repo, offline environment."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Offline by construction: no test may reach the network (and a missing Hub file would cost ~23 s).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def _scratch_tempdir(tmp_path_factory) -> Iterator[None]:
    """This process's temporary files go under pytest's base folder, which pytest prunes: gradio_client
    makes a folder named by 40 random hex digits in the temp dir for every file it downloads and leaves it
    behind, empty, after moving the file out (gradio_client 2.x ``Client._download_file``), so the suite's
    API tests left tens of thousands of empty folders in /tmp."""
    scratch = tmp_path_factory.mktemp("tempdir")  # made before the switch: under the real temp dir
    old, tempfile.tempdir = tempfile.tempdir, str(scratch)
    yield
    tempfile.tempdir = old


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` beside the repository root (CI has it there too)."""
    if not REFERENCE_DIR.is_dir():
        pytest.fail(f"reference data not found at {REFERENCE_DIR}: clone the repo next to shared/")
    return REFERENCE_DIR
