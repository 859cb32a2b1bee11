"""A timeline of predictions over a whole video: the model applied to sliding windows.

``compute_timeline(path, model)`` places windows over the clip, samples each window with the
model's own protocol (interval, segment or uniform sampling inside the window), decodes only the
frames those windows need and runs the model on batches of windows.  The cost is the frames decoded
and the seeks, not the clip's duration: the isolated decoder worker reads the windows in time order,
a batch of windows per call, keeping the file open and decoding on where that is cheaper than a seek,
and sends only the pixels the model's resize reads (the input tensors are bit for bit those of whole
frames).  The frames to decode are counted from the keyframe index first; a request over
:data:`MAX_DECODED_FRAMES` is refused with a message saying how many windows fit.

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

__all__ = ["CLIP_SECONDS", "MAX_DECODED_FRAMES", "Timeline", "Window", "compute_timeline", "plan_windows"]

#: Typical length of one clip, by label set (Kinetics clips are 10 s, SSV2 clips ~4 s, the motion task's
#: clips one 16-frame episode at 8 fps, like the app's examples: 2 s). Used as the window of segment/uniform
#: models. A 1-s motion window held 8 frames, of which segment sampling picks only 5 distinct ones.
CLIP_SECONDS: dict[str, float] = {"kinetics400": 10.0, "k710": 10.0, "ssv2": 4.0, "motion": 2.0}
DEFAULT_CLIP_SECONDS = 8.0
#: Windows computed per request when the stride is automatic (bounds the work of a long video).
MAX_WINDOWS = 120
#: Most frames decoded per request, counted in 1280x720 frames (a 1080p frame counts 2.25): a few
#: minutes of one core at worst.  The windows' own frames are few (120 x 8); what costs is decoding
#: from the keyframe before each window, so only clips with keyframes minutes apart come near it.
MAX_DECODED_FRAMES = 100_000

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
    timings: dict[str, float] = field(default_factory=dict)  # seconds: decode_s, preprocess_s, model_s
    stats: dict[str, int] = field(default_factory=dict)  # frames decoded, seeks, decoder calls ...

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
                # "name", not "path": gradio_client takes any dict with a "path" for a file to download.
                "name": os.path.basename(self.info.path),
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


def _cost_error(
    cost: dict[str, int], info: VideoInfo, n_windows: int, limit: int, fit: int, fit_stride: float | None
) -> SettingsError:
    """The message for a request over the decoding budget: how much, why, and what to change."""
    why = ""
    if cost["keyframes"]:
        every = info.duration / cost["keyframes"]
        if every > 10:
            why = f" (this clip has a keyframe only every {every:.0f} s, and decoding starts at one)"
    if fit >= 2:
        change = f"Ask for at most {fit} windows (a stride of at least {fit_stride:.1f} s), or re-encode"
    else:
        change = "Re-encode"
    return SettingsError(
        f"These {n_windows} windows would need decoding about {cost['frames']:,} frames{why}; at most {limit:,} "
        f"frames of {info.width}x{info.height} are decoded per request. {change} the clip with a keyframe every "
        f"few seconds (e.g. ffmpeg -g 250)."
    )


def _decode_budget(max_decoded_frames: int, info: VideoInfo) -> int:
    """The budget in frames of this clip's size (it is counted in 1280x720 frames)."""
    pixels = max(int(info.width) * int(info.height), 1)
    return max(1, int(max_decoded_frames * (1280 * 720) / max(pixels, 1280 * 720 // 16)))


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
    max_decoded_frames: int = MAX_DECODED_FRAMES,
) -> Timeline:
    """The model's predictions over sliding windows of the whole video at ``path``.

    Args:
        model: a model built by ``tada.create_model`` (its ``pretrained_cfg`` says how to sample and
            preprocess; its ``labels`` name the classes unless ``labels`` is given).
        stride_s / window_s: seconds between window starts / window length (default: automatic).
        max_windows: most windows per call.
        batch_size: windows per model call (and per decoder call).
        max_decoded_frames: most frames decoded per call, counted in 1280x720 frames (a frame of
            another size counts in proportion to its pixels); a request over it raises
            :class:`SettingsError` saying how many windows would fit.
        progress: ``progress(fraction, text)``; raise from it to cancel.

    Raises:
        VideoError: the file cannot be used. SettingsError: a stride asking for too many windows, or
        windows whose frames cost more decoding than ``max_decoded_frames``.
    """
    cfg = model.pretrained_cfg
    transform = VideoTransform(cfg, "single")
    limits = limits or VideoLimits()
    path = os.fspath(path)
    decode.check_path(path, limits)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    names = list(labels) if labels is not None else list(getattr(model, "labels", None) or [])
    timeout = limits.decode_timeout_s
    timings = {"decode_s": 0.0, "preprocess_s": 0.0, "model_s": 0.0}
    stats = {"frames_decoded": 0, "frames_converted": 0, "seeks": 0, "decoder_calls": 0}
    windows: list[Window] = []
    warnings: dict[str, None] = {}
    track_calibration = getattr(cfg, "sampling", "") != "uniform"  # ILA has no calibration factors

    def run_model(batch: list[tuple[int, float, float, np.ndarray]], inputs: list[torch.Tensor]) -> None:
        t1 = time.perf_counter()
        x = torch.stack(inputs).to(device)
        if track_calibration:
            with trace(model) as tr:
                logits = model(x)
            variation = _calibration_variation(tr, len(batch))
        else:
            logits, variation = model(x), None
        probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        for k, (i, s, e, idx) in enumerate(batch):
            cal = None if variation is None else float(variation[k])
            windows.append(Window(i, s, e, idx, probs[k], cal))
        timings["model_s"] += time.perf_counter() - t1

    with get_pool().lease() as worker:
        t0 = time.perf_counter()
        info: VideoInfo = worker.call(decode.probe_file, (path, limits, "auto"), {}, timeout)
        plan, window, stride = plan_windows(info, cfg, stride_s=stride_s, window_s=window_s, max_windows=max_windows)
        # Cost is the frames decoded, known from the keyframe index before decoding anything.
        every = np.unique(np.concatenate([idx for _, _, idx in plan]))
        cost = worker.call(decode.read_cost, (path, every, limits, "auto"), {}, timeout)
        budget = _decode_budget(max_decoded_frames, info)
        if cost["frames"] > budget:
            # How many windows would fit (fewer windows do not always help: with keyframes far apart
            # the decoder reads on through the clip), found with the same costing.
            fit, fit_stride, low, high = 0, None, 2, len(plan) - 1
            while low <= high:
                m = (low + high) // 2
                fewer, _, m_stride = plan_windows(info, cfg, window_s=window_s, max_windows=m)
                m_cost = worker.call(
                    decode.read_cost, (path, np.concatenate([i for _, _, i in fewer]), limits, "auto"), {}, timeout
                )
                if m_cost["frames"] <= budget:
                    fit, fit_stride, low = len(fewer), m_stride, m + 1
                else:
                    high = m - 1
            raise _cost_error(cost, info, len(plan), budget, fit, fit_stride)
        # The decoder sends only the pixels the model's resize reads (bit-exact, ~2 % of a 720p frame).
        taps = transform.resize_taps(info.height, info.width)
        per_frame_s = 0.01 * max(info.width * info.height, 1) / (1280 * 720)  # a generous decoding time
        timings["decode_s"] += time.perf_counter() - t0
        # Windows are read in time order, a batch per decoder call; the decoder keeps the file open
        # between calls, so it decodes on from one batch to the next instead of seeking back, and it
        # decodes the next batch while the model runs on this one.
        chunks = [plan[b : b + batch_size] for b in range(0, len(plan), batch_size)]
        tap_arg = None if taps.whole else (taps.rows, taps.cols)

        def submit(c: int) -> tuple[np.ndarray, float]:
            unique, inverse = np.unique(np.concatenate([idx for _, _, idx in chunks[c]]), return_inverse=True)
            kwargs = {"taps": tap_arg, "keep_open": c + 1 < len(chunks)}
            worker.submit(decode.read_file, (path, unique, limits, "auto"), kwargs)
            return inverse, timeout + per_frame_s * cost["frames"] * len(unique) / max(cost["targets"], 1)

        pending = submit(0)
        done = 0
        for c, chunk in enumerate(chunks):
            t1 = time.perf_counter()
            inverse, wait_s = pending
            result = worker.collect(wait_s)
            if c + 1 < len(chunks):
                pending = submit(c + 1)
            t2 = time.perf_counter()
            timings["decode_s"] += t2 - t1  # the wait for the decoder (its work overlaps the model's)
            warnings.update(dict.fromkeys(result.warnings))
            stats["frames_decoded"] += int(result.stats.get("decoded", 0))
            stats["frames_converted"] += int(result.stats.get("converted", 0))
            stats["seeks"] += int(result.stats.get("seeks", 0))
            stats["decoder_calls"] += 1
            inputs, at = [], 0
            for k, (start, _, idx) in enumerate(chunk):
                if progress is not None:  # per window, as before batching (raising from it cancels)
                    progress((done + k) / len(plan), f"window {done + k + 1} of {len(plan)} ({start:.0f} s)")
                inputs.append(transform.crops(result.frames[inverse[at : at + len(idx)]], taps)[0])
                at += len(idx)
            del result
            timings["preprocess_s"] += time.perf_counter() - t2
            run_model([(done + k, s, e, idx) for k, (s, e, idx) in enumerate(chunk)], inputs)
            done += len(chunk)
    if progress is not None:
        progress(1.0, f"{len(windows)} windows")
    if len(names) != (windows[0].probs.shape[0] if windows else len(names)):
        names = [f"class {i}" for i in range(windows[0].probs.shape[0])]
    stats.update(planned_frames=int(cost["frames"]), distinct_frames=int(cost["targets"]))
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
        timings=timings,
        stats=stats,
    )
