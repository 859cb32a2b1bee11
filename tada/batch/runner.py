"""``run_batch``: score every video of a list with one model, sharded over torchrun ranks.

Per rank: the not-yet-finished list positions are split with :func:`~tada.batch.distributed.shard`;
DataLoader workers decode ahead (``--workers`` processes, each with its own isolated decoder);
the model runs on batches of ``--batch-size`` videos (all their views at once); each batch's rows are
appended to the rank's part file.  At the end the rows meet on rank 0, which writes the merged file
in list order and the summary.

Multi-view scores use :func:`tada.video.average_view_scores`, the function behind the app's
"official views": softmax per view, then the mean over views -- the official test code *sums* the
per-view softmax scores, which ranks the classes identically (the mean is that sum over V).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import tada
from tada.batch import distributed, results
from tada.batch.data import Item, VideoDataset, make_loader
from tada.batch.lists import Entry, ListError, read_list, resolve_labels
from tada.batch.summary import summarise, write_confusion_html
from tada.precision import choose_precision
from tada.video import VideoLimits, average_view_scores

__all__ = ["BatchOptions", "run_batch", "choose_precision", "forward_batch", "calibration_stats"]


@dataclass
class BatchOptions:
    """Everything ``python -m tada batch`` takes (see its ``--help``)."""

    list: str
    model: str
    out: str
    views: str = "single"
    top_k: int = 5
    features: bool = False
    calibration_stats: bool = False
    batch_size: int = 8
    workers: int = 2
    resume: bool = False
    limit: int | None = None
    root: str | None = None
    summary: str | None = None
    device: str | None = None
    precision: str = "auto"
    quiet: bool = False
    pretrained: bool = True
    limits: VideoLimits = field(default_factory=VideoLimits)


@contextlib.contextmanager
def _autocast(device: torch.device, precision: str) -> Iterator[None]:
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def forward_batch(
    model: nn.Module, x: torch.Tensor, *, features: bool = False, precision: str = "fp32"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logits, pooled features or None)`` of one forward pass over a batch of views.

    The pooled feature is what the classifier reads: the input of ``model.head`` for the TAdaConv
    family and the 2-D baseline, ``forward_features(x)["video_features"]`` (the MIT output) for ILA.
    """
    device = x.device
    with torch.inference_mode(), _autocast(device, precision):
        if not features:
            return model(x).float(), None
        head = getattr(model, "head", None)
        if isinstance(head, nn.Module):
            seen: list[torch.Tensor] = []
            handle = head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
            try:
                logits = model(x)
            finally:
                handle.remove()
            return logits.float(), seen[-1].float()
        out = model.forward_features(x)
        if not isinstance(out, dict) or "video_features" not in out:
            raise ValueError(f"{type(model).__name__} exposes no pooled feature (no head, no video_features)")
        return out["logits"].float(), out["video_features"].float()


def calibration_stats(tr: tada.Trace, num_rows: int) -> tuple[str, dict[str, torch.Tensor]] | None:
    """Per layer, one value per input row of the traced batch.

    TAdaConv layers: the variance over time of the calibration factors (per channel, then the mean
    over channels): 0 when a layer calibrates every frame alike.  ILA layers: the mean distance in
    input pixels between the interactive points of adjacent frames.
    """
    if tr.calibration:
        return "calibration_temporal_variance", {
            name: f.reshape(num_rows, f.shape[1], -1).var(dim=-1, unbiased=False).mean(dim=1)
            for name, f in tr.calibration.items()
        }
    if tr.points_px:
        return "point_displacement_px", {
            name: (p[..., 2:] - p[..., :2]).norm(dim=-1).reshape(num_rows, -1).mean(dim=1)
            for name, p in tr.points_px.items()
        }
    return None


