"""``python -m tada compare CLIP --models A,B [--method NAME] [--json]``: the app's Compare view, for scripts.

2-4 models on the identical frames (decoded once with the first model's sampling protocol, each
model's own transform), through the same :class:`app.service.Service` as the app: top-k side by side,
the temporal counterfactuals (reversed / shuffled / frozen / half rate) of every model in one table,
and with ``--method`` one attribution method per model.  Errors print one ``error:`` line (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

HELP = "compare 2-4 models on the identical frames of a clip (top-k, counterfactuals, attributions)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", help="video file (mp4, webm, mov, mkv, avi ...)")
    p.add_argument(
        "--models",
        required=True,
        help="2 to 4 comma-separated variant names (see `python -m tada list`); the first one's sampling "
        "protocol chooses the frames every model gets",
    )
    p.add_argument(
        "--method",
        help="attribution method run on every model (integrated_gradients, saliency, smoothgrad, occlusion, "
        "temporal, gradcam, rollout); default: none",
    )
    p.add_argument("--steps", type=int, help="integration steps (integrated_gradients) / samples (smoothgrad)")
    p.add_argument("--top-k", type=int, default=5, help="classes per model (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON (frames and their hash, top-k, counterfactuals)")
    p.add_argument("--maps", action="store_true", help="with --json and --method: include the attribution maps")
    p.add_argument("--device", help="cpu, cuda ... (default: a GPU when present)")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in (headers, *rows)]


def _options(method: str | None, steps: int | None) -> dict[str, Any]:
    from visualizations import METHODS

    entry = METHODS.get(method or "")
    return {entry.steps: int(steps)} if steps and entry is not None and entry.steps else {}


def run(args: argparse.Namespace) -> int:
    from app.service import Service

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    service = Service(device=args.device)
    c = service.compare(args.clip, names, args.method or None, max(1, args.top_k), **_options(args.method, args.steps))
    if args.json:
        out = {"clip": args.clip, **c.to_dict(maps=args.maps)}
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    print(f"Comparing {len(c.models)} models on {args.clip}")
    print(c.frames_note())
    same = "identical for every model" if c.same_frames else "NOT identical"
    print(f"frames: {' '.join(f'f{i}' for i in c.frame_indices or [])}; SHA-256 {c.frames_sha256[:16]}… ({same})")
    for m in c.models:
        notes = f"; {'; '.join(m.notes)}" if m.notes else ""
        print(f"  {m.name}: frames {m.frames_sha256[:16]}…, {m.transform}{notes}")
    print(f"\nTop-{c.k}")
    print("\n".join(_table(*c.topk_table())))
    print("\nTemporal counterfactuals (the prediction on the edited clip · probability left to the original one)")
    print("\n".join(_table(*c.counterfactual_table())))
    if c.method:
        print(f"\n{c.method}: share of each model's importance per frame")
        headers = ["model", *(f"f{i}" for i in c.frame_indices or [])]
        rows, skipped = [], []
        for m in c.models:
            if m.attribution is None:
                skipped.append(f"{m.short}: not applicable ({m.attribution_error})")
                continue
            imp = [abs(float(x)) for x in m.attribution.frame_importance]
            total = sum(imp) or 1.0
            rows.append([m.short, *(f"{x / total:.2f}" for x in imp)])
        if rows:
            print("\n".join(_table(headers, rows)))
        for line in skipped:
            print(line)
    for w in c.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0
