"""A timeline of predictions over a whole video: the model applied to sliding windows.

``compute_timeline(path, model)`` places windows over the clip, samples each window with the
model's own protocol (interval, segment or uniform sampling inside the window), decodes only the
frames those windows need (the isolated decoder worker, one window at a time, so the cost is the
frames decoded and the seeks, not the clip's duration), and runs the model on batches of windows.

The window length is the model's own clip: for interval sampling exactly the span it covers
(``num_frames * sampling_rate`` frames at ``target_fps``); segment/uniform-sampled models spread their
frames over a whole training clip, so the window is the typical length of the clips of the data set
they were trained on (:data:`CLIP_SECONDS`). The stride is the user's, or the smallest that keeps the
work at ``max_windows`` windows.

For TAdaConv models each window also gets its *calibration variation*: the temporal standard
deviation of the per-frame calibration factors, averaged over channels and layers — where in the
video temporal adaptation is strongest.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tada.errors import SettingsError
from tada.trace import trace
from tada.video import decode
from tada.video.info import VideoInfo, VideoLimits
from tada.video.sampling import sample_indices
from tada.video.transforms import VideoTransform
from tada.video.worker import get_pool

__all__ = ["CLIP_SECONDS", "Timeline", "Window", "compute_timeline", "plan_windows"]

#: Typical length of one training clip, by label set (Kinetics clips are 10 s, SSV2 clips ~4 s, the
#: bundled motion task's clips 1 s: 8 frames at 8 fps). Used as the window of segment/uniform models.
CLIP_SECONDS: dict[str, float] = {"kinetics400": 10.0, "k710": 10.0, "ssv2": 4.0, "motion": 1.0}
DEFAULT_CLIP_SECONDS = 8.0
#: Windows computed per request when the stride is automatic (bounds the work of a long video).
MAX_WINDOWS = 120

Progress = Callable[[float, str], None]


@dataclass
class Window:
    """One window of the timeline: where it lies and what the model said about it."""

    index: int
    start_s: float
    end_s: float
    frames: np.ndarray  # source frame indices fed to the model
    probs: np.ndarray  # (K,) class probabilities
    calibration_variation: float | None = None  # TAdaConv models only

    def top(self, labels: list[str], k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.probs)[:k]
        return [(labels[i], float(self.probs[i])) for i in order]


@dataclass
class Timeline:
    """Predictions over sliding windows of one video (see :func:`compute_timeline`)."""

    model: str
    labels: list[str]
    windows: list[Window]
    info: VideoInfo
    window_s: float
    stride_s: float
    sampling: str
    num_frames: int
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def probs(self) -> np.ndarray:
        """(num_windows, K) class probabilities."""
        return np.stack([w.probs for w in self.windows]) if self.windows else np.zeros((0, len(self.labels)))

    @property
    def centres_s(self) -> np.ndarray:
        return np.asarray([(w.start_s + w.end_s) / 2 for w in self.windows])

    def top_classes(self, k: int = 5) -> list[int]:
        """Class ids that reach the highest probability anywhere in the video, best first."""
        peak = self.probs.max(axis=0) if self.windows else np.zeros(len(self.labels))
        return [int(i) for i in np.argsort(-peak)[:k]]

    def window_at(self, t: float) -> Window:
        """The window whose centre is nearest to time ``t`` (seconds)."""
        if not self.windows:
            raise ValueError("the timeline has no window")
        return self.windows[int(np.argmin(np.abs(self.centres_s - float(t))))]

    def rows(self, top_k: int = 5) -> list[dict[str, Any]]:
        """One plain dict per window (what the JSON export, the CSV export and ``--json`` print)."""
        out = []
        for w in self.windows:
            row: dict[str, Any] = {
                "window": w.index,
                "start_s": round(w.start_s, 4),
                "end_s": round(w.end_s, 4),
                "frames": [int(i) for i in w.frames],
                "top": [{"label": label, "score": round(p, 6)} for label, p in w.top(self.labels, top_k)],
            }
            if w.calibration_variation is not None:
                row["calibration_variation"] = round(w.calibration_variation, 6)
            out.append(row)
        return out

    def to_dict(self, top_k: int = 5) -> dict[str, Any]:
        return {
            "model": self.model,
            "video": {
                "path": os.path.basename(self.info.path),
                "duration_s": round(self.info.duration, 4),
                "fps": round(self.info.fps, 4),
                "num_frames": self.info.num_frames,
            },
            "sampling": {
                "protocol": self.sampling,
                "frames_per_window": self.num_frames,
                "window_s": round(self.window_s, 4),
                "stride_s": round(self.stride_s, 4),
            },
            "warnings": list(self.warnings),
            "windows": self.rows(top_k),
        }

    def to_csv(self, top_k: int = 5) -> str:
        """CSV with one row per window: times, frame indices (space-separated) and top-k labels/scores."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        header = ["window", "start_s", "end_s", "frames", "model", "sampling"]
        for k in range(1, top_k + 1):
            header += [f"top{k}_label", f"top{k}_score"]
        has_cal = any(w.calibration_variation is not None for w in self.windows)
        if has_cal:
            header.append("calibration_variation")
        writer.writerow(header)
        for row in self.rows(top_k):
            line = [row["window"], row["start_s"], row["end_s"], " ".join(map(str, row["frames"]))]
            line += [self.model, self.sampling]
            for item in row["top"]:
                line += [item["label"], item["score"]]
            if has_cal:
                line.append(row.get("calibration_variation", ""))
            writer.writerow(line)
        return buf.getvalue()


