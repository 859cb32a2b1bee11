"""``python -m tada batch LIST --model NAME --out results.jsonl``: many videos, one JSON line each.

Also under ``torchrun --nproc_per_node N -m tada batch ...`` (shards over ranks; see :mod:`tada.batch`).
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "score every video of a list or folder (accuracy, per-video rows, features); shards under torchrun"

__all__ = ["HELP", "configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "list",
        metavar="LIST",
        help="'path label' / 'path' text lines, a CSV with a header, the SSV2 json, or a folder of videos",
    )
    p.add_argument("--model", required=True, help="variant name (see `python -m tada list`), local-dir: or hf-hub:")
    p.add_argument("--out", required=True, help="results file: one JSON line per video, in list order")
    p.add_argument(
        "--views",
        choices=("single", "official"),
        default="single",
        help="one centred view, or the model's official clips x crops test (softmax per view, averaged)",
    )
    p.add_argument("--top-k", type=int, default=5, help="classes kept per row (default 5)")
    p.add_argument("--features", action="store_true", help="also store each video's pooled feature (.safetensors)")
    p.add_argument(
        "--calibration-stats",
        action="store_true",
        help="per-layer statistics: TAdaConv factor temporal variance, ILA point displacement",
    )
    p.add_argument("--batch-size", type=int, default=8, help="videos per model batch (all their views; default 8)")
    p.add_argument("--workers", type=int, default=2, help="decoding processes per rank (0: decode inline; default 2)")
    p.add_argument("--resume", action="store_true", help="keep the rows of an interrupted run, do only the rest")
    p.add_argument("--limit", type=int, help="only the first N videos of the list")
    p.add_argument("--root", help="folder that relative paths are relative to (default: the list's folder)")
    p.add_argument("--summary", metavar="JSON", help="write the summary here (and the confusion matrix .html)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present; cuda:LOCAL_RANK under torchrun)")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 on a GPU when the app's tolerance check passes (default); bf16: check on any device",
    )
    p.add_argument("--random-weights", action="store_true", help="build the model without pretrained weights")
    p.add_argument("--json", action="store_true", help="print the summary as JSON, no progress bar")


def run(args: argparse.Namespace) -> int:
    from tada.batch.runner import BatchOptions, run_batch
    from tada.batch.summary import format_summary

    opts = BatchOptions(
        list=args.list,
        model=args.model,
        out=args.out,
        views=args.views,
        top_k=args.top_k,
        features=args.features,
        calibration_stats=args.calibration_stats,
        batch_size=args.batch_size,
        workers=args.workers,
        resume=args.resume,
        limit=args.limit,
        root=args.root,
        summary=args.summary,
        device=args.device,
        precision=args.precision,
        quiet=args.json,
        pretrained=not args.random_weights,
    )
    summary = run_batch(opts)
    if summary is None:  # not rank 0
        return 0
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "confusion_matrix"}, indent=1))
    else:
        print(format_summary(summary))
        print(f"rows: {summary['out']}" + (f"; summary: {args.summary}" if args.summary else ""), file=sys.stderr)
    return 0
