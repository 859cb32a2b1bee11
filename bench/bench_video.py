"""Fetching 16 frames from a 60-s 720p clip: the default path of ``tada.video`` vs plain decord ``get_batch``.

Usage::

    .venv/bin/python bench/bench_video.py [--rounds 3] [--workdir DIR]

Two clips are made with the ffmpeg CLI (``testsrc2`` 1280x720, 30 fps, 60 s, x264 ``veryfast``,
yuv420p) with a keyframe every 30 and every 250 frames.  For each clip, two index sets of 16 frames:
``segment`` (TAdaFormer's protocol: spread over the whole clip, the hard case) and ``interval``
(TAdaConvNeXtV2's: 16 frames at rate 5, centred, within ~2.7 s).

Methods, each run in a fresh process (so peak memory is clean), interleaved over ``--rounds`` rounds;
the table shows the median wall time, the median CPU time (user + system, all threads; steadier than
wall time on a busy machine) and the largest peak RSS (``VmHWM``):

* ``decord``: ``decord.VideoReader(path).get_batch(indices).asnumpy()`` (open + read).
* ``tada warm``: ``tada.video.read_frames(path, indices)`` with the decoder worker already running
  (a service's steady state).  Memory = the worker's peak RSS + what the call added to the caller's
  peak RSS (the frames it receives).
* ``tada cold``: the same call including starting the worker process.

Ratios are against decord on the same clip and indices, measured in the same run.  Frames from both
paths are checked to be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRAMES = 16


def make_clip(path: Path, gop: int) -> None:
    if path.exists():
        return
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60",
         "-c:v", "libx264", "-preset", "veryfast", "-g", str(gop), "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip


def index_sets(num_frames: int, fps: float) -> dict[str, list[int]]:
    from types import SimpleNamespace

    from tada.video import sample_indices

    seg = SimpleNamespace(num_frames=FRAMES, sampling="segment")
    itv = SimpleNamespace(num_frames=FRAMES, sampling="interval", sampling_rate=5, target_fps=30.0)
    return {
        "segment": sample_indices(num_frames, fps, seg).tolist(),
        "interval": sample_indices(num_frames, fps, itv).tolist(),
    }


def _status_mb(text: str, key: str) -> float:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _peak_rss_mb(status: str | None = None) -> float:
    """Peak resident memory of this address space (VmHWM).  Not ``ru_maxrss``: Linux keeps that across
    fork+exec, so a child started by a big parent would report the parent's size."""
    return _status_mb(status or Path("/proc/self/status").read_text(), "VmHWM")


def _cpu_s(ru: resource.struct_rusage) -> float:
    return ru.ru_utime + ru.ru_stime


def run_one(method: str, path: str, indices: list[int]) -> dict:
    """Runs in a fresh process; prints one JSON line."""
    import functools
    import hashlib

    if method == "decord":
        import decord

        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        frames = decord.VideoReader(path).get_batch(indices).asnumpy()
        dt = time.perf_counter() - t0
        cpu = _cpu_s(resource.getrusage(resource.RUSAGE_SELF)) - _cpu_s(ru0)
        peak = _peak_rss_mb()
        extra = {}
    else:
        from tada.video import read_frames, run_isolated
        from tada.video.worker import get_pool

        worker_status = functools.partial(Path.read_text, Path("/proc/self/status"))
        worker_cpu0 = 0.0
        if method == "tada_warm":
            # Worker started and ready before timing (a service's steady state).
            worker_cpu0 = _cpu_s(get_pool().run(resource.getrusage, resource.RUSAGE_SELF))
        base = _status_mb(Path("/proc/self/status").read_text(), "VmRSS")
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        frames = read_frames(path, indices)
        dt = time.perf_counter() - t0
        caller_cpu = _cpu_s(resource.getrusage(resource.RUSAGE_SELF)) - _cpu_s(ru0)
        caller_delta = _peak_rss_mb() - base  # what receiving the frames added to the caller
        worker_cpu = _cpu_s(run_isolated(resource.getrusage, resource.RUSAGE_SELF)) - worker_cpu0
        worker_peak = _peak_rss_mb(run_isolated(worker_status))
        cpu = worker_cpu + caller_cpu
        peak = worker_peak + max(caller_delta, 0.0)
        extra = {"worker_peak_mb": worker_peak, "caller_delta_mb": caller_delta}
    digest = hashlib.sha1(frames.tobytes()).hexdigest()[:12]
    return {"method": method, "seconds": dt, "cpu_s": cpu, "peak_mb": peak, "digest": digest, **extra}


def measure(method: str, path: Path, indices: list[int]) -> dict:
    cmd = [sys.executable, __file__, "--one", method, str(path), json.dumps(indices)]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated clips here")
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "PATH", "INDICES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, path, indices = args.one
        print(json.dumps(run_one(method, path, json.loads(indices))))
        return
    if shutil.which("ffmpeg") is None:
        sys.exit("needs the ffmpeg CLI (apt-get install ffmpeg) to make the 60-s clips")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_video_"))
    workdir.mkdir(parents=True, exist_ok=True)
    clips = {}
    for gop in (30, 250):
        clips[gop] = workdir / f"testsrc2_720p30_60s_gop{gop}.mp4"
        make_clip(clips[gop], gop)

    sys.path.insert(0, str(REPO))
    from tada.video import probe

    methods = ("decord", "tada_warm", "tada_cold")
    results: dict[tuple, list[dict]] = {}
    cases = []
    for gop, path in clips.items():
        info = probe(path)
        for name, idx in index_sets(info.num_frames, info.fps).items():
            cases.append((gop, name, path, idx))
    print(f"clips in {workdir} ({', '.join(f'{p.stat().st_size / 1e6:.1f} MB' for p in clips.values())}); "
          f"{args.rounds} rounds; machine: {os.cpu_count()} CPUs")  # fmt: skip
    for _ in range(args.rounds):  # interleaved: load changes on a shared machine hit every method alike
        for gop, name, path, idx in cases:
            for m in methods:
                results.setdefault((gop, name, m), []).append(measure(m, path, idx))

    print()
    head = "| clip | 16 frames | method | wall ms | vs decord | CPU ms | vs decord | peak RSS MB | same frames |"
    print(head.replace("16", str(FRAMES)))
    print("|---|---|---|---|---|---|---|---|---|")
    for gop, name, _, _ in cases:
        ref = statistics.median(r["seconds"] for r in results[(gop, name, "decord")])
        ref_cpu = statistics.median(r["cpu_s"] for r in results[(gop, name, "decord")])
        ref_digest = results[(gop, name, "decord")][0]["digest"]
        for m in methods:
            rs = results[(gop, name, m)]
            t = statistics.median(r["seconds"] for r in rs)
            cpu = statistics.median(r["cpu_s"] for r in rs)
            mem = max(r["peak_mb"] for r in rs)
            same = all(r["digest"] == ref_digest for r in rs)
            detail = ""
            if m != "decord":
                w = max(r["worker_peak_mb"] for r in rs)
                c = max(r["caller_delta_mb"] for r in rs)
                detail = f" (worker {w:.0f} + caller {c:.0f})"
            print(
                f"| 720p 60 s GOP {gop} | {name} | {m} | {t * 1e3:.0f} | {t / ref:.2f}x | {cpu * 1e3:.0f} | "
                f"{cpu / ref_cpu:.2f}x | {mem:.0f}{detail} | {same} |"
            )
    print()
    print(f"medians of {args.rounds} interleaved rounds; load average at the end: {os.getloadavg()[0]:.1f}")
    print("target: tada warm <= 0.7x decord's time at <= 200 MB")


if __name__ == "__main__":
    main()
