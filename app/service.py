"""The one service object behind the app and ``python -m tada predict``: load and cache models, run, explain.

Everything the UI shows goes through :class:`Service`; inference lives in :mod:`tada`, explanations in
:mod:`visualizations`.  The service never touches the network on its own: a model's weights are
"available" when they are bundled or already in a local cache (:func:`tada.hub.weights_status`);
anything else is fetched only when a user asks for that model and the machine is online.

Thread safety: the model cache is guarded by a lock, each model is built once (concurrent first
requests wait for the same load), and every use of a model holds that model's own lock (ILA's class
texts are model state and Captum hooks layers, so two requests must not interleave on one model).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import tada
from app import runtime
from app.catalogue import default_model_name, family, how_to_get_weights, model_info
from app.errors import AppError
from tada import PretrainedCfg, hub
from tada.errors import quote
from tada.limits import check_class_phrases
from tada.video import Clip, VideoError, VideoLimits, average_view_scores, load_clip

__all__ = ["MAX_FRAMES", "Analysis", "Progress", "Sampling", "Service", "parse_class_names", "tensor_bytes"]

log = logging.getLogger("tada.app")

#: The most frames a request may ask for (the Frames field says the same, ``app.handlers.FRAMES_RULE``).
MAX_FRAMES = 64

Progress = Callable[[float, str], Any]


# --- requests and results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampling:
    """How frames are taken from the clip (``None`` = the model's official setting).

    Attributes:
        frames: frames fed to the model.
        views: ``"single"`` (one centred clip and crop) or ``"official"`` (the published multi-view test).
        start: start of the clip window in seconds (``"interval"`` sampling, single view only).
        stride: frame interval at the protocol's reference fps (``"interval"`` sampling only).
        end: with ``start``, the end of a *window* ``[start, end]`` of the video (seconds) that every
            sampling protocol and every view reads as if it were the whole clip (a timeline window).
    """

    frames: int | None = None
    views: str = "single"
    start: float | None = None
    stride: int | None = None
    end: float | None = None

    @property
    def window(self) -> tuple[float, float] | None:
        """``(start_s, end_s)`` when a window of the video is chosen, else None."""
        return None if self.end is None else (float(self.start or 0.0), float(self.end))

    def key(self) -> tuple:
        return (self.frames, self.views, _r3(self.start), self.stride, _r3(self.end))


def _r3(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


@dataclass
class Analysis:
    """Everything one prediction produced; cached so the tabs reuse it without decoding again."""

    model_name: str
    cfg: PretrainedCfg
    clip: Clip
    view: Clip  # the main view (clip.main_view()): what the gallery, internals and explanations show
    probs: torch.Tensor  # (K,) averaged over views
    view_probs: torch.Tensor  # (V, K)
    labels: list[str]
    class_names: tuple[str, ...] | None
    sampling: Sampling
    device: str
    precision: str
    timings: dict[str, float] = field(default_factory=dict)
    internals: dict[str, Any] = field(default_factory=dict)  # "calibration" / "points" explanations

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` best classes with their probabilities."""
        vals, idx = torch.topk(self.probs, min(k, self.probs.numel()))
        return [(self.labels[int(i)], float(v)) for v, i in zip(vals, idx)]

    @property
    def family(self) -> str:
        return family(self.cfg)


@dataclass
class _Loaded:
    model: nn.Module
    lock: threading.RLock
    precision: str  # "fp32" or "bf16"
    note: str = ""
    threads: int | None = None  # CPU threads for this model (None: torch's default)
    nbytes: int = 0  # parameters and buffers: what keeping the model costs
    pinned: bool = False  # a bundled model: always kept

    @contextlib.contextmanager
    def running(self) -> Iterator[nn.Module]:
        """Hold the model (one request at a time) with its thread setting."""
        with self.lock:
            old = torch.get_num_threads()
            if self.threads is not None and self.threads != old:
                torch.set_num_threads(self.threads)
            try:
                yield self.model
            finally:
                if torch.get_num_threads() != old:
                    torch.set_num_threads(old)


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def parse_class_names(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Class phrases from the free-text box: one per line or comma-separated; None when empty."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = [p for line in text.splitlines() for p in line.split(",")]
    else:
        parts = list(text)
    names = tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))
    if not names:
        return None
    check_class_phrases(names)  # count and length, before any model is loaded or text tokenised
    if len(names) < 2:
        raise AppError("Give at least two class phrases (one per line or comma-separated) to compare.")
    return names