class _Runner:
    def __init__(self, opts: BatchOptions, d: distributed.Dist, model: nn.Module, entries: list[Entry]) -> None:
        self.opts, self.d, self.model, self.entries = opts, d, model, entries
        self.cfg = model.pretrained_cfg
        labels = getattr(model, "labels", None)
        self.class_names = [str(c) for c in labels] if labels else [f"class {i}" for i in range(self.cfg.num_classes)]
        self.label_index = resolve_labels(entries, self.class_names)
        self.precision, self.precision_note = choose_precision(model, d.device, opts.precision)

    # --- rows ------------------------------------------------------------------------------------
    def _base_row(self, item: Item) -> dict[str, Any]:
        e = self.entries[item.index]
        return {
            "index": item.index,
            "path": e.path,
            "label": e.label,
            "label_index": self.label_index[item.index],
            "model": self.cfg.name,
            "view_mode": self.opts.views,
            "views": [list(v) for v in item.views],
            "frames": item.indices,
            "top": None,
            "label_rank": None,
            "decode_s": round(item.decode_s, 4),
            "model_s": None,
            "precision": self.precision,
            "error": item.error,
            "error_code": item.error_code,
            "warnings": list(item.warnings),
        }

    def _scored_row(self, item: Item, logits: torch.Tensor, model_s: float) -> dict[str, Any]:
        row = self._base_row(item)
        probs = average_view_scores(logits)
        k = min(self.opts.top_k, probs.numel())
        vals, idx = torch.topk(probs, k)
        row["top"] = [
            {"index": int(i), "name": self.class_names[int(i)], "prob": round(float(v), 6)} for v, i in zip(vals, idx)
        ]
        label = self.label_index[item.index]
        if label is not None:  # 1 + number of classes scored strictly higher than the true one
            row["label_rank"] = int((probs > probs[label]).sum()) + 1
        row["model_s"] = round(model_s, 4)
        return row

    def _run_items(self, items: list[Item]) -> list[dict[str, Any]]:
        """Rows of one decoded batch; a model failure is retried video by video, then reported per video."""
        good = [it for it in items if it.tensor is not None]
        rows = {it.index: self._base_row(it) for it in items if it.tensor is None}
        if good:
            try:
                rows.update(self._score(good))
            except Exception:  # noqa: BLE001 - retried one by one to find the video that fails
                if len(good) == 1:
                    rows.update(self._model_failed(good[0]))
                else:
                    for it in good:
                        try:
                            rows.update(self._score([it]))
                        except Exception:  # noqa: BLE001
                            rows.update(self._model_failed(it))
        return [rows[it.index] for it in items]

    def _model_failed(self, item: Item) -> dict[int, dict[str, Any]]:
        exc = sys.exc_info()[1]
        row = self._base_row(item)
        row["error"] = f"The model failed on this video ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})."
        row["error_code"] = "model_failed"
        return {item.index: row}

    def _score(self, items: list[Item]) -> dict[int, dict[str, Any]]:
        x = torch.cat([it.tensor for it in items]).to(self.d.device, non_blocking=True)
        counts = [int(it.tensor.shape[0]) for it in items]
        t0 = time.perf_counter()
        stats = None
        if self.opts.calibration_stats:
            with tada.trace(self.model) as tr:
                logits, feats = forward_batch(self.model, x, features=self.opts.features, precision=self.precision)
            stats = calibration_stats(tr, x.shape[0])
        else:
            logits, feats = forward_batch(self.model, x, features=self.opts.features, precision=self.precision)
        logits = logits.cpu()  # waits for the device: the time below is the model's
        seconds = time.perf_counter() - t0
        out: dict[int, dict[str, Any]] = {}
        start = 0
        total = sum(counts)
        for it, n in zip(items, counts):
            sl = slice(start, start + n)
            row = self._scored_row(it, logits[sl], seconds * n / total)
            if feats is not None:  # the view average of the pooled features, like the scores
                row["feature"] = feats[sl].mean(dim=0).cpu().tolist()
            if self.opts.calibration_stats:  # a model without TAdaConv/ILA layers gets an empty entry
                kind, layers = stats or (None, {})
                row["calibration_stats"] = {
                    "statistic": kind,
                    "layers": {name: round(float(v[sl].mean()), 8) for name, v in layers.items()},
                }
            out[it.index] = row
            start += n
        return out

    # --- resume ----------------------------------------------------------------------------------
    def _matches(self, row: dict[str, Any]) -> bool:
        i = row["index"]
        return (
            0 <= i < len(self.entries)
            and row.get("path") == self.entries[i].path
            and row.get("model") == self.cfg.name
            and row.get("view_mode") == self.opts.views
            and (not self.opts.features or row.get("error") is not None or isinstance(row.get("feature"), list))
            and (
                not self.opts.calibration_stats
                or row.get("error") is not None
                or isinstance(row.get("calibration_stats"), dict)
            )
            and (
                row.get("error") is not None or len(row.get("top") or []) >= min(self.opts.top_k, self.cfg.num_classes)
            )
        )

    def prior_rows(self) -> list[dict[str, Any]]:
        """Rows of an earlier run that this run keeps (on rank 0; shared with the others by index)."""
        rows: list[dict[str, Any]] = []
        if self.d.is_main:
            if self.opts.resume:
                found = results.read_done(self.opts.out)
                bad = [r for r in found if not self._matches(r)]
                if bad:
                    r = bad[0]
                    raise ListError(
                        f"--resume: {self.opts.out} holds rows made with other settings or another list (row "
                        f"{r['index']}: {r.get('path')}, {r.get('model')}, {r.get('view_mode')} views); run without "
                        "--resume to start over, or write to another --out."
                    )
                rows = found
            else:
                results.remove_parts(self.opts.out)
        return rows

    # --- the run ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        d, opts = self.d, self.opts
        t_start = time.perf_counter()
        try:
            prior = self.prior_rows()
            shared: Any = {r["index"] for r in prior}
        except ListError as exc:  # every rank stops with rank 0's message, none waits for the others
            prior, shared = [], str(exc)
        shared = d.all_gather(shared if d.is_main else None)[0]
        if isinstance(shared, str):
            raise ListError(shared)
        done = set(shared)
        remaining = [i for i in range(len(self.entries)) if i not in done]
        mine = distributed.shard(remaining, d.rank, d.world_size)
        d.barrier()  # rank 0 has cleared old part files before anyone writes
        dataset = VideoDataset([e.path for e in self.entries], mine, self.cfg, opts.views, opts.limits)
        loader = make_loader(dataset, opts.batch_size, opts.workers)
        writer = results.PartWriter(results.parts_dir(opts.out) / f"rank{d.rank}.jsonl")
        new_rows: list[dict[str, Any]] = []
        bar = self._progress(len(mine), len(remaining), len(done))
        try:
            for items in loader:
                rows = self._run_items(items)
                writer.write(rows)
                new_rows.extend(rows)
                if bar is not None:
                    bar.update(len(items))
        finally:
            writer.close()
            if bar is not None:
                bar.close()
        ran = d.total(len(new_rows))
        gathered = d.gather(new_rows)
        seconds = time.perf_counter() - t_start
        summary = None
        if d.is_main:
            rows = prior + [r for part in gathered for r in part]
            merged = results.merge(opts.out, rows)
            missing = len(self.entries) - len(merged)
            if ran != len(remaining) or missing:
                raise RuntimeError(
                    f"{missing} of {len(self.entries)} videos have no row (ran {ran} of {len(remaining)}); "
                    f"the part files are kept in {results.parts_dir(opts.out)}: rerun with --resume"
                )
            results.remove_parts(opts.out)
            summary = summarise(merged, self.class_names, self.cfg, opts.views, seconds, ran)
            summary.update(
                world_size=d.world_size,
                backend=d.backend,
                device=str(d.device),
                precision=self.precision,
                precision_note=self.precision_note,
                batch_size=opts.batch_size,
                workers=opts.workers,
                out=str(opts.out),
                features=str(results.features_path(opts.out)) if opts.features else None,
            )
            if opts.summary:
                html = Path(opts.summary).with_suffix(".confusion.html")
                summary["confusion_html"] = str(html) if write_confusion_html(summary, html) else None
                results.write_atomic(opts.summary, (json.dumps(summary, indent=1) + "\n").encode("utf-8"))
        d.barrier()
        return summary

    def _progress(self, mine: int, remaining: int, done: int) -> Any:
        if not self.d.is_main or self.opts.quiet:
            return None
        from tqdm.auto import tqdm

        ranks = f" (rank 0 of {self.d.world_size}; {remaining} videos over all ranks)" if self.d.distributed else ""
        if done:
            print(f"resuming: {done} videos already done, {remaining} to go", file=sys.stderr)
        return tqdm(total=mine, unit="clip", desc=f"{self.cfg.name}{ranks}", file=sys.stderr, dynamic_ncols=True)


def run_batch(opts: BatchOptions) -> dict[str, Any] | None:
    """Run a batch job (see the module docstring); returns the summary on rank 0, None on the others."""
    if opts.views not in ("single", "official"):
        raise ListError("--views must be 'single' or 'official'")
    if opts.batch_size < 1 or opts.workers < 0 or opts.top_k < 1:
        raise ListError("--batch-size and --top-k must be at least 1, --workers at least 0")
    d = distributed.init(opts.device)
    try:
        entries = read_list(opts.list, opts.root)
        if opts.limit is not None:
            entries = entries[: max(0, opts.limit)]
        model = tada.create_model(opts.model, pretrained=opts.pretrained).to(d.device).eval()
        return _Runner(opts, d, model, entries).run()
    finally:
        d.close()
