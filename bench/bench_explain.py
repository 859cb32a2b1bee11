"""Time every explanation method on the CPU.

.venv/bin/python bench/bench_explain.py [--threads 2] [--reps 3] [--skip-big]

Cases (one clip, batch 1, fp32):

* the bundled TAdaConvNeXtV2 motion model at its own size (8 x 64 x 64) and at 8 x 112 x 112 (the convnet
  takes any size; the targets in the issue refer to 8 x 112 x 112: IG with 32 steps <= 3 s, every other
  method <= 1 s);
* the bundled TAdaFormer motion model (8 x 32 x 32, fixed size) for the transformer paths (Grad-CAM on
  the residual stream, attention rollout);
* TAdaConvNeXtV2-T at 16 x 224 x 224 with random weights (the architecture sets the cost).

Each method runs once to warm up, then ``--reps`` times; the table shows the median wall time and,
where a target applies, the ratio to it.  Prints figures only (targets live in the README).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import tada  # noqa: E402
from visualizations import deletion_curve, explain, sanity_check  # noqa: E402

BUNDLED_CONV = "tadaconvnextv2_motion.tiny_8f"
BUNDLED_FORMER = "tadaformer_motion.tiny_8f"

#: (label, method, options); targets (seconds) apply to the bundled model at 8 x 112 x 112.
METHODS: list[tuple[str, str, dict[str, Any]]] = [
    ("IG, 32 steps", "integrated_gradients", {"n_steps": 32}),
    ("Saliency", "saliency", {}),
    ("SmoothGrad, 8 samples", "smoothgrad", {"nt_samples": 8}),
    ("Occlusion (2 frames, default grid)", "occlusion", {}),
    ("Frame ablation", "temporal", {}),
    ("Grad-CAM", "gradcam", {}),
    ("Attention rollout", "rollout", {}),
    ("Calibration (trace)", "calibration", {}),
    ("ILA points (trace)", "points", {}),
    ("Counterfactuals (4 edits)", "counterfactuals", {}),
]
TARGETS = {"integrated_gradients": 3.0}
DEFAULT_TARGET = 1.0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _time(fn: Callable[[], Any], reps: int) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds (all threads) over ``reps`` runs."""
    fn()  # warm-up (allocator, lazy imports, text caches)
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _applies(model: torch.nn.Module, method: str) -> bool:
    names = [n for n, _ in model.named_modules()]
    if method == "rollout":
        return any(n.startswith(("backbone.layers.", "visual.transformer.")) for n in names)
    if method == "calibration":
        return any(n.endswith(("_rf", "rf_func")) for n in names)
    if method == "points":
        return any(n.endswith("message_attn") for n in names)
    return True


def _load(name: str, **kwargs: Any) -> tuple[torch.nn.Module, str]:
    try:
        return tada.create_model(name, pretrained=True, **kwargs), "bundled weights"
    except Exception as exc:  # noqa: BLE001 - the bench still runs (and says so) without the bundle
        return tada.create_model(name, **kwargs), f"RANDOM weights ({type(exc).__name__}: bundle not loadable)"


def bench_case(title: str, model: torch.nn.Module, x: torch.Tensor, reps: int, targets: bool) -> None:
    print(f"\n### {title}\n")
    print("| method | wall s | CPU s | target s | wall / target |" if targets else "| method | wall s | CPU s |")
    print("|---|---:|---:|---:|---:|" if targets else "|---|---:|---:|")
    ig = None
    for label, method, opts in METHODS:
        if not _applies(model, method):
            continue
        secs, cpu = _time(lambda m=method, o=opts: explain(model, x, m, **o), reps)
        if method == "integrated_gradients":
            ig = explain(model, x, method, **opts)
        row = f"| {label} | {secs:.3f} | {cpu:.3f} |"
        if targets:
            target = TARGETS.get(method, DEFAULT_TARGET)
            row += f" {target:.1f} | {secs / target:.2f} |"
        print(row, flush=True)
    extra = [("Sanity check (Grad-CAM, trained + randomised)", lambda: sanity_check(model, x, "gradcam"))]
    if ig is not None:
        extra.append(("Deletion curve (11 steps, IG order + random)", lambda: deletion_curve(model, x, ig)))
    for label, fn in extra:
        secs, cpu = _time(fn, reps)
        row = f"| {label} | {secs:.3f} | {cpu:.3f} |"
        if targets:
            row += f" {DEFAULT_TARGET:.1f} | {secs / DEFAULT_TARGET:.2f} |"
        print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true", help="skip TAdaConvNeXtV2-T at 16x224x224")
    parser.add_argument("--only-big", action="store_true", help="only TAdaConvNeXtV2-T at 16x224x224")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"CPU: {_cpu_name()} ({os.cpu_count()} cores, load average {load:.1f} at start), torch {torch.__version__}, "
        f"{args.threads} threads, median of {args.reps} runs"
    )

    if not args.only_big:
        conv, how = _load(BUNDLED_CONV)
        own = conv.pretrained_cfg.crop_size
        small = torch.randn(1, 3, 8, own, own)
        bench_case(f"{BUNDLED_CONV} ({how}), 8 x {own} x {own} (its own size)", conv, small, args.reps, targets=False)
        big = torch.randn(1, 3, 8, 112, 112)
        bench_case(f"{BUNDLED_CONV} ({how}), 8 x 112 x 112", conv, big, args.reps, targets=True)
        former, how = _load(BUNDLED_FORMER)
        side = former.pretrained_cfg.crop_size
        x = torch.randn(1, 3, 8, side, side)
        bench_case(f"{BUNDLED_FORMER} ({how}), 8 x {side} x {side}", former, x, args.reps, targets=False)

    if not args.skip_big:
        model = tada.create_model("tadaconvnextv2_tiny", num_frames=16)
        x = torch.randn(1, 3, 16, 224, 224)
        bench_case("tadaconvnextv2_tiny (random weights), 16 x 224 x 224", model, x, max(1, args.reps // 3), False)


if __name__ == "__main__":
    main()
