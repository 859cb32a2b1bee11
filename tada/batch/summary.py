"""What a batch run adds up to: accuracies, a confusion matrix, error counts, speed.

Accuracies count the rows that have a label and a prediction; a file that could not be read is
counted under ``errors`` (by the video layer's code), not as a wrong prediction, and the number of
such rows is always reported next to the accuracies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["summarise", "format_summary", "write_confusion_html"]


def summarise(
    rows: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    cfg: Any,
    view_mode: str,
    seconds: float | None = None,
    clips_run: int | None = None,
) -> dict[str, Any]:
    """The summary of merged rows (see the module docstring).

    ``seconds``/``clips_run``: wall time and number of videos of *this* run (a resumed run does not
    count the rows it found done), for ``clips_per_s``.
    """
    k = len(class_names)
    scored = [r for r in rows if r.get("error") is None and r.get("label_index") is not None]
    ranks = np.asarray([r["label_rank"] for r in scored], dtype=np.int64)
    truth = np.asarray([r["label_index"] for r in scored], dtype=np.int64)
    pred = np.asarray([r["top"][0]["index"] for r in scored], dtype=np.int64)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth, pred), 1)
    support = confusion.sum(1)
    per_class = {class_names[c]: round(100.0 * confusion[c, c] / support[c], 4) for c in range(k) if support[c] > 0}
    pct = lambda n: round(100.0 * n / len(scored), 4) if scored else None  # noqa: E731
    errors = Counter(r.get("error_code") or "error" for r in rows if r.get("error") is not None)
    reported = None
    if getattr(cfg, "reported_top1", None) is not None:
        official = f"{cfg.num_clips}x{cfg.num_crops}"
        reported = {
            "top1": cfg.reported_top1,
            "views": cfg.reported_views,
            "same_protocol": (cfg.reported_views or official) == (official if view_mode == "official" else "1x1"),
        }
    return {
        "model": cfg.name,
        "views": view_mode,
        "aggregation": "softmax per view, averaged over views (the official sum of softmax, divided by the view count)",
        "videos": len(rows),
        "scored": len(scored),
        "errors": sum(errors.values()),
        "error_codes": dict(sorted(errors.items())),
        "top1": pct(int((ranks == 1).sum())),
        "top5": pct(int((ranks <= 5).sum())),
        "mean_class_accuracy": round(float(np.mean(list(per_class.values()))), 4) if per_class else None,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist() if scored else None,
        "class_names": list(class_names),
        "reported": reported,
        "seconds": None if seconds is None else round(seconds, 3),
        "clips_run": clips_run,
        "clips_per_s": round(clips_run / seconds, 3) if seconds and clips_run else None,
    }


def format_summary(s: dict[str, Any]) -> str:
    """A few human lines for the terminal."""
    lines = [f"{s['model']}: {s['videos']} videos ({s['views']} views), {s['scored']} scored, {s['errors']} errors"]
    if s["top1"] is not None:
        lines.append(
            f"top-1 {s['top1']:.2f} %  top-5 {s['top5']:.2f} %  mean class accuracy {s['mean_class_accuracy']:.2f} %"
        )
    if s["reported"]:
        r = s["reported"]
        note = "" if r["same_protocol"] else " (other views than this run)"
        lines.append(f"reported top-1 {r['top1']:.1f} % ({r['views'] or '?'} views){note}")
    if s["error_codes"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in s["error_codes"].items()))
    if s["clips_per_s"]:
        lines.append(f"{s['clips_run']} videos in {s['seconds']:.1f} s: {s['clips_per_s']:.2f} clips/s")
    return "\n".join(lines)


def write_confusion_html(s: dict[str, Any], path: str | Path) -> Path | None:
    """The confusion matrix as an interactive plotly heatmap (rows: true class, columns: predicted).

    plotly.js goes into ``plotly.min.js`` beside the page (one copy, works offline).
    """
    if s.get("confusion_matrix") is None:
        return None
    import plotly.graph_objects as go

    names = s["class_names"]
    cm = np.asarray(s["confusion_matrix"], dtype=float)
    rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig = go.Figure(
        go.Heatmap(
            z=rows * 100,
            x=names,
            y=names,
            customdata=cm,
            colorscale="Blues",
            colorbar={"title": "% of true class"},
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata:.0f} videos (%{z:.1f} %)<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{s['model']}: top-1 {s['top1']:.2f} % on {s['scored']} videos ({s['views']} views)",
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        width=max(600, 14 * len(names) + 250),
        height=max(550, 14 * len(names) + 200),
    )
    path = Path(path)
    fig.write_html(str(path), include_plotlyjs="directory")
    return path