def _clip_seconds(cfg: Any, fps: float) -> float:
    """The length of the model's own clip in seconds (the window)."""
    if cfg.sampling == "interval":
        rate = float(cfg.sampling_rate or 1)
        target = float(getattr(cfg, "target_fps", None) or 30.0)
        return int(cfg.num_frames) * rate / target
    return CLIP_SECONDS.get(getattr(cfg, "label_set", ""), DEFAULT_CLIP_SECONDS)


def plan_windows(
    info: VideoInfo,
    cfg: Any,
    *,
    stride_s: float | None = None,
    window_s: float | None = None,
    max_windows: int = MAX_WINDOWS,
) -> tuple[list[tuple[float, float, np.ndarray]], float, float]:
    """Windows over the video: ``([(start_s, end_s, frame indices)], window_s, stride_s)``.

    A clip shorter than one window gets one window over all of it. With ``stride_s`` None the stride
    is the window length, or longer so that at most ``max_windows`` windows cover the clip; an
    explicit stride that would need more windows than ``max_windows`` raises :class:`SettingsError`.
    """
    cfg = getattr(cfg, "pretrained_cfg", cfg)
    fps = float(info.fps) or 25.0
    n = int(info.num_frames)
    window = float(window_s) if window_s else _clip_seconds(cfg, fps)
    if window <= 0:
        raise SettingsError("The window must be longer than 0 s.")
    window_frames = max(1, min(n, int(round(window * fps))))
    window = window_frames / fps
    span = max(n - window_frames, 0) / fps  # where window starts can lie
    if stride_s is None:
        stride = max(window, span / max(max_windows - 1, 1))
    else:
        stride = float(stride_s)
        if stride <= 0:
            raise SettingsError("The stride must be longer than 0 s.")
        needed = int(math.floor(span / stride + 1e-9)) + 1
        if needed > max_windows:
            raise SettingsError(
                f"A stride of {stride:g} s needs {needed} windows over this {info.duration:.0f}-s clip; at most "
                f"{max_windows} are computed per request. Choose a stride of at least {span / (max_windows - 1):.2f} s."
            )
    count = int(math.floor(span / stride + 1e-9)) + 1
    windows = []
    for i in range(count):
        first = min(int(round(i * stride * fps)), n - window_frames)
        local = sample_indices(window_frames, fps, cfg)
        idx = np.clip(first + local, 0, n - 1).astype(np.int64)
        windows.append((first / fps, (first + window_frames) / fps, idx))
    return windows, window, stride


