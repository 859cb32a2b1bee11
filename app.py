"""Entry point (local and Hugging Face Spaces): ``python app.py``. Only wires the UI; see ``app/``."""

from __future__ import annotations

import os

# No telemetry, no version check, nothing leaves the machine at launch (set before gradio is imported).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import logging  # noqa: E402

from app.runtime import limit_malloc_arenas, set_thread_budget  # noqa: E402

# Before Gradio and torch start their threads: the allocator's arenas and thresholds, torch's thread
# pool sized to the cores this process may use (bench/bench_load.py measures both).
allocator = limit_malloc_arenas()
threads = set_thread_budget()


from app.ui import create_app, launch_kwargs  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
logging.getLogger("tada.app").info("malloc settings %s, %d torch threads", allocator or "glibc's", threads)
demo = create_app()

if __name__ == "__main__":
    # Spaces and containers set GRADIO_SERVER_NAME=0.0.0.0; locally the default stays 127.0.0.1.
    demo.launch(**launch_kwargs())
