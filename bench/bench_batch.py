"""Throughput of ``python -m tada batch``: clips/s for 1 vs 2 processes (torchrun) and batch sizes 1 / 8.

Usage::

    .venv/bin/python bench/bench_batch.py [--clips 16] [--big-clips 8] [--workdir DIR]

Two models, CPU, fp32, single view:

* ``tadaconvnextv2_motion.tiny_8f`` (bundled weights) on generated motion clips (8 frames written
  twice, 64 x 64, as in the tests);
* ``tadaconvnextv2_tiny`` with random weights (``pretrained=False``) at 16 x 224 x 224 (its K400
  config with the short side resized to 224 and a 224 centre crop) on ``ffmpeg testsrc2`` clips
  shaped like Kinetics videos (340 x 256, 30 fps, 10 s, x264).

Each configuration runs in fresh processes: ``python bench_batch.py --worker ...`` alone, or under
``python -m torch.distributed.run --standalone --nproc_per_node 2`` (torchrun; 1 torch thread per
rank, as torchrun sets, against torch's default of one thread per core for the single process).
"clips/s" is the summary's figure: videos / wall time of the loop on rank 0 (DataLoader and decoder
processes started, the gather and merge included; interpreter start and model construction excluded);
"end to end" is the whole command's wall time.  One DataLoader worker per rank;
``OMP_WAIT_POLICY=PASSIVE`` as in ``bench_tadaconv.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUNDLED = "tadaconvnextv2_motion.tiny_8f"
BIG = "tadaconvnextv2_tiny"


def make_motion_clips(folder: Path, n: int) -> Path:
    from tada.motion import clip_label, clip_seed, generate_clip
    from tada.motion.media import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        path = folder / f"{i:03d}.mp4"
        clip = generate_clip(clip_seed(7, i), clip_label(7, i), num_frames=8, size=64)
        if not path.exists():
            write_mp4(clip.frames.repeat(2, axis=0), path, fps=8, scale=1)
        lines.append(f"{path.name} {clip.label}")
    (folder / "list.txt").write_text("\n".join(lines) + "\n")
    return folder / "list.txt"


def make_kinetics_like_clips(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "000.mp4"
    if not first.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=340x256:rate=30:duration=10",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(first)],
            check=True,
        )  # fmt: skip
    for i in range(1, n):  # copies: every file is decoded on its own, like a dataset
        path = folder / f"{i:03d}.mp4"
        if not path.exists():
            path.write_bytes(first.read_bytes())
    (folder / "list.txt").write_text("\n".join(f"{i:03d}.mp4" for i in range(n)) + "\n")
    return folder / "list.txt"


def worker(args: argparse.Namespace) -> None:
    """One rank of a benchmark run (under torchrun or alone)."""
    import tada
    from tada.batch import BatchOptions, run_batch

    name, pretrained = BUNDLED, True
    if args.model == "big":  # the K400 16-frame config at 224 px, random weights
        cfg = tada.get_pretrained_cfg(BIG)
        name = tada.register_pretrained(cfg.replace(tag="bench_224", test_scale=224, crop_size=224)).name
        pretrained = False
    summary = run_batch(
        BatchOptions(list=args.list, model=name, out=args.out, batch_size=args.batch_size, workers=1,
                     pretrained=pretrained, quiet=True, device="cpu")
    )  # fmt: skip
    if summary is not None:
        print("SUMMARY " + json.dumps({k: summary[k] for k in ("clips_per_s", "seconds", "videos", "world_size")}))


def measure(model: str, lst: Path, procs: int, batch: int, workdir: Path) -> dict:
    out = workdir / f"out_{model}_{procs}_{batch}.jsonl"
    cmd = [__file__, "--worker", "--model", model, "--list", str(lst), "--out", str(out), "--batch-size", str(batch)]
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs), *cmd]
    else:
        cmd = [sys.executable, *cmd]
    # As bench_tadaconv.py: OpenMP threads that spin while waiting stall on a shared host.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "OMP_WAIT_POLICY": "PASSIVE"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SUMMARY "))
    return {**json.loads(line[8:]), "wall": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=16, help="motion clips (bundled model)")
    p.add_argument("--big-clips", type=int, default=8, help="16 x 224 clips (TAdaConvNeXtV2-T)")
    p.add_argument("--workdir", type=Path, help="where clips and results go (default: a temporary folder)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default="bundled", help=argparse.SUPPRESS)
    p.add_argument("--list", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, default=8, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    lists = {
        "bundled": make_motion_clips(workdir / "motion", args.clips),
        "big": make_kinetics_like_clips(workdir / "kinetics_like", args.big_clips),
    }
    titles = {"bundled": f"{BUNDLED} (8 x 64², bundled)", "big": f"{BIG} (16 x 224², random weights)"}
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs\n")
    print("| model | videos | processes | batch | clips/s | vs 1 process, batch 1 | end to end s |")
    print("|---|---|---|---|---|---|---|")
    for model in ("bundled", "big"):
        base = None
        for procs, batch in ((1, 1), (1, 8), (2, 1), (2, 8)):
            r = measure(model, lists[model], procs, batch, workdir)
            base = base or r["clips_per_s"]
            print(
                f"| {titles[model]} | {r['videos']} | {procs} | {batch} | {r['clips_per_s']:.2f} | "
                f"{r['clips_per_s'] / base:.2f}× | {r['wall']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
