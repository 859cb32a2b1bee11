"""The app's Timeline tab on the bundled 40-s example: seconds per bundled model (first request, then the
cached one), and the figure exports (HTML, PNG through kaleido + Chromium).

    .venv/bin/python bench/bench_app_timeline.py

Runs :meth:`app.service.Service.timeline` and the tab's export handler in-process on the CPU (no server,
no upload): the numbers are the work behind ``/timeline`` and ``/timeline_figure``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import tada  # noqa: E402
from app.handlers import Handlers  # noqa: E402
from app.service import Service  # noqa: E402
from app.timeline_tab import TimelineHandlers  # noqa: E402
from tada import hub  # noqa: E402

CLIP = Path(__file__).resolve().parents[1] / "app" / "examples" / "motion_rotating_then_moving_right_40s.mp4"


def main() -> None:
    service = Service(device="cpu")
    names = [n for n in tada.list_models() if hub.weights_status(tada.get_pretrained_cfg(n)) == "bundled"]
    print(f"{CLIP.name}: 40 s, 8 fps; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name in names:
        service.get_model(name)  # loading is not the timeline's work
        t0 = time.perf_counter()
        tl = service.timeline(str(CLIP), name)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        service.timeline(str(CLIP), name)
        cached = time.perf_counter() - t0
        print(
            f"{name:32s} {len(tl.windows)} windows: first {first:5.2f} s (decode {tl.timings['decode_s']:.2f} s, "
            f"model {tl.timings['model_s']:.2f} s), cached {cached * 1000:.2f} ms"
        )
    th = TimelineHandlers(Handlers(service))
    for fmt in ("html", "png", "png"):
        t0 = time.perf_counter()
        path = Path(th.figure_file(str(CLIP), names[0], "", None, None, "20-22", fmt))
        print(f"figure as {fmt}: {time.perf_counter() - t0:5.2f} s, {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
