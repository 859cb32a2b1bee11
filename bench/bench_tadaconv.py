"""TAdaConv family on the CPU: our default path vs the official grouped path vs the plain 2-D backbone.

.venv/bin/python bench/bench_tadaconv.py [--batch 1 8] [--reps 3] [--threads 2] [--frames 16]

For TAdaConvNeXtV2-T and TAdaFormer-B/16 (random weights: the architecture sets the cost), clips of
``frames`` x 224 x 224, fp32, ``torch.inference_mode``:

* ``default``: calibration as per-channel scaling around one shared-weight conv (channels-last);
* ``grouped``: the official formulation, one calibrated kernel per frame in one grouped conv;
* ``2-D``: timm ``convnext_tiny`` / ``vit_base_patch16_clip_224`` on the B x 8 frames these models
  process after their stride-2 stem / tubelet, i.e. the same spatial work without the temporal parts.

OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE`` unless set): on a shared, oversubscribed
host the default spinning makes every parallel region wait for a descheduled thread (a 1.2 M-element
add measured 20 ms instead of 0.2 ms), which buries the models under synchronisation noise.

The three are interleaved (one forward each per round, rotating the order) so slow phases of the
shared host hit all of them; the table shows medians over the rounds (wall ms per clip, and process
CPU ms per clip) and the ratios of the medians.  Prints figures only; targets live in the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see the docstring

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import timm  # noqa: E402

import tada  # noqa: E402
from tada.layers.tadaconv import set_calibration_impl  # noqa: E402

PAIRS = {"tadaconvnextv2_tiny": "convnext_tiny", "tadaformer_b16": "vit_base_patch16_clip_224"}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(runners: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, tuple[float, float]]:
    """Interleaved rounds; returns name -> (median wall s, median process CPU s)."""
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            w0, c0 = time.perf_counter(), time.process_time()
            runners[name]()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    for n in names:
        print(f"    {n}: wall s per round {', '.join(f'{w:.2f}' for w in wall[n])}", flush=True)
    return {n: (statistics.median(wall[n]), statistics.median(cpu[n])) for n in names}


def op_profile(fn: Callable[[], object], top: int = 8) -> list[tuple[str, float, int]]:
    """Self CPU ms per ATen op over one call, largest first: (op, ms, calls)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    rows = [(e.key, e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()]
    return sorted(rows, key=lambda r: -r[1])[:top]


def bench_pair(arch: str, batch: int, frames: int, reps: int, warmup: int, profile: bool) -> dict[str, object]:
    model = tada.create_model(arch, num_frames=frames).eval()
    with torch.no_grad():  # give the zero-initialised parts weights, so the agreement check means something
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.1)
            elif not p.any():
                p.normal_(0, 0.02)
    plain = timm.create_model(PAIRS[arch], pretrained=False).eval()
    positions = len(model.temporal_positions(frames))
    torch.manual_seed(0)
    clip = torch.randn(batch, 3, frames, 224, 224)
    images = torch.randn(batch * positions, 3, 224, 224)

    def run(impl: str) -> Callable[[], object]:
        def fn() -> object:
            set_calibration_impl(model, impl)
            return model(clip)

        return fn

    with torch.inference_mode():
        # Warm-up of all three, and a check that the two calibration paths agree.
        diff = (run("scale")() - run("grouped")()).abs().max().item()
        plain(images)
        runners = {"default": run("scale"), "grouped": run("grouped"), "2-D": lambda: plain(images)}
        times = measure(runners, reps, warmup)
        profiles = {name: op_profile(runners[name]) for name in ("default", "2-D")} if profile else {}
    return {
        "arch": arch,
        "plain": PAIRS[arch],
        "batch": batch,
        "positions": positions,
        "times": times,
        "diff": diff,
        "profiles": profiles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3, help="interleaved rounds per model and batch size")
    parser.add_argument("--warmup", type=int, default=0, help="extra warm-up rounds (each path already runs once)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--profile", action="store_true", help="also print the top ATen ops of one batch-1 call")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    print(
        f"torch {torch.__version__}, timm {timm.__version__}, {_cpu_name()}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    print(f"clips {args.frames}x224x224 fp32, {args.reps} interleaved rounds after a warm-up call each, medians")
    print(f"load average at start: {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}", flush=True)
    rows = []
    for arch in args.models:
        for batch in args.batch:
            t0 = time.perf_counter()
            res = bench_pair(arch, batch, args.frames, args.reps, args.warmup, args.profile and batch == 1)
            rows.append(res)
            t = res["times"]
            print(
                f"  {arch} B={batch}: default {t['default'][0] * 1e3 / batch:.0f} ms/clip, grouped "
                f"{t['grouped'][0] * 1e3 / batch:.0f}, {res['plain']} x{res['positions']} frames "
                f"{t['2-D'][0] * 1e3 / batch:.0f} (max |default - grouped| = {res['diff']:.1e}; "
                f"{time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    load1 = os.getloadavg()
    print(f"load average at end: {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}\n")
    print("| model | 2-D baseline (same spatial work) | batch | default ms/clip | grouped ms/clip | 2-D ms/clip "
          "| default / 2-D | grouped / 2-D | grouped / default | CPU-time default / 2-D |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for res in rows:
        t, b = res["times"], res["batch"]
        d, g, p = (t[k][0] * 1e3 / b for k in ("default", "grouped", "2-D"))
        cpu_ratio = t["default"][1] / t["2-D"][1]
        print(
            f"| {res['arch']} | {res['plain']} x {res['positions']} frames | {b} | {d:.0f} | {g:.0f} | {p:.0f} "
            f"| {d / p:.2f}x | {g / p:.2f}x | {g / d:.2f}x | {cpu_ratio:.2f}x |"
        )
    for res in rows:
        for name, ops in res["profiles"].items():
            label = res["arch"] if name == "default" else res["plain"]
            print(f"\nTop ops, {label} (batch {res['batch']}, self CPU ms / calls, one profiled call):")
            print("  " + "; ".join(f"{op} {ms:.0f}/{n}" for op, ms, n in ops))


if __name__ == "__main__":
    main()
