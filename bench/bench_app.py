"""The app: one predict's model passes (before/after #16), start-up, and predict latency through
``gradio_client`` (prints figures only).

.venv/bin/python bench/bench_app.py [--part all|passes|server] [--model NAME] [--repeats 10] [--cores 2]

``passes`` (first, in this process pinned to ``--cores``): the model work of one single-view predict
with internals, on the main view of the bench clip below (decoded once, not timed), two ways:

* old path, as before #16: ``runtime.forward`` (the prediction), then a second traced forward for the
  internals (``runtime.explain(..., "calibration")``, fp32), i.e. two passes;
* new path: ``runtime.forward_with_internals`` (one traced pass gives both).

Measured on TAdaConvNeXtV2-T (``tadaconvnextv2_tiny.k400_16f`` built with random weights,
``pretrained=False``: 16 x 224², where the saved pass shows) and on the app's default model; old and
new runs alternate so that load changes hit both; prints medians and the old/new ratio.

``server``:

1. Makes a 10-s 1280x720 30 fps H.264 clip (a keyframe every 2 s, as phones and web video have; a
   shape crosses a panning photo) once, under ``.cache/bench``.
2. Starts ``python app.py`` in a fresh process pinned to ``--cores`` CPU cores, offline, with the
   prediction cache off (``TADA_ANALYSIS_CACHE=0``) so every request really decodes and runs.
   Start-up = process start -> first HTTP 200 on ``/``.
3. Calls ``/predict`` through ``gradio_client`` (upload included, gallery images not downloaded):
   2 warm-up calls, then ``--repeats`` timed calls; prints median / p90 / best wall time, the CPU
   time the app and its decoder worker spent per call, and the server's own breakdown (decode /
   model / internals) read from the details panel of the last call.

Timings on a shared machine vary by up to 2x between runs; compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_clip(path: Path, seconds: float = 10.0, fps: int = 30, size: tuple[int, int] = (1280, 720)) -> Path:
    """A realistic 720p clip: a photo panning slowly, a red disc crossing it, GOP of 2 s."""
    if path.is_file():
        return path
    import av
    from PIL import Image
    from skimage import data

    w, h = size
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((w + 400, h + 400), Image.BILINEAR))
    yy, xx = np.mgrid[0:h, 0:w]
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * fps)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "g": str(2 * fps)}
        for i in range(n):
            u = i / (n - 1)
            ox, oy = int(400 * u), int(200 * u)
            frame = photo[oy : oy + h, ox : ox + w].copy()
            cx, cy = 100 + (w - 200) * u, h / 2
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < 80**2] = (220, 30, 30)
            out.mux(s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(s.encode())
    return path


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 300.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter()
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _median_pair(old, new, repeats: int) -> tuple[float, float]:
    """Median seconds of ``old()`` and ``new()``, run alternately after one warm-up each."""
    old(), new()
    t_old, t_new = [], []
    for _ in range(repeats):
        for fn, out in ((old, t_old), (new, t_new)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(t_old), statistics.median(t_new)


def bench_passes(clip: Path, cores: list[int], models: list[tuple[str, str, bool, int]]) -> None:
    """Old (two passes) vs new (one traced pass) model work of one single-view predict with internals."""
    import torch

    import tada
    from app import runtime
    from tada.video import load_clip

    os.sched_setaffinity(0, cores)
    device = torch.device(runtime.default_device())
    print(f"model passes of one single-view predict with internals ({device}, {len(cores)} core(s)):")
    print(f"  load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    for label, name, pretrained, repeats in models:
        model = tada.create_model(name, pretrained=pretrained).to(device).eval()
        view = load_clip(clip, model.pretrained_cfg).main_view()
        precision, _ = runtime.choose_precision(model, device, "auto")
        torch.set_num_threads(runtime.threads_for(model, device) or len(cores))  # as the service runs it
        t_old, t_new = _old_and_new(model, view, device, precision, repeats)
        shape = "x".join(str(d) for d in view.tensor.shape[1:])
        print(
            f"  {label} ({name}, input {shape}, {precision}), median of {repeats}: "
            f"old (2 passes) {t_old:.3f} s, new (1 pass) {t_new:.3f} s, old/new {t_old / t_new:.2f}x"
        )


def _old_and_new(model, view, device, precision: str, repeats: int) -> tuple[float, float]:
    from app import runtime

    kind = "points" if model.pretrained_cfg.family == "ila" else "calibration"

    def old() -> None:  # the service before #16: predict, then trace the main view again (fp32)
        runtime.forward(model, view.tensor, device, precision)
        runtime.explain(model, view, kind, None, None, device, {})

    def new() -> None:
        runtime.forward_with_internals(model, view, device, precision, kind)

    return _median_pair(old, new, repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "passes", "server"), default="all")
    ap.add_argument("--model", help="variant (default: the app's default, the bundled TAdaConvNeXtV2)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--pass-repeats", type=int, default=3, help="timed runs per path on TAdaConvNeXtV2-T")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--port", type=int, default=7899)
    args = ap.parse_args()

    from app.catalogue import default_model_name

    model = args.model or default_model_name()
    clip = make_clip(REPO / ".cache" / "bench" / "clip_10s_720p.mp4")
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    if args.part in ("all", "passes"):
        full = ("TAdaConvNeXtV2-T, random weights", "tadaconvnextv2_tiny.k400_16f", False, args.pass_repeats)
        bundled = ("default bundled model", model, True, 4 * args.pass_repeats)
        bench_passes(clip, cores, [full, bundled])
    if args.part in ("all", "server"):
        bench_server(args, model, clip, cores)


def bench_server(args: argparse.Namespace, model: str, clip: Path, cores: list[int]) -> None:
    """Start-up and ``/predict`` latency of a fresh ``python app.py`` pinned to ``cores``."""
    env = dict(
        os.environ,
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(args.port),
        TADA_ANALYSIS_CACHE="0",
        OMP_NUM_THREADS=str(len(cores)),
    )
    url = f"http://127.0.0.1:{args.port}/"
    t_start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "app.py")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )
    try:
        startup = wait_http(url, proc) - t_start
        from gradio_client import Client, handle_file

        # download_files=False: the client does not fetch the gallery images afterwards (client-side work).
        client = Client(url, verbose=False, download_files=False)
        server = psutil.Process(proc.pid)

        def server_cpu() -> float:
            procs = [server, *server.children(recursive=True)]  # the app and its decoder worker(s)
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            return total

        def predict() -> tuple[float, float, str, str]:
            c0, t0 = server_cpu(), time.perf_counter()
            top, _gallery, details, _cal, _pts = client.predict(
                handle_file(str(clip)), model, "", None, "single", None, None, api_name="/predict"
            )
            return time.perf_counter() - t0, server_cpu() - c0, top["label"], details

        first = predict()[0]
        predict()
        times, cpus, label, details = [], [], "", ""
        for _ in range(args.repeats):
            t, c, label, details = predict()
            times.append(t)
            cpus.append(c)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    info = (REPO / ".cache" / "bench" / "clip_10s_720p.mp4").stat().st_size / 1e6
    print(f"model: {model}; clip: 10 s 1280x720 30 fps H.264 ({info:.1f} MB); app pinned to {len(cores)} core(s)")
    print(f"app start-up (process start -> HTTP 200): {startup:.2f} s")
    print(f"first predict right after start-up (the background warm-up may still be running): {first:.3f} s")
    print(
        f"predict end to end, {len(times)} calls after 2 warm-up: median {statistics.median(times):.3f} s, "
        f"p90 {p90:.3f} s, best {times[0]:.3f} s (target <= 1 s: "
        f"{'met' if statistics.median(times) <= 1.0 else 'not met'})"
    )
    print(
        f"server CPU time per predict (app + decoder worker, all threads): median {statistics.median(cpus):.3f} s"
        " (steadier than wall time on a shared machine)"
    )
    found = re.search(r"\*\*Time\*\* (.*)", details)
    print(f"server breakdown of the last call: {found.group(1) if found else '?'}; top-1 '{label}'")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")


if __name__ == "__main__":
    main()