def _calibration_variation(tr: Any, batch: int) -> np.ndarray | None:
    """Per sample: temporal std of the calibration factors, mean over channels and layers."""
    values = []
    for factors in tr.calibration.values():
        f = factors.detach().float().reshape(batch, factors.shape[1], -1)
        if f.shape[-1] > 1:
            values.append(f.std(dim=-1).mean(dim=1))
    if not values:
        return None
    return torch.stack(values).mean(dim=0).cpu().numpy()


@torch.no_grad()
def compute_timeline(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    stride_s: float | None = None,
    window_s: float | None = None,
    max_windows: int = MAX_WINDOWS,
    batch_size: int = 8,
    limits: VideoLimits | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    labels: list[str] | None = None,
    display_name: str | None = None,
) -> Timeline:
    """The model's predictions over sliding windows of the whole video at ``path``.

    Args:
        model: a model built by ``tada.create_model`` (its ``pretrained_cfg`` says how to sample and
            preprocess; its ``labels`` name the classes unless ``labels`` is given).
        stride_s / window_s: seconds between window starts / window length (default: automatic).
        max_windows: most windows per call.
        progress: ``progress(fraction, text)``; raise from it to cancel.

    Raises:
        VideoError: the file cannot be used. SettingsError: a stride asking for too many windows.
    """
    cfg = model.pretrained_cfg
    transform = VideoTransform(cfg, "single")
    limits = limits or VideoLimits()
    path = os.fspath(path)
    decode.check_path(path, limits)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    names = list(labels) if labels is not None else list(getattr(model, "labels", None) or [])
    timeout = limits.decode_timeout_s
    t_decode = t_model = 0.0
    windows: list[Window] = []
    warnings: dict[str, None] = {}
    track_calibration = getattr(cfg, "sampling", "") != "uniform"  # ILA has no calibration factors

    with get_pool().lease() as worker:
        t0 = time.perf_counter()
        info: VideoInfo = worker.call(decode.probe_file, (path, limits, "auto"), {}, timeout)
        t_decode += time.perf_counter() - t0
        plan, window, stride = plan_windows(info, cfg, stride_s=stride_s, window_s=window_s, max_windows=max_windows)
        pending: list[tuple[int, float, float, np.ndarray, torch.Tensor]] = []

        def run_batch() -> None:
            nonlocal t_model
            t1 = time.perf_counter()
            x = torch.stack([p[4] for p in pending]).to(device)
            if track_calibration:
                with trace(model) as tr:
                    logits = model(x)
                variation = _calibration_variation(tr, len(pending))
            else:
                logits, variation = model(x), None
            probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for k, (i, s, e, idx, _) in enumerate(pending):
                cal = None if variation is None else float(variation[k])
                windows.append(Window(i, s, e, idx, probs[k], cal))
            pending.clear()
            t_model += time.perf_counter() - t1

        for i, (start, end, idx) in enumerate(plan):
            if progress is not None:
                progress(i / len(plan), f"window {i + 1} of {len(plan)} ({start:.0f} s)")
            t1 = time.perf_counter()
            unique, inverse = np.unique(idx, return_inverse=True)
            result = worker.call(decode.read_file, (path, unique, limits, "auto"), {}, timeout)
            warnings.update(dict.fromkeys(result.warnings))
            tensor = transform.crops(result.frames[inverse])[0]
            del result
            t_decode += time.perf_counter() - t1
            pending.append((i, start, end, idx, tensor))
            if len(pending) >= batch_size:
                run_batch()
        if pending:
            run_batch()
    if progress is not None:
        progress(1.0, f"{len(windows)} windows")
    if len(names) != (windows[0].probs.shape[0] if windows else len(names)):
        names = [f"class {i}" for i in range(windows[0].probs.shape[0])]
    return Timeline(
        model=display_name or getattr(cfg, "name", type(model).__name__),
        labels=names,
        windows=windows,
        info=info,
        window_s=window,
        stride_s=stride,
        sampling=str(cfg.sampling),
        num_frames=int(cfg.num_frames),
        warnings=tuple(warnings),
        timings={"decode_s": t_decode, "model_s": t_model},
    )
