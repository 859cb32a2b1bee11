"""Timeline of a long video: end-to-end seconds, decode/preprocess/model split, CPU time and peak memory.

    .venv/bin/python bench/bench_timeline.py [--minutes 10] [--windows 120] [--model NAME] [--realistic]
        [--repeats 1]

Writes (once, cached in the temp folder) a 1280x720 30 fps H.264 clip, then runs
:func:`tada.timeline.compute_timeline` with the bundled default model at 120 windows.  The default
clip is x264 ``ultrafast`` with a keyframe every 2 s; ``--realistic`` writes what cameras and
encoders usually give instead (``veryfast`` with B-frames and CABAC, a keyframe every 250 frames),
where each window's seek decodes up to a keyframe interval.
Memory is the peak resident set of this process plus the decoder worker, sampled every 50 ms.
CPU is the CPU time of both (wall time on a shared host says how busy the host was; CPU time
does not).  Target (issue #18): <= 30 s end-to-end and <= 1 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import av  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

import tada  # noqa: E402
from tada.models.motion_zoo import DEFAULT_MODEL  # noqa: E402
from tada.timeline import compute_timeline  # noqa: E402


def write_clip(
    path: Path, minutes: float, fps: int = 30, size: tuple[int, int] = (1280, 720), realistic: bool = False
) -> Path:
    """A gradient with a square sliding across it: cheap to make, real H.264 to decode."""
    w, h = size
    n = int(minutes * 60 * fps)
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx + yy) % 256).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if realistic:
            stream.options = {"preset": "veryfast", "g": "250", "bf": "3", "crf": "23"}
        else:
            stream.options = {"preset": "ultrafast", "g": str(2 * fps), "crf": "28"}
        background = np.empty((h, w, 3), np.uint8)
        for i in range(n):
            if i % fps == 0:  # the background changes once a second, a square moves every frame
                background[..., 0] = base + np.uint8(i // fps % 256)
                background[..., 1] = base[::-1]
                background[..., 2] = 90
            img = background.copy()
            x = int((w - 120) * (0.5 + 0.5 * np.sin(i / 40)))
            img[300:420, x : x + 120] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


class PeakMemory:
    """Peak RSS of this process + its children (the decoder worker), sampled in a thread."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live children (the decoder worker)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--windows", type=int, default=120)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--realistic", action="store_true", help="x264 veryfast, B-frames, a keyframe every 250 frames")
    p.add_argument("--repeats", type=int, default=1, help="runs to time (the best and the median are printed)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kind = "_realistic" if args.realistic else ""
    path = Path(tempfile.gettempdir()) / f"tada_bench_timeline_{args.minutes:g}min_720p{kind}.mp4"
    if not path.exists():
        t0 = time.perf_counter()
        write_clip(path.with_suffix(".part.mp4"), args.minutes, realistic=args.realistic).rename(path)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s")
    model = tada.create_model(args.model, pretrained=True).eval()
    compute_timeline(path, model, max_windows=2)  # warm: decoder worker started, first-call costs paid
    load = os.getloadavg()[0]
    runs = []
    for _ in range(args.repeats):
        with PeakMemory() as mem:
            c0, t0 = cpu_seconds(), time.perf_counter()
            tl = compute_timeline(path, model, max_windows=args.windows)
            total, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        runs.append((total, cpu, mem.peak, tl))
    frames = sum(len(w.frames) for w in tl.windows)
    print(
        f"{args.model} on a {tl.info.duration / 60:.1f}-min {tl.info.width}x{tl.info.height} clip ({path.name}): "
        f"{len(tl.windows)} windows ({frames} frames, window {tl.window_s:.2f} s, stride {tl.stride_s:.2f} s); "
        f"torch threads {args.threads}; load average before {load:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    for total, cpu, peak, tl in runs:
        t, st = tl.timings, getattr(tl, "stats", {})  # (older versions had no preprocess split, no stats)
        pre = t.get("preprocess_s", 0.0)
        keys = ("frames_decoded", "seeks", "decoder_calls")
        counts = ", ".join(f"{st[k]} {k.replace('_', ' ')}" for k in keys if k in st)
        print(
            f"end-to-end {total:.2f} s (target <= 30 s, ratio {total / 30:.2f}); decode {t['decode_s']:.2f} s "
            f"({t['decode_s'] / total:.0%}), preprocess {pre:.2f} s ({pre / total:.0%}), "
            f"model {t['model_s']:.2f} s ({t['model_s'] / total:.0%}); CPU {cpu:.2f} s (process + decoder worker); "
            f"peak memory {peak / 2**30:.2f} GiB (target <= 1 GiB, ratio {peak / 2**30:.2f}); {counts or 'no counts'}"
        )
    if len(runs) > 1:
        walls = sorted(r[0] for r in runs)
        print(f"end-to-end best {walls[0]:.2f} s, median {walls[len(walls) // 2]:.2f} s over {len(runs)} runs")


if __name__ == "__main__":
    main()
