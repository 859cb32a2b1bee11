"""The app under concurrent load: failures, latency percentiles, model loads and server memory.

    nice .venv/bin/python bench/bench_load.py [--clients 8] [--requests 20] [--configs app glibc] [--port 7911]

For each ``--configs`` entry a fresh ``python app.py`` is started, offline, with the prediction cache
off so every request decodes and runs:

* ``app``: the app as it starts by default (app.runtime: 2 malloc arenas, a fixed 1 MiB mmap
  threshold, torch threads = the cores the process may use; Gradio's worker threads capped at 16 and
  its kept sessions at 128);
* ``glibc``: the same code with glibc's allocator defaults, torch's own thread count and Gradio's
  defaults (``TADA_MALLOC_ARENAS=0 TADA_MALLOC_MMAP_KB=0 TADA_THREAD_BUDGET=0 TADA_MAX_THREADS=40
  TADA_SESSION_CAPACITY=10000``; the bench's 16 sessions stay under either session cap).
* ``app-mmap8m`` / ``app-mmap0``: the app's settings with an 8 MiB mmap threshold, or glibc's sliding
  one (``TADA_MALLOC_MMAP_KB=8192`` / ``0``): what the fixed 1 MiB threshold costs and saves.

Then, through ``gradio_client``:

1. a ``/predict`` round: ``--clients`` threads x ``--requests`` calls, cycling over the four bundled
   models and the example clips;
2. a mixed round: the same number of calls alternating ``/attributions`` (saliency, occlusion,
   frame ablation, integrated gradients at 8 steps) and ``/counterfactuals``.

Printed per round: failures, p50/p90 wall time per call, models loaded during the round (the
server's "loaded ..." log lines: 0 when the cache holds every bundled model), and the server's
resident memory (app + decoder workers) before, after and its peak (sampled every 0.2 s); then the
steady state 5 s after the last round.  RSS counts the shared libraries torch maps (~0.4 GiB of the
start figure with the CUDA build).  On a shared host timings swing by 2x; RSS much less.  Traffic
goes to 127.0.0.1 only, and every loop is bounded by the counts above.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_app import wait_http  # noqa: E402

ATTRIBUTION_METHODS = ("saliency", "occlusion", "temporal", "integrated_gradients")


def server_rss(proc: psutil.Process) -> int:
    total = 0
    for p in (proc, *proc.children(recursive=True)):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_round(url: str, clients: int, requests: int, call) -> tuple[list[float], list[str]]:
    """``clients`` threads, each making ``requests`` calls ``call(client, i)``; wall times and failures."""
    from gradio_client import Client

    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        client = Client(url, verbose=False, download_files=False)
        for i in range(requests):
            t0 = time.perf_counter()
            try:
                call(client, k * requests + i)
                ok, why = True, ""
            except Exception as exc:  # noqa: BLE001 - a bench counts failures, it does not stop on them
                ok, why = False, f"{type(exc).__name__}: {str(exc)[:160]}"
            with lock:
                times.append(time.perf_counter() - t0)
                if not ok:
                    failures.append(why)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, failures


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


CONFIGS = {
    "app": {},
    "glibc": {
        "TADA_MALLOC_ARENAS": "0",
        "TADA_MALLOC_MMAP_KB": "0",
        "TADA_THREAD_BUDGET": "0",
        "TADA_MAX_THREADS": "40",
        "TADA_SESSION_CAPACITY": "10000",
    },
    # The app's settings with another mmap threshold: 8 MiB, or glibc's sliding one (arenas stay at 2).
    "app-mmap8m": {"TADA_MALLOC_MMAP_KB": "8192"},
    "app-mmap0": {"TADA_MALLOC_MMAP_KB": "0"},
}


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def bench(config: str, args: argparse.Namespace) -> None:
    from gradio_client import handle_file

    from tada.models.motion_zoo import BUNDLED_MODELS

    clips = sorted((REPO / "app" / "examples").glob("motion_*.mp4"))
    env = dict(
        os.environ,
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(args.port),
        TADA_ANALYSIS_CACHE="0",
        **CONFIGS[config],
    )
    url = f"http://127.0.0.1:{args.port}/"
    log = tempfile.NamedTemporaryFile("w+", prefix="bench_load_", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log, stderr=log)
    peak = [0]
    stop = threading.Event()

    def loads() -> int:
        return Path(log.name).read_text(errors="replace").count(" INFO loaded ")

    try:
        wait_http(url, proc)
        server = psutil.Process(proc.pid)

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], server_rss(server))
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()
        time.sleep(3.0)  # the background warm-up loads the default model
        start_rss = server_rss(server)

        def predict(client, i: int) -> None:
            model = BUNDLED_MODELS[i % len(BUNDLED_MODELS)]
            client.predict(handle_file(str(clips[i % len(clips)])), model=model, api_name="/predict")

        def mixed(client, i: int) -> None:
            model = BUNDLED_MODELS[i % len(BUNDLED_MODELS)]
            clip = handle_file(str(clips[i % len(clips)]))
            if i % 2:
                client.predict(clip, model=model, api_name="/counterfactuals")
            else:
                method = ATTRIBUTION_METHODS[(i // 2) % len(ATTRIBUTION_METHODS)]
                client.predict(clip, model=model, method=method, steps=8, api_name="/attributions")

        for name, call in (("/predict", predict), ("mixed /attributions + /counterfactuals", mixed)):
            before = server_rss(server)
            loaded = loads()
            peak[0] = before
            t0 = time.perf_counter()
            times, failures = run_round(url, args.clients, args.requests, call)
            wall = time.perf_counter() - t0
            after = server_rss(server)
            print(
                f"[{config}] {name}: {len(times)} calls from {args.clients} clients in {wall:.0f} s, "
                f"{len(failures)} failed; p50 {statistics.median(times):.2f} s, p90 {pct(times, 0.9):.2f} s; "
                f"{loads() - loaded} model loads; server RSS {gib(before)} -> {gib(after)} (peak {gib(peak[0])})",
                flush=True,
            )
            for why in sorted(set(failures))[:5]:
                print(f"    failure: {why}")
        time.sleep(5.0)
        steady = server_rss(server)
        print(
            f"[{config}] steady state: {gib(steady)} ({steady / 1e9:.2f} GB), {gib(steady - start_rss)} above "
            f"the {gib(start_rss)} at start; {server.num_threads()} threads in the app process",
            flush=True,
        )
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=20, help="calls per client and round")
    ap.add_argument("--configs", nargs="+", default=["app", "glibc"], choices=list(CONFIGS), help="see above")
    ap.add_argument("--port", type=int, default=7911)
    args = ap.parse_args()
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)", flush=True)
    for config in args.configs:
        bench(config, args)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")


if __name__ == "__main__":
    main()