class Service:
    """Load and cache models, run them on clips, explain their predictions.

    Args:
        device: ``"cpu"``, ``"cuda"``... (default: ``$TADA_DEVICE``, else CUDA when present).
        precision: ``"auto"`` (bf16 on a GPU when it agrees with fp32 within ``runtime.BF16_TOLERANCE``),
            ``"fp32"`` or ``"bf16"`` (checked the same way, also on a CPU); see :func:`app.runtime.choose_precision`.
        model_memory: bytes of weights the model cache may hold besides the bundled models, which
            are always kept (default ``$TADA_MODEL_CACHE_MB``, else 3072 MiB); the least recently used
            models are dropped beyond it, but the one in use always stays.
        max_analyses: predictions kept for the tabs (default ``$TADA_ANALYSIS_CACHE``, else 8; 0 = none).
        analysis_memory: bytes those predictions may hold (clip tensors, frames, internals; default
            ``$TADA_ANALYSIS_CACHE_MB``, else 256 MiB); the newest one is kept whatever its size.
        limits: upload limits passed to the video layer.
    """

    def __init__(
        self,
        device: str | None = None,
        precision: str = "auto",
        model_memory: int | None = None,
        max_analyses: int | None = None,
        analysis_memory: int | None = None,
        limits: VideoLimits | None = None,
    ) -> None:
        self.device = torch.device(device or os.environ.get("TADA_DEVICE") or runtime.default_device())
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError("precision must be 'auto', 'fp32' or 'bf16'")
        self.precision = precision
        self.model_memory = _mib_env("TADA_MODEL_CACHE_MB", 3072) if model_memory is None else model_memory
        self.max_analyses = int(os.environ.get("TADA_ANALYSIS_CACHE", 8)) if max_analyses is None else max_analyses
        self.analysis_memory = _mib_env("TADA_ANALYSIS_CACHE_MB", 256) if analysis_memory is None else analysis_memory
        self.limits = limits or VideoLimits()
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, str], _Loaded] = OrderedDict()
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self._analyses: OrderedDict[tuple, Analysis] = OrderedDict()
        self._analysis_bytes: dict[tuple, int] = {}
        self._comparisons: OrderedDict[tuple, Any] = OrderedDict()  # see compare()
        self._timelines: OrderedDict[tuple, Any] = OrderedDict()  # tada.timeline.Timeline, per clip + model
        self._digests: OrderedDict[tuple, tuple[int, str]] = OrderedDict()  # file version -> content hash

    # --- catalogue ------------------------------------------------------------------------------
    def default_model(self) -> str | None:
        """The model the UI and the CLI start with."""
        return default_model_name()

    # --- models ---------------------------------------------------------------------------------
    def _load(self, name: str, progress: Progress | None) -> _Loaded:
        cfg = tada.get_pretrained_cfg(name)
        info = model_info(cfg.name)
        if not cfg.tag:
            raise AppError(f"'{name}' is an architecture, not a trained model; pick a variant from the list.")
        if not info.available and hub.is_offline():
            raise hub.WeightsUnavailableError(how_to_get_weights(cfg.name))
        if progress is not None:
            progress(0.0, f"loading {cfg.name}" + ("" if info.available else " (downloading weights)"))
        t0 = time.perf_counter()
        model = tada.create_model(cfg.name, pretrained=True)
        model = model.to(self.device).eval()
        precision, note = runtime.choose_precision(model, self.device, self.precision)
        log.info("loaded %s on %s (%s) in %.2f s %s", cfg.name, self.device, precision, time.perf_counter() - t0, note)
        return _Loaded(
            model=model,
            lock=threading.RLock(),
            precision=precision,
            note=note,
            threads=runtime.threads_for(model, self.device),
            nbytes=tensor_bytes(model),
            pinned=info.bundled,
        )

    def get_model(self, name: str, progress: Progress | None = None) -> _Loaded:
        """The cached model ``name`` on this service's device, loading it on first use."""
        name = tada.get_pretrained_cfg(name).name  # canonical (also raises for unknown names)
        key = (name, str(self.device))
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per model; other models load in parallel
            with self._lock:
                if key in self._models:
                    return self._models[key]
            loaded = self._load(name, progress)
            with self._lock:
                self._models[key] = loaded
                self._evict_models(keep=key)
                self._loading.pop(key, None)
            return loaded

    def _evict_models(self, keep: tuple[str, str]) -> None:
        """Drop least recently used models until the unpinned ones fit :attr:`model_memory` (under the
        lock).  Sized by bytes, not a count: one full-size model weighs as much as hundreds of
        bundled ones, and a count smaller than the bundled set made mixed use reload them all the time."""
        used = sum(m.nbytes for m in self._models.values() if not m.pinned)
        for k in list(self._models):
            if used <= self.model_memory:
                break
            m = self._models[k]
            if k != keep and not m.pinned:
                del self._models[k]
                used -= m.nbytes
                log.info(
                    "model cache: dropped %s (%.0f MiB) to stay within %.0f MiB",
                    k[0],
                    m.nbytes / 2**20,
                    self.model_memory / 2**20,
                )

    def model_cache_bytes(self) -> int:
        """Bytes of weights the model cache holds now (bundled models included)."""
        with self._lock:
            return sum(m.nbytes for m in self._models.values())

    def warm_up(self, clip: str | os.PathLike | None = None, names: Sequence[str] | None = None) -> None:
        """Do once, before the first user, what the first request would otherwise pay for: start a
        decoder worker, load the default (or given) models, import the explanation code, and run a
        prediction on ``clip`` (with internals) so that every kernel on the path has run once."""
        from tada.video import warm_up as start_decoder

        try:
            start_decoder()
            names = list(names) if names is not None else [n for n in [self.default_model()] if n]
            for name in names:
                self.get_model(name)
            import captum.attr  # noqa: F401 - these imports cost seconds on first use

            import visualizations.figures  # noqa: F401

            if clip is not None and not runtime.ZERO_GPU:  # on ZeroGPU a warm-up run would spend GPU quota
                for name in names:
                    self.analyse(os.fspath(clip), name)
        except Exception:  # noqa: BLE001 - a failed warm-up only means the first request does the work
            log.warning("warm-up failed", exc_info=True)

    def warm_up_in_background(self, clip: str | os.PathLike | None = None) -> threading.Thread:
        """:meth:`warm_up` in a daemon thread (the server starts answering meanwhile)."""
        # matplotlib first, here: the warm-up's captum import pulls it in while Gradio imports it around
        # each request, and two threads importing it at once can see it half made (ImportError).
        import matplotlib  # noqa: F401

        thread = threading.Thread(target=self.warm_up, args=(clip,), daemon=True, name="tada-warm-up")
        thread.start()
        return thread

    def cached_models(self) -> list[str]:
        """Names of the models in memory (least recently used first)."""
        with self._lock:
            return [k[0] for k in self._models]

    # --- clips ----------------------------------------------------------------------------------
    def effective_cfg(self, name: str, sampling: Sampling) -> PretrainedCfg:
        """The model's test config with the user's sampling choices applied (validated)."""
        cfg = tada.get_pretrained_cfg(name)
        changes: dict[str, Any] = {}
        if sampling.views not in ("single", "official"):
            raise AppError("Views must be 'single' or 'official'.")
        if sampling.frames is not None and int(sampling.frames) != cfg.num_frames:
            frames = int(sampling.frames)
            if family(cfg) == "ila" or frames < 1 or frames > MAX_FRAMES:
                raise AppError(
                    f"{cfg.name} takes exactly {cfg.num_frames} frames"
                    if family(cfg) == "ila"
                    else f"Frames must be a whole number from 1 to {MAX_FRAMES} (empty: the model's own)."
                )
            changes["num_frames"] = frames
        if sampling.stride is not None and cfg.sampling == "interval" and int(sampling.stride) != cfg.sampling_rate:
            if int(sampling.stride) < 1:
                raise AppError("Stride must be at least 1.")
            changes["sampling_rate"] = int(sampling.stride)
        return cfg.replace(**changes) if changes else cfg

    def load_clip(self, video: str, cfg: PretrainedCfg, sampling: Sampling) -> Clip:
        """Decode the frames ``cfg`` and ``sampling`` ask for (VideoError for a bad file)."""
        if not video:
            raise AppError("Upload a video (or record one with the webcam, or pick an example) first.")
        if not os.path.isfile(video):
            raise VideoError(f"The file {Path(video).name} does not exist.", code="not_found")
        window = sampling.window
        if window is not None:  # a chosen part of the video: every protocol and view samples inside it
            if window[0] < 0 or window[1] <= window[0]:
                raise AppError(f"The window {window[0]:g}-{window[1]:g} s is empty: its end must come after its start.")
            return load_clip(video, cfg, views=sampling.views, limits=self.limits, window=window)
        # A start applies to the one window of interval sampling; the others cover the whole clip.
        start = sampling.start if cfg.sampling == "interval" and sampling.views == "single" else None
        return load_clip(video, cfg, views=sampling.views, limits=self.limits, start=start)

    # --- prediction -----------------------------------------------------------------------------
    def analyse(
        self,
        video: str,
        model_name: str,
        sampling: Sampling | None = None,
        class_names: Sequence[str] | str | None = None,
        progress: Progress | None = None,
        internals: bool = True,
    ) -> Analysis:
        """Predict (class probabilities averaged over the requested views); cached per clip and settings.

        With ``internals`` the calibration factors (TAdaConv) or interactive points (ILA) of the main
        view are captured too, from the same forward pass that predicts it (the model runs once per
        view); a cached result without them gets them on demand.
        """
        sampling = sampling or Sampling()
        if not video:
            raise AppError("Upload a video (or record one with the webcam, or pick an example) first.")
        key, cfg, names = self._key(video, model_name, sampling, class_names)
        with self._lock:
            analysis = self._analyses.get(key)
            if analysis is not None:
                self._analyses.move_to_end(key)
        if analysis is None:
            analysis = self._predict(video, cfg, sampling, names, progress, internals)
            self._remember(key, analysis)
        if internals and not analysis.internals:
            self._add_internals(analysis, progress)
            self._remember(key, analysis)  # internals add to its size
        return analysis

    def _remember(self, key: tuple, analysis: Analysis) -> None:
        """Cache ``analysis``, then drop the oldest ones beyond :attr:`max_analyses` or
        :attr:`analysis_memory` (the newest always stays: the tabs reuse it at once)."""
        if self.max_analyses <= 0:
            return
        size = tensor_bytes(analysis)
        with self._lock:
            self._analyses[key] = analysis
            self._analyses.move_to_end(key)
            self._analysis_bytes[key] = size
            total = sum(self._analysis_bytes.values())
            while len(self._analyses) > 1 and (len(self._analyses) > self.max_analyses or total > self.analysis_memory):
                old, _ = self._analyses.popitem(last=False)
                total -= self._analysis_bytes.pop(old, 0)

    def analysis_cache_bytes(self) -> int:
        """Bytes the cached predictions hold now (as :func:`tensor_bytes` counts them)."""
        with self._lock:
            return sum(self._analysis_bytes.values())

    def _key(
        self, video: str, model_name: str, sampling: Sampling, class_names: Sequence[str] | str | None
    ) -> tuple[tuple, PretrainedCfg, tuple[str, ...] | None]:
        names = parse_class_names(class_names)
        cfg = self.effective_cfg(model_name, sampling)
        if names is not None and not model_info(cfg.name).open_vocabulary:
            names = None  # only ILA (K400 form) scores free text; the box is hidden for the others
        key = (_file_key(video) if os.path.isfile(video) else video, cfg.name, sampling.key(), names)
        return key, cfg, names

    def peek(
        self,
        video: str,
        model_name: str,
        sampling: Sampling | None = None,
        class_names: Sequence[str] | str | None = None,
    ) -> Analysis | None:
        """The cached prediction for these settings, or None (never computes anything)."""
        try:
            key = self._key(video, model_name, sampling or Sampling(), class_names)[0]
        except Exception:  # noqa: BLE001 - invalid settings simply have no cached result
            return None
        with self._lock:
            return self._analyses.get(key)

    def _predict(
        self,
        video: str,
        cfg: PretrainedCfg,
        sampling: Sampling,
        names: tuple[str, ...] | None,
        progress: Progress | None,
        internals: bool = True,
    ) -> Analysis:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        loaded = self.get_model(cfg.name, progress)
        timings["load"] = time.perf_counter() - t0
        if progress is not None:
            progress(0.05, "decoding the clip")
        t0 = time.perf_counter()
        clip = self.load_clip(video, cfg, sampling)
        timings["decode"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = clip.num_views
        main = clip.main_view_index
        kind = _internals_kind(cfg)
        logits = []
        found: dict[str, Any] = {}
        with loaded.running() as model:
            _set_class_names(model, names)
            for v in range(n):
                if progress is not None:
                    progress(0.1 + 0.8 * v / n, f"view {v + 1} of {n}" if n > 1 else "running the model")
                view = clip.view(v)
                if internals and v == main:  # one traced pass gives the prediction and the internals
                    out, found = self._forward(
                        runtime.forward_with_internals, model, view, loaded.precision, cfg.num_frames, kind
                    )
                else:
                    out = self._forward(runtime.forward, model, view.tensor, loaded.precision, cfg.num_frames)
                logits.append(out)
            labels = [str(x) for x in model.labels] if hasattr(model, "labels") else []
        view_logits = torch.cat(logits)
        if len(labels) != view_logits.shape[1]:
            labels = [f"class {i}" for i in range(view_logits.shape[1])]
        timings["model"] = time.perf_counter() - t0
        view_probs = torch.softmax(view_logits.float(), -1)
        return Analysis(
            model_name=cfg.name,
            cfg=cfg,
            clip=clip,
            view=clip.view(main),
            probs=average_view_scores(view_logits),  # the official multi-view rule, shared with `batch`
            view_probs=view_probs,
            labels=labels,
            class_names=names,
            sampling=sampling,
            device=str(self.device),
            precision=loaded.precision,
            timings=timings,
            internals=found,
        )

    def _forward(
        self, fn: Callable[..., Any], model: nn.Module, x: Any, precision: str, frames: int, *args: Any
    ) -> Any:
        """``fn(model, x, device, precision, *args)`` (a :mod:`app.runtime` forward); a failure on a frame
        count the model was not tested with is the user's to fix."""
        try:
            return fn(model, x, self.device, precision, *args)
        except (ValueError, RuntimeError) as exc:
            tested = tada.get_pretrained_cfg(model.pretrained_cfg.name).num_frames
            if frames != tested and "memory" not in str(exc).lower():
                raise AppError(
                    f"{model.pretrained_cfg.name} cannot take {frames} frames (it was tested with {tested}): {exc}"
                ) from exc
            raise

    def _add_internals(self, analysis: Analysis, progress: Progress | None) -> None:
        """Calibration factors (TAdaConv) or interactive points (ILA) of the main view of a cached
        prediction made without them (one traced forward pass)."""
        if progress is not None:
            progress(0.92, "reading the model's internals")
        t0 = time.perf_counter()
        loaded = self.get_model(analysis.model_name)
        with loaded.running() as model:
            _set_class_names(model, analysis.class_names)
            _, found = self._forward(
                runtime.forward_with_internals,
                model,
                analysis.view,
                loaded.precision,
                analysis.cfg.num_frames,
                _internals_kind(analysis.cfg),
            )
        analysis.timings["internals"] = time.perf_counter() - t0
        analysis.internals = found

    # --- timelines ------------------------------------------------------------------------------
    def _timeline_key(
        self,
        video: str,
        model_name: str,
        stride_s: float | None,
        window_s: float | None,
        class_names: Sequence[str] | str | None,
    ) -> tuple[tuple, str, tuple[str, ...] | None]:
        name = tada.get_pretrained_cfg(model_name).name
        names = parse_class_names(class_names)
        if names is not None and not model_info(name).open_vocabulary:
            names = None
        key = (self._content_key(video), name, _r3(stride_s), _r3(window_s), names)
        return key, name, names

    def _content_key(self, video: str) -> Any:
        """The clip's bytes (hashed once per file version): Gradio stores every upload of the same clip as
        a new file, and a timeline is worth finding again under any of them."""
        if not os.path.isfile(video):
            return video
        fk = _file_key(video)
        with self._lock:
            found = self._digests.get(fk)
        if found is None:
            digest = hashlib.blake2b(digest_size=16)
            with open(video, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            found = (fk[1], digest.hexdigest())
            with self._lock:
                self._digests[fk] = found
                while len(self._digests) > 256:
                    self._digests.popitem(last=False)
        return found

    def timeline(
        self,
        video: str,
        model_name: str,
        stride_s: float | None = None,
        window_s: float | None = None,
        class_names: Sequence[str] | str | None = None,
        progress: Progress | None = None,
    ) -> Any:
        """The model over sliding windows of the whole clip (:func:`tada.timeline.compute_timeline`),
        cached per clip, model, stride, window and class phrases (a second request is immediate).

        ``progress(fraction, text)`` is called per window; raising from it (a stopped job) ends the work.
        """
        from tada.timeline import compute_timeline

        if not video:
            raise AppError("Upload a video (or record one with the webcam, or pick an example) first.")
        if not os.path.isfile(video):
            raise VideoError(f"The file {Path(video).name} does not exist.", code="not_found")
        key, name, names = self._timeline_key(video, model_name, stride_s, window_s, class_names)
        with self._lock:
            found = self._timelines.get(key)
            if found is not None:
                self._timelines.move_to_end(key)
                return found
        loaded = self.get_model(name, progress)
        with loaded.running() as model:
            _set_class_names(model, names)
            labels = list(names) if names else None
            tl = compute_timeline(
                video,
                model,
                stride_s=stride_s,
                window_s=window_s,
                limits=self.limits,
                device=self.device,
                progress=progress,
                labels=labels,
                display_name=name,
            )
        with self._lock:
            self._timelines[key] = tl
            while len(self._timelines) > max(self.max_analyses, 1):
                self._timelines.popitem(last=False)
        return tl

    def peek_timeline(
        self,
        video: str,
        model_name: str,
        stride_s: float | None = None,
        window_s: float | None = None,
        class_names: Sequence[str] | str | None = None,
    ) -> Any | None:
        """The cached timeline for these settings, or None (never computes anything)."""
        try:
            key = self._timeline_key(video, model_name, stride_s, window_s, class_names)[0]
        except Exception:  # noqa: BLE001 - invalid settings simply have no cached timeline
            return None
        with self._lock:
            return self._timelines.get(key)

    # --- explanations ---------------------------------------------------------------------------
    def explain(
        self,
        analysis: Analysis,
        method: str,
        target: int | str | None = None,
        progress: Progress | None = None,
        **opts: Any,
    ) -> Any:
        """Run a :mod:`visualizations` method on the main view of a cached prediction."""
        from visualizations import METHODS

        if method not in METHODS:
            raise AppError(f"Unknown method '{method}'. Choose one of: {', '.join(METHODS)}.")
        loaded = self.get_model(analysis.model_name)
        if isinstance(target, str):
            if target not in analysis.labels:
                raise AppError(f"{quote(target)} is not a class of {analysis.model_name}.")
            target = analysis.labels.index(target)
        with loaded.running() as model:
            _set_class_names(model, analysis.class_names)
            try:
                return runtime.explain(model, analysis.view, method, target, progress, self.device, opts)
            except ValueError as exc:  # the method does not apply to this model (e.g. rollout on a convnet)
                raise AppError(f"{method} cannot explain {analysis.model_name}: {exc}") from exc

    # --- comparison -------------------------------------------------------------------------------
    def compare(
        self,
        video: str,
        names: Sequence[str],
        method: str | None = None,
        k: int = 5,
        progress: Progress | None = None,
        **opts: Any,
    ) -> Any:
        """2-4 models on the identical frames (decoded once, sampled with the first model's protocol, each
        model's own transform): top-k, counterfactuals and ``method``'s attribution per model
        (:func:`visualizations.compare.compare_models`); a :class:`~visualizations.compare.Comparison`,
        cached per clip and settings."""
        from visualizations import METHODS
        from visualizations.compare import (
            assemble,
            check_model_count,
            compare_one,
            decode_frames,
            plan_inputs,
        )
        from visualizations.counterfactuals import VARIANTS

        names = check_model_count([str(n) for n in (names or [])])
        cfgs = [tada.get_pretrained_cfg(n) for n in names]  # unknown names: "did you mean"
        names = check_model_count([c.name for c in cfgs])  # two spellings of one model count once
        if method and getattr(METHODS.get(method), "kind", None) != "attribution":
            methods = ", ".join(m.name for m in METHODS.values() if m.kind == "attribution")
            raise AppError(f"Unknown attribution method {quote(method)}. Choose one of: {methods}.")
        for cfg in cfgs:  # before any decoding: a model that cannot run is said first
            if not cfg.tag:
                raise AppError(f"'{cfg.name}' is an architecture, not a trained model; pick a variant from the list.")
            if not model_info(cfg.name).available and hub.is_offline():
                raise hub.WeightsUnavailableError(how_to_get_weights(cfg.name))
        used, notes = plan_inputs(cfgs, names)
        if not video:
            raise AppError("Upload a video (or record one with the webcam, or pick an example) first.")
        if not os.path.isfile(video):
            raise VideoError(f"The file {Path(video).name} does not exist.", code="not_found")
        key = (_file_key(video), tuple(names), method or None, int(k), tuple(sorted(opts.items())))
        with self._lock:
            if key in self._comparisons:
                self._comparisons.move_to_end(key)
                return self._comparisons[key]
        if progress is not None:
            progress(0.02, "decoding the clip once for every model")
        shared = decode_frames(video, used[0], self.limits, reference=names[0])
        parts = []
        n = len(names)
        for i, (name, cfg) in enumerate(zip(names, used, strict=True)):

            def sub(f: float, m: str, i: int = i) -> Any:
                return progress(0.05 + 0.95 * (i + f) / n, m) if progress is not None else None

            loaded = self.get_model(name, sub)
            with loaded.running() as model:
                _set_class_names(model, None)
                try:
                    part = compare_one(
                        name,
                        model,
                        shared,
                        cfg,
                        method,
                        k,
                        progress=sub,
                        notes=notes[i],
                        explain_fn=self._explainer,
                        **opts,
                    )
                except (ValueError, RuntimeError) as exc:
                    if cfg.num_frames == tada.get_pretrained_cfg(name).num_frames or "memory" in str(exc).lower():
                        raise
                    raise AppError(
                        f"{name} cannot take the {cfg.num_frames} frames sampled for {names[0]} (it was tested "
                        f"with {tada.get_pretrained_cfg(name).num_frames}): {exc}. Put it first, or compare models "
                        "that take the same number of frames."
                    ) from exc
            parts.append(part)
        result = assemble(shared, parts, method or None, int(k), VARIANTS)
        with self._lock:
            self._comparisons[key] = result
            while len(self._comparisons) > min(4, self.max_analyses):
                self._comparisons.popitem(last=False)
        return result

    def _explainer(self, model: nn.Module, view: Clip, method: str, target: Any, progress: Any, **opts: Any) -> Any:
        """:func:`app.runtime.explain` on this service's device (the compare's ``explain_fn``)."""
        return runtime.explain(model, view, method, target, progress, self.device, opts)


# --- helpers -----------------------------------------------------------------------------------------


def _mib_env(name: str, default_mib: int) -> int:
    """Bytes from an environment variable given in MiB (``default_mib`` when unset or not a number)."""
    try:
        return int(float(os.environ.get(name, default_mib)) * 2**20)
    except ValueError:
        return default_mib * 2**20


def tensor_bytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Bytes of the tensors and arrays reachable from ``obj`` (a module, dataclass, mapping or
    sequence), each storage counted once: what keeping ``obj`` costs, Python objects aside."""
    seen = set() if _seen is None else _seen
    if _depth > 8 or id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) != id(obj) and id(base) in seen:
            return 0
        seen.add(id(base))
        return base.nbytes
    if isinstance(obj, nn.Module):
        return sum(tensor_bytes(t, seen) for t in (*obj.parameters(), *obj.buffers()))
    if isinstance(obj, dict):
        items: Any = obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        items = obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = (getattr(obj, f.name, None) for f in dataclasses.fields(obj))
    elif (
        hasattr(obj, "__dict__")
        and not isinstance(obj, type)
        and type(obj).__module__.split(".")[0]
        in (
            "tada",
            "visualizations",
            "app",
        )
    ):
        items = vars(obj).values()
    else:
        return 0
    return sum(tensor_bytes(v, seen, _depth + 1) for v in items)


def _set_class_names(model: nn.Module, names: tuple[str, ...] | None) -> None:
    if getattr(model, "supports_open_vocabulary", False):
        model.set_class_names(list(names) if names else None)


def _internals_kind(cfg: PretrainedCfg) -> str:
    """What a prediction shows of the model's inside: ILA's points, else TAdaConv's calibration."""
    return "points" if family(cfg) == "ila" else "calibration"
