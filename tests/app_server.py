"""What the tests that launch the app share: a free loopback port, the app launched in this process
(loopback, offline, its own Gradio folders) and a headless Debian Chromium for Playwright.

Test modules import it as ``from app_server import ...`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ARGS", "CHROMIUM", "LOCAL", "chromium", "free_port", "launched_app"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A synthetic camera (test pattern) for the webcam recording, granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
# What a page of the app may load: the server itself and in-page data, never the network.
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (tests running side by side never share one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched_app(
    folder: Path, service: Any = None, warm_up: bool = True, env: Mapping[str, str] | None = None
) -> Iterator[tuple[Any, Any]]:
    """``create_app`` launched on 127.0.0.1 with Gradio's files under ``folder`` (uploads in
    ``folder/tmp``) and ``env`` set while it runs; yields ``(demo, service)`` and closes it after."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_EXAMPLES_CACHE", str(folder / "examples"))
    mp.setenv("GRADIO_TEMP_DIR", str(folder / "tmp"))
    for key, value in (env or {}).items():
        mp.setenv(key, value)
    from app.service import Service
    from app.ui import create_app, launch_kwargs

    service = service or Service(device="cpu")
    demo = create_app(service, warm_up=warm_up)
    try:
        demo.launch(
            **launch_kwargs(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
        )
        yield demo, service
    finally:
        demo.close()
        mp.undo()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (a clear failure when it is not installed)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (bash scripts/dev.sh test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
