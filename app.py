"""Entry point (local and Hugging Face Spaces): ``python app.py``. Only wires the UI; see ``app/``."""

from __future__ import annotations

import os

# No telemetry, no version check, nothing leaves the machine at launch (set before gradio is imported).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import ctypes  # noqa: E402
import logging  # noqa: E402


def limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas (``TADA_MALLOC_ARENAS``, default 2; 0 keeps glibc's 8 per core).

    Every thread that allocates under contention gets an arena of its own and glibc rarely gives their
    memory back: under 8 concurrent clients the server grew by ~0.8 GB that way (bench/bench_load.py).
    Set here, before Gradio and torch start their threads; ``MALLOC_ARENA_MAX`` in the environment,
    read by glibc at start, wins when present.
    """
    arenas = int(os.environ.get("TADA_MALLOC_ARENAS", "2") or 0)
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to cap
        pass


limit_malloc_arenas()

from app.ui import create_app, launch_kwargs  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
demo = create_app()

if __name__ == "__main__":
    # Spaces and containers set GRADIO_SERVER_NAME=0.0.0.0; locally the default stays 127.0.0.1.
    demo.launch(**launch_kwargs())
