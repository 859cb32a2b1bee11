"""``python -m tada predict CLIP [--model NAME] [--json]``: the app's prediction, for scripts.

Uses the same :class:`app.service.Service` as the app, so the numbers are the app's numbers.  A bad
clip (or a model without weights) prints one ``error:`` line on stderr and exits with status 1
(:func:`tada.cli.main` does that for every command).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "predict the top classes of a video clip (default model: the bundled one)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", help="video file (mp4, webm, mov, mkv, avi ...)")
    p.add_argument("--model", help="variant name (see `python -m tada list`); default: the bundled default model")
    p.add_argument("--json", action="store_true", help="print JSON (top-k, frames, timestamps, timings)")
    p.add_argument("--top-k", type=int, default=5, help="how many classes to print (default 5)")
    p.add_argument(
        "--views", choices=("single", "official"), default="single", help="one view, or the official multi-view test"
    )
    p.add_argument("--frames", type=int, help="frames fed to the model (default: the model's own)")
    p.add_argument("--classes", help="ILA open vocabulary: comma-separated class phrases to score")
    p.add_argument("--device", help="cpu, cuda ... (default: a GPU when present)")
    p.add_argument(
        "--timeline",
        action="store_true",
        help="predict every window of the whole clip (sliding windows of the model's own clip length)",
    )
    p.add_argument("--stride", type=float, help="with --timeline: seconds between windows (default: automatic)")
    p.add_argument("--window", type=float, help="with --timeline: window length in seconds (default: the model's)")
    p.add_argument("--csv", action="store_true", help="with --timeline: print CSV instead of a table")


def _default_model(service: Any) -> str:
    name = service.default_model()
    if not name:
        raise RuntimeError("no bundled model is installed; pass --model NAME (see `python -m tada list`)")
    return name


def _timeline(args: argparse.Namespace, name: str, device: str) -> int:
    import tada
    from tada.timeline import compute_timeline

    model = tada.create_model(name, pretrained=True).eval().to(device)
    tl = compute_timeline(args.clip, model, stride_s=args.stride, window_s=args.window, device=device)
    k = max(1, args.top_k)
    if args.json:
        json.dump(tl.to_dict(k), sys.stdout, indent=1)
        print()
    elif args.csv:
        sys.stdout.write(tl.to_csv(k))
    else:
        print(
            f"{tl.model} on {args.clip}: {len(tl.windows)} windows of {tl.window_s:.2f} s every {tl.stride_s:.2f} s "
            f"({tl.num_frames} frames each, {tl.sampling} sampling)"
        )
        for row in tl.rows(1):
            best = row["top"][0]
            print(f"{row['start_s']:9.2f}-{row['end_s']:<9.2f} {best['label']}  {100 * best['score']:5.1f}%")
    for w in tl.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    from app.service import Sampling, Service

    service = Service(device=args.device)
    name = args.model or _default_model(service)
    if args.timeline:
        return _timeline(args, name, str(service.device))
    analysis = service.analyse(
        args.clip,
        name,
        Sampling(frames=args.frames, views=args.views),
        class_names=args.classes,
    )
    top = analysis.top(max(1, args.top_k))
    if args.json:
        out = {
            "clip": args.clip,
            "model": analysis.model_name,
            "top": [{"label": label, "score": round(score, 6)} for label, score in top],
            "views": analysis.clip.num_views,
            "frames": analysis.view.frame_indices,
            "timestamps": [round(t, 4) for t in analysis.view.frame_timestamps],
            "device": analysis.device,
            "precision": analysis.precision,
            "timings_s": {k: round(v, 4) for k, v in analysis.timings.items()},
            "warnings": list(analysis.clip.warnings),
        }
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    cfg = analysis.cfg
    print(
        f"{analysis.model_name} on {args.clip}: {cfg.num_frames} frames ({cfg.sampling} sampling), "
        f"{analysis.clip.num_views} view(s)"
    )
    width = max(len(label) for label, _ in top)
    for i, (label, score) in enumerate(top, 1):
        print(f"{i:>2}. {label.ljust(width)}  {100 * score:5.1f}%")
    for w in analysis.clip.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0
