"""The Gradio Blocks app: layout, event wiring and the mapping of errors to readable messages.

Every endpoint has an ``api_name`` so scripts can call it with ``gradio_client``:

``/predict``          clip + model + sampling -> top-5, the frames fed to the model, details, the
                      calibration and ILA-points figures of the main view
``/calibration``      one calibration view (heatmap of a layer, across depth, channels, kernel)
``/ila_points``       ILA interactive points (frame pairs of a layer, or trajectories)
``/attributions``     an attribution method for a target class (progress, can be stopped)
``/counterfactuals``  predictions on reversed / shuffled / frozen / half-rate versions of the clip
``/models``           the model catalogue with availability

All compute endpoints take the same first seven inputs as ``/predict`` and reuse its cached result.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from app import hosting
from app.catalogue import ModelInfo, catalogue, how_to_get_weights, model_info
from app.errors import AppError, Cancelled, is_unexpected, user_message
from app.jobs import run_cancellable
from app.service import Analysis, Sampling, Service
from tada.errors import WeightsUnavailableError

__all__ = ["build_demo", "create_app", "launch_kwargs", "example_clips", "MAX_FILE_SIZE", "Handlers"]

log = logging.getLogger("tada.app")

APP_DIR = Path(__file__).resolve().parent
REPO_ROOT = APP_DIR.parent
MAX_FILE_SIZE = "200mb"  # same as tada.video.VideoLimits.max_bytes
TEACHING = APP_DIR / "teaching.md"

CALIBRATION_VIEWS = [
    ("Heatmap of one layer", "heatmap"),
    ("Across depth", "summary"),
    ("Channels over time", "channels"),
    ("Calibrated kernel over time", "kernel"),
]
POINTS_VIEWS = [("Frame pairs of one layer", "pairs"), ("Trajectories of every layer", "trajectories")]
PREDICTED = "predicted class"
LAST_LAYER = "last layer"

CSS = """
#pred-label {min-height: 220px}
.tada-note {font-size: 0.9em; opacity: 0.85}
/* Figures never spill out of their box: a figure wider than a phone scrolls inside it. */
#cal-plot, #points-plot, #attr-plot, #cf-plot {max-width: 100%; overflow-x: auto !important}
#cal-plot .js-plotly-plot, #points-plot .js-plotly-plot, #attr-plot .js-plotly-plot, #cf-plot .js-plotly-plot
  {max-width: none}
/* Frame captions stay inside their own tile (wrapping, smaller) instead of running into the next one. */
#frames .caption-label {max-width: calc(100% - 6px); white-space: normal; overflow-wrap: anywhere;
  font-size: 11px; line-height: 1.25; opacity: 0.85}
/* Disabled fields look disabled. */
input:disabled, textarea:disabled {opacity: 0.55; cursor: not-allowed; background: var(--background-fill-secondary)}
label:has(textarea:disabled) span, label:has(input:disabled) span {opacity: 0.6}
@media (max-width: 640px) {
  /* 4 frames a row on a phone, every row shown (the desktop strip of 8 would show 3 and scroll). */
  #frames .grid-container {grid-template-columns: repeat(4, minmax(0, 1fr)) !important}
  #frames, #frames .grid-wrap {height: auto !important; max-height: none !important}
  #frames .caption-label {font-size: 10px}
}
"""


# --- error mapping ---------------------------------------------------------------------------------


def _as_gr_error(exc: BaseException, what: str) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, WeightsUnavailableError):
        # The full instructions (commands, paths) are in the status panel under the model picker; a
        # toast is too narrow for them and cut them mid-command.
        log.info("user error while %s: %s", what, exc)
        first = str(exc).split(". ")[0].rstrip(".")
        return gr.Error(
            f"{first}. The panel under the model picker (or get_weights in /models) says how to get them.",
            title=f"Could not finish {what}",
            print_exception=False,
        )
    message = user_message(exc)
    if is_unexpected(exc):
        log.error("error while %s", what, exc_info=(type(exc), exc, exc.__traceback__))
    else:
        log.info("user error while %s: %s", what, message)
    return gr.Error(message, title=f"Could not finish {what}", print_exception=False)


def guarded(what: str) -> Callable[[Callable], Callable]:
    """Turn any exception of a handler into a ``gr.Error`` with a readable message (traceback logged)."""

    def deco(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*args: Any, **kwargs: Any) -> Any:
                try:
                    return (yield from fn(*args, **kwargs))
                except Cancelled:
                    return None
                except Exception as exc:  # noqa: BLE001 - the server must survive anything
                    raise _as_gr_error(exc, what) from None

            return gen

        @functools.wraps(fn)
        def plain(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise _as_gr_error(exc, what) from None

        return plain

    return deco


# --- small renderers ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def message_figure(text: str, height: int = 260) -> go.Figure:
    """An empty figure that says why there is nothing to draw (renders like any other plot; cached,
    since building a plotly figure costs tens of milliseconds)."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 15})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, template="plotly_white")
    return fig


def _fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def details_markdown(a: Analysis) -> str:
    """What was run on what: model, device, clip, sampling, views, timings, warnings."""
    info = a.clip.info
    cfg = a.cfg
    lines = [
        *([note] if (note := domain_note(cfg)) else []),
        f"**Model** `{a.model_name}` · {a.device} · {a.precision}",
        f"**Clip** {info.width}×{info.height}, {info.fps:.3g} fps, {_fmt_s(info.duration)}, {info.codec}"
        + (f", rotated {info.rotation}°" if info.rotation else ""),
    ]
    ts = a.view.frame_timestamps
    if cfg.sampling == "interval":
        fps = cfg.target_fps or 30
        how = f"interval sampling: {cfg.num_frames} frames, one every {cfg.sampling_rate} at {fps:g} fps"
    elif cfg.sampling == "segment":
        how = f"segment sampling: {cfg.num_frames} frames, the middle of each of {cfg.num_frames} equal segments"
    else:
        how = f"uniform sampling: {cfg.num_frames} frames spread evenly over the clip"
    lines.append(f"**Frames** {how}; window {ts[0]:.2f}–{ts[-1]:.2f} s")
    n = a.clip.num_views
    crops = sorted({c for _, c in a.clip.views})
    lines.append(
        f"**Views** {n} ({len({c for c, _ in a.clip.views})} clip(s) × {len(crops)} crop(s), scores averaged); "
        f"internals and attributions use clip 1, {a.view.views[0][1]} crop"
        if n > 1
        else f"**Views** 1 (centre crop {cfg.crop_size}×{cfg.crop_size} of the short side resized to {cfg.test_scale})"
    )
    if a.class_names:
        lines.append(f"**Class phrases** {len(a.class_names)} (open vocabulary)")
    t = a.timings
    lines.append("**Time** " + " · ".join(f"{k} {_fmt_s(v)}" for k, v in t.items() if k != "load" or v > 0.05))
    for w in [*a.clip.warnings, *sampling_warnings(a)]:
        lines.append(f"⚠️ {w}")
    return "\n\n".join(lines)


def sampling_warnings(a: Analysis) -> list[str]:
    """What the sampling did that a user would not guess: a clip too short for the model's frames is
    padded by repeating frames, so the model sees a partly frozen clip."""
    idx = [int(i) for i in a.view.frame_indices]
    unique = sorted(set(idx))
    if len(unique) == len(idx):
        return []
    repeated = [f"f{i} ×{idx.count(i)}" for i in unique if idx.count(i) > 1]
    return [
        f"The clip gives only {len(unique)} distinct frame(s) for the {len(idx)} this model takes, so frames "
        f"are repeated ({', '.join(repeated[:4])}{' …' if len(repeated) > 4 else ''}): motion looks frozen to "
        "the model and its prediction means little. Use a longer clip."
    ]


def domain_note(cfg: Any) -> str:
    """A plain sentence for models trained on a narrow task (the bundled synthetic-motion models): they
    force any clip into their few classes, so a confident label on a natural clip means nothing."""
    if cfg.label_set != "motion":
        return ""
    from tada.labels import get_labels

    n = len(get_labels("motion"))
    return (
        f"ℹ️ This model was trained only on synthetic clips of one moving shape: it knows just {n} motion "
        "classes (moving left/right/up/down, rotating, growing …) and puts every clip into one of them, "
        "so on a natural clip its label and confidence say little."
    )


#: How frames are shown: the whole frame with the model's centre crop outlined, or only that crop.
FRAME_VIEWS = [("Whole frame, crop outlined", "outline"), ("Only what the model sees", "crop")]
#: Outline colour (visible on dark and light frames; the figures draw the same one).
CROP_RGB = (0, 229, 255)


def crop_box(frame_shape: tuple[int, ...], cfg: Any) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the square the model sees in a display frame: the short side is resized to
    ``test_scale`` and the centre ``crop_size`` square is cut (the main view's crop)."""
    h, w = int(frame_shape[0]), int(frame_shape[1])
    side = min(h, w) * min(1.0, float(cfg.crop_size) / float(cfg.test_scale or cfg.crop_size))
    x0, y0 = round((w - side) / 2), round((h - side) / 2)
    return x0, y0, round(x0 + side), round(y0 + side)


def model_view_frame(frame: np.ndarray, cfg: Any, view: str = "outline") -> np.ndarray:
    """A display frame as the user chose to see it: cropped to the model's square, or whole with the
    square outlined (nothing drawn when the model sees the whole frame)."""
    x0, y0, x1, y1 = crop_box(frame.shape, cfg)
    h, w = frame.shape[:2]
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return frame
    if view == "crop":
        return np.ascontiguousarray(frame[y0:y1, x0:x1])
    out = frame.copy()
    t = max(2, round(min(h, w) / 90))  # about 2 px on a 180-px frame, thicker on large ones
    out[y0 : y0 + t, x0:x1] = CROP_RGB
    out[max(y1 - t, 0) : y1, x0:x1] = CROP_RGB
    out[y0:y1, x0 : x0 + t] = CROP_RGB
    out[y0:y1, max(x1 - t, 0) : x1] = CROP_RGB
    return out


def gallery_items(a: Analysis, view: str = "outline") -> list[tuple[Any, str]]:
    """The exact frames fed to the model (main view), each captioned with its source frame and time
    (the one numbering every tab uses: ``f37 · 1.23 s``), whole with the crop outlined or cropped."""
    v = a.view
    return [
        (model_view_frame(frame, a.cfg, view), f"f{int(idx)} · {float(ts):.2f} s")
        for frame, idx, ts in zip(v.display_frames, v.frame_indices, v.frame_timestamps)
    ]


def top5(a: Analysis) -> dict[str, float]:
    return dict(a.top(5))


def calibration_figure(a: Analysis, view: str = "heatmap", layer: str | None = None) -> go.Figure:
    """One of the calibration renderers for a prediction (a message figure when not applicable)."""
    from visualizations import figures

    expl = a.internals.get("calibration")
    if expl is None:
        why = a.internals.get("calibration_error") or f"{a.model_name} has no TAdaConv layers"
        hint = "Pick a TAdaConv model (TAda2D, TAdaConvNeXtV2, TAdaFormer)."
        return message_figure(f"No calibration to show: {why}.<br>{hint}")
    la: str | int = -1 if not layer or layer == LAST_LAYER else layer
    if view == "summary":
        return figures.calibration_summary(expl)
    if view == "channels":
        return figures.calibration_channels(expl, la)
    if view == "kernel":
        return figures.calibrated_kernel_figure(expl, la)
    return figures.calibration_heatmap(expl, la)


def points_figure(a: Analysis, view: str = "pairs", layer: str | None = None) -> go.Figure:
    """ILA interactive points of a prediction (a message figure when not applicable)."""
    from visualizations import figures

    expl = a.internals.get("points")
    if expl is None:
        why = a.internals.get("points_error") or f"{a.model_name} has no ILA modules"
        return message_figure(f"No interactive points to show: {why}.<br>Pick an ILA model.")
    frames = a.view.display_frames
    if view == "trajectories":
        return figures.trajectories_figure(expl, frames)
    return figures.points_figure(expl, -1 if not layer or layer == LAST_LAYER else layer, frames)


# --- handlers ------------------------------------------------------------------------------------------


def _sampling(frames: Any, views: Any, start: Any, stride: Any) -> Sampling:
    def num(x: Any) -> float | None:
        if isinstance(x, str):
            x = x.strip()
        if x is None or x == "":
            return None
        try:
            return float(x)
        except (TypeError, ValueError):
            raise AppError(f"'{x}' is not a number.") from None

    f, st, sd = num(frames), num(start), num(stride)
    return Sampling(
        frames=None if not f else int(f),
        views=str(views or "single"),
        start=st,
        stride=None if not sd else int(sd),
    )


class Handlers:
    """The functions behind the events (one service shared by every user)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        # Browser previews made for unplayable uploads -> the uploaded file the model must read.  Keyed
        # by file name (Gradio copies the preview into its cache under the same name; the name holds a
        # random token), newest last, bounded.
        self._originals: OrderedDict[str, str] = OrderedDict()
        self._preview_dir = Path(tempfile.mkdtemp(prefix="tada-previews-"))

    def original(self, video: str | None) -> str | None:
        """The uploaded file behind a preview shown in its place (else ``video`` itself)."""
        return self._originals.get(Path(video).name, video) if video else video

    def preview(self, video):
        """Replace an upload the browser cannot play (HEVC, MJPEG ...) with a small H.264 preview; the
        model still reads the original (UI only)."""
        from tada.video import probe

        if not video:
            return gr.skip()
        try:
            info = probe(video, self.service.limits)
        except Exception:  # noqa: BLE001 - a bad file is reported by Predict, with its message
            return gr.skip()
        if hosting.browser_playable(video, info.codec):
            return gr.skip()
        try:
            out = hosting.browser_preview(video, self._preview_dir)
        except Exception:  # noqa: BLE001 - no preview is no reason to fail: the clip still predicts
            log.warning("no preview for %s", video, exc_info=True)
            return gr.skip()
        self._originals[out.name] = video
        while len(self._originals) > 256:
            self._originals.popitem(last=False)
        gr.Info(
            f"Your browser cannot play this clip ({info.codec}), so a small H.264 preview of its first "
            f"{hosting.PREVIEW_SECONDS:.0f} s is shown; the model reads the original file.",
            title="Preview",
        )
        return gr.update(value=str(out))

    def model_choices(self, show_all, current):
        """The picker with or without the models that need weights (UI only)."""
        return gr.update(choices=_model_choices(self.service, bool(show_all)), value=current)

    def _added(self, name: str, show_all) -> tuple[Any, str]:
        info = model_info(name)
        note = (
            f"✅ Added **{name}**: {info.family_name}, {info.num_classes} classes, "
            f"{info.num_frames} frames. "
            "It is selected in the picker; press **Predict**."
        )
        return gr.update(choices=_model_choices(self.service, bool(show_all)), value=name), note

    def add_from_hub(self, repo_id, show_all=False):
        """Register the converted model of a Hub repo (from the Hub cache when offline)."""
        return self._added(hosting.add_hub_repo(repo_id), show_all)

    def add_from_checkpoint(self, checkpoint, variant=None, show_all=False):
        """Convert an uploaded official checkpoint (size-capped, read without unpickling code) and add it."""
        from tada.errors import TadaError

        if not checkpoint:
            raise AppError("Upload a checkpoint file (.pyth, .pth or .safetensors) first.")
        try:
            name = hosting.add_checkpoint(checkpoint, variant or None)
        except (TadaError, FileNotFoundError) as exc:  # a bad or unsafe file is the uploader's to fix
            if isinstance(exc, AppError | hosting.HostingError):
                raise
            raise AppError(f"{Path(checkpoint).name} cannot be added: {exc}") from None
        return self._added(name, show_all)

    # Inputs shared by every compute endpoint.  Every one but the clip defaults to None (a default in
    # the signature is what makes gradio_client treat a parameter as optional): no model = the app's
    # default model, empty sampling fields = the model's own protocol.
    def _analysis(self, video, model, classes, frames, views, start, stride, progress=None) -> Analysis:
        model = model or self.service.default_model()
        if not model:
            raise AppError("Pick a model first.")
        video = self.original(video)
        info = model_info(model)
        if info.open_vocabulary and not (classes or "").strip():
            from tada.labels import list_label_sets

            if info.label_set not in list_label_sets():  # e.g. an ILA checkpoint added without its variant
                raise AppError(
                    f"{model} has no label set of its own: type the class phrases to compare in the box "
                    "under the model picker."
                )
        return self.service.analyse(video, model, _sampling(frames, views, start, stride), classes, progress)

    def predict(
        self,
        video,
        model=None,
        classes=None,
        frames=None,
        views=None,
        start=None,
        stride=None,
        frame_view=None,
        progress=gr.Progress(),  # noqa: B008
    ):
        """Top-5, frames, details, calibration and points figures (``frame_view``: ``"outline"`` shows
        whole frames with the model's crop outlined, ``"crop"`` only the crop)."""
        t0 = time.perf_counter()
        skip = (gr.skip(),) * 5
        # Clear the previous result first: if this run fails or is stopped, nothing on the page shows
        # an old result as if it were this one.
        yield (None,) * 5
        a = yield from run_cancellable(
            lambda p: self._analysis(video, model, classes, frames, views, start, stride, p),
            report=lambda f, m: progress(f, desc=m),
            idle=skip,
        )
        t1 = time.perf_counter()
        for w in sampling_warnings(a):
            gr.Warning(w, title="Short clip")
        out = (
            top5(a),
            gallery_items(a, frame_view or "outline"),
            details_markdown(a),
            calibration_figure(a),
            points_figure(a),
        )
        log.info("predict %s: analysis %.3f s, figures %.3f s", a.model_name, t1 - t0, time.perf_counter() - t1)
        yield out

    def after_predict(self, video, model=None, classes=None, frames=None, views=None, start=None, stride=None):
        """Refresh the layer and target pickers from the cached prediction (UI only)."""
        try:
            model = model or self.service.default_model()
            a = (
                self.service.peek(self.original(video), model, _sampling(frames, views, start, stride), classes)
                if model
                else None
            )
        except Exception:  # noqa: BLE001 - the prediction itself already reported the problem
            a = None
        if a is None:
            return gr.skip(), gr.skip(), gr.skip()
        cal = a.internals.get("calibration")
        pts = a.internals.get("points")
        cal_layers = [LAST_LAYER] + ([la.name for la in cal.layers] if cal else [])
        pts_layers = [LAST_LAYER] + ([la.name for la in pts.layers] if pts else [])
        targets = [PREDICTED] + [label for label, _ in a.top(5)]
        return (
            gr.update(choices=cal_layers, value=LAST_LAYER),
            gr.update(choices=pts_layers, value=LAST_LAYER),
            gr.update(choices=targets, value=PREDICTED),
        )

    def calibration(
        self, video, model=None, classes=None, frames=None, views=None, start=None, stride=None, view=None, layer=None
    ):
        a = self._analysis(video, model, classes, frames, views, start, stride)
        return calibration_figure(a, view or "heatmap", layer)

    def ila_points(
        self, video, model=None, classes=None, frames=None, views=None, start=None, stride=None, view=None, layer=None
    ):
        a = self._analysis(video, model, classes, frames, views, start, stride)
        return points_figure(a, view or "pairs", layer)

    def attributions(
        self,
        video,
        model=None,
        classes=None,
        frames=None,
        views=None,
        start=None,
        stride=None,
        method=None,
        target=None,
        steps=None,
        progress=gr.Progress(),  # noqa: B008
    ):
        """An attribution map for the target class; progress is shown and Stop ends it early."""
        from visualizations import METHODS, figures

        method = method or "integrated_gradients"
        entry = METHODS.get(method)
        opts: dict[str, Any] = {entry.steps: int(steps or 16)} if entry is not None and entry.steps else {}
        tgt = None if not target or target == PREDICTED else str(target)

        def work(p):
            a = self._analysis(video, model, classes, frames, views, start, stride, p)
            return a, self.service.explain(a, method, tgt, progress=p, **opts)

        yield None, ""  # an old map must not stay under a failed or stopped run
        a, expl = yield from run_cancellable(work, report=lambda f, m: progress(f, desc=m), idle=(gr.skip(), gr.skip()))
        note = (
            f"**{entry.label if entry is not None else method}** for "
            f"“{expl.target_label}” (p = {expl.score:.2f}) on the main view."
        )
        yield figures.attribution_figure(expl, a.view.display_frames), note

    def counterfactuals(
        self,
        video,
        model=None,
        classes=None,
        frames=None,
        views=None,
        start=None,
        stride=None,
        progress=gr.Progress(),  # noqa: B008
    ):
        from visualizations import figures

        yield None, ""

        def work(p):
            a = self._analysis(video, model, classes, frames, views, start, stride, p)
            return self.service.explain(a, "counterfactuals", None, progress=p)

        result = yield from run_cancellable(work, report=lambda f, m: progress(f, desc=m), idle=(gr.skip(), gr.skip()))
        lines = [f"Original prediction: **{result.original.predicted_label}**."]
        for v in result.variants:
            verdict = "prediction **changed**" if v.changed else "prediction kept"
            lines.append(f"- *{v.name}* ({v.description}): {v.predicted_label} — {verdict}")
        return_fig = figures.counterfactual_figure(result)
        yield return_fig, "\n".join(lines)

    def reframe(self, video, model, classes, frames, views, start, stride, frame_view):
        """Redraw the frame strip of the prediction on the page as whole frames or crops (UI only)."""
        try:
            model = model or self.service.default_model()
            a = self.service.peek(self.original(video), model, _sampling(frames, views, start, stride), classes)
        except Exception:  # noqa: BLE001 - no prediction on the page: nothing to redraw
            a = None
        return gr.skip() if a is None else gallery_items(a, frame_view or "outline")

    @staticmethod
    def stopped(current: str | None, what: str) -> str:
        """The note left by Stop: a run clears its panel when it starts, so an empty panel means a run was
        under way (a finished result is left alone)."""
        if current and current.strip():
            return gr.skip()
        return f"**Stopped.** The {what} was stopped before it finished; press the button again to rerun it."

    @staticmethod
    def new_clip(n_outputs: int) -> tuple[Any, ...]:
        """Empty every result panel when the user puts in another clip (UI only): results on the page
        always belong to the clip on the page, also when the new clip then fails to decode."""
        return (None,) * n_outputs

    def models(self) -> list[dict[str, Any]]:
        """The catalogue as JSON rows."""
        return [i.row() for i in catalogue()]

    def model_changed(self, model):
        """Status text and the sampling controls that fit the chosen model (UI only)."""
        if not model:
            return (gr.skip(),) * 6
        info = model_info(model)
        f, st, sd = sampling_fields(info)
        return (
            model_status_markdown(info),
            gr.update(visible=info.open_vocabulary),
            gr.update(value="", **f),
            gr.update(choices=_view_choices(info), value="single", visible=info.num_views > 1),
            gr.update(value="", **st),
            gr.update(value="", **sd),
        )


def _view_choices(info: ModelInfo) -> list[tuple[str, str]]:
    # A model tested on one view has no multi-view protocol to offer ("official multi-view (1 views)").
    if info.num_views <= 1:
        return [("single view", "single")]
    return [("single view", "single"), (f"official multi-view ({info.num_views} views)", "official")]


def sampling_fields(info: ModelInfo | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Placeholder, label and interactivity of the Frames, Start and Stride fields for a model.  The
    fields are empty by default and the placeholder says what empty means; a field that does not apply
    to the model's sampling is disabled (and says why)."""
    if info is None:
        none = {"placeholder": "", "interactive": False}
        return none, dict(none), dict(none)
    interval = info.sampling == "interval"
    frames = {
        "placeholder": f"{info.num_frames} (the model's own)",
        "interactive": info.family != "ila",
        "label": "Frames" if info.family != "ila" else "Frames (fixed for ILA)",
    }
    start = {
        "placeholder": "centred" if interval else f"whole clip ({info.sampling} sampling)",
        "interactive": interval,
    }
    stride = {
        "placeholder": f"{info.sampling_rate} (the model's own)" if interval else f"n/a ({info.sampling} sampling)",
        "interactive": interval,
    }
    return frames, start, stride


#: How the page names a model family.
def model_status_markdown(info: ModelInfo) -> str:
    """One line about the chosen model, plus how to get its weights when they are missing."""
    head = info.summary()
    if info.bundled:
        return f"**Bundled model**, runs offline. {head}"
    if info.available:
        return f"**Weights found** on this machine. {head}"
    text = f"**Needs weights.** {head}\n\n" + how_to_get_weights(info.name, markdown=True)
    if hosting.model_uploads_allowed():
        text += (
            f"\n\nOn this page: open **Add a model** below and upload the official checkpoint as `{info.name}` "
            "(no restart)."
        )
    return text


# --- layout ----------------------------------------------------------------------------------------------


def example_clips() -> list[Path]:
    """Example clips: the motion-task clips of ``app/examples`` (what the bundled models know), then the
    bundled natural clips of ``assets/examples``."""
    exts = {".mp4", ".webm", ".mov", ".mkv", ".avi"}
    out: list[Path] = []
    for folder in (APP_DIR / "examples", REPO_ROOT / "assets" / "examples"):
        if folder.is_dir():
            out += sorted(p for p in folder.iterdir() if p.suffix.lower() in exts)
    return out


def example_label(path: Path) -> str:
    """Caption of an example clip: ``motion_moving_right.mp4`` -> ``moving right (motion task)``."""
    words = path.stem.replace("_", " ")
    return f"{words[len('motion ') :]} (motion task)" if words.startswith("motion ") else words


def _model_choices(service: Service, include_missing: bool = False) -> list[tuple[str, str]]:
    """Picker entries: the models that run here, plus (when asked) those that need weights."""
    return [(i.choice_label, i.name) for i in catalogue() if include_missing or i.available]


def build_demo(service: Service | None = None, examples: list[str | Path] | None = None) -> gr.Blocks:
    """The whole UI around one :class:`Service`.

    Args:
        service: the shared service (a new one when None).
        examples: clips for the example gallery; a click runs the chosen model on one (default:
            :func:`example_clips`).
    """
    from visualizations.explain import attribution_methods

    service = service or Service()
    hosting.register_added_models()  # models added from the page in earlier runs
    h = Handlers(service)
    default = service.default_model()
    choices = _model_choices(service)
    first = default or (choices[0][1] if choices else None)
    info0 = model_info(first) if first else None
    if examples is None:
        examples = example_clips() if default else []

    with gr.Blocks(title="TAda Lab", analytics_enabled=False) as demo:
        gr.Markdown(
            "# TAda Lab\nUpload a clip (or record one, or pick an example), choose a model, press **Predict**. "
            "The tabs below show what happens inside: per-frame calibration weights (TAdaConv), interactive "
            "points (ILA), attributions and counterfactuals. The **About** tab explains it all in plain words."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                video = gr.Video(
                    label="Clip",
                    sources=["upload", "webcam"],
                    height=300,
                    elem_id="clip",
                    # 640x480 is plenty for 224-px models and keeps recordings small and quick to decode.
                    webcam_options=gr.WebcamOptions(
                        mirror=False,
                        constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
                    ),
                )
                # Custom values: the picker lists what runs here, an API call may still name any model
                # (an unknown name gets the registry's "did you mean" message).
                model = gr.Dropdown(
                    choices=choices, value=first, label="Model", elem_id="model", allow_custom_value=True
                )
                n_missing = sum(not i.available for i in catalogue())
                show_all = gr.Checkbox(
                    False,
                    label=f"List the models that need weights too ({n_missing})",
                    visible=n_missing > 0,
                    elem_id="show-all",
                )
                status = gr.Markdown(
                    model_status_markdown(info0) if info0 else "No model registered.", elem_id="status"
                )
                classes = gr.Textbox(
                    label="Class phrases (ILA open vocabulary: one per line or comma-separated; empty = the label set)",
                    lines=3,
                    visible=bool(info0 and info0.open_vocabulary),
                    elem_id="classes",
                )
                f0, st0, sd0 = sampling_fields(info0)
                with gr.Accordion("Sampling", open=False, elem_id="sampling"):
                    # Text fields, not gr.Number: a Number shows an empty value as 0 (and as invalid below
                    # its minimum), where empty here means "the model's own".
                    with gr.Row():
                        frames = gr.Textbox(**{"label": "Frames", **f0}, max_lines=1, elem_id="frames-field")
                        views = gr.Radio(
                            _view_choices(info0) if info0 else [("single view", "single")],
                            value="single",
                            label="Views",
                            visible=bool(info0 and info0.num_views > 1),
                            elem_id="views-field",
                        )
                    with gr.Row():
                        start = gr.Textbox(label="Start (s)", max_lines=1, elem_id="start-field", **st0)
                        stride = gr.Textbox(
                            label="Stride (frames at 30 fps)", max_lines=1, elem_id="stride-field", **sd0
                        )
                    gr.Markdown(
                        "Start and stride apply to interval sampling (TAda2D, TAdaConvNeXtV2 on Kinetics); "
                        "segment and uniform sampling always cover the whole clip.",
                        elem_classes="tada-note",
                    )
                with gr.Row():
                    run = gr.Button("Predict", variant="primary", elem_id="predict-btn")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                adding = hosting.model_uploads_allowed()
                if adding:
                    missing_names = [i.name for i in catalogue() if not i.available]
                    cap_mb = hosting.max_checkpoint_bytes() / 2**20
                    with gr.Accordion("Add a model (Hub repo or official checkpoint)", open=False, elem_id="add"):
                        gr.Markdown(
                            "A model that needs weights runs once they are here: name a Hugging Face Hub repo "
                            "holding a model converted by `python -m tada convert`, or upload the official "
                            f"checkpoint (`.pyth` / `.pth`, up to {cap_mb:.0f} MB); it is converted safely "
                            "(weights only, no code is run) and added without a restart.",
                            elem_classes="tada-note",
                        )
                        with gr.Row():
                            hub_repo = gr.Textbox(
                                label="Hub repo id", placeholder="org/name", max_lines=1, elem_id="hub-repo"
                            )
                            hub_btn = gr.Button("Add from the Hub", elem_id="hub-btn", scale=0)
                        ckpt = gr.File(
                            label="Official checkpoint",
                            file_types=list(hosting.CHECKPOINT_SUFFIXES),
                            elem_id="ckpt-file",
                        )
                        ckpt_variant = gr.Dropdown(
                            [("read the architecture from the file (a new model)", "")]
                            + [(n, n) for n in missing_names],
                            value="",
                            label="It is the checkpoint of",
                            elem_id="ckpt-variant",
                        )
                        ckpt_btn = gr.Button("Convert and add", elem_id="ckpt-btn")
                        add_note = gr.Markdown(elem_id="add-note")
            with gr.Column(scale=4) as right:
                label = gr.Label(num_top_classes=5, label="Top-5", elem_id="pred-label")
                details = gr.Markdown(elem_id="details")
        frame_view = gr.Radio(
            FRAME_VIEWS,
            value="outline",
            label="The model sees the centre square of each frame: show",
            elem_id="frame-view",
        )
        gallery = gr.Gallery(
            label="Frames fed to the model",
            columns=8,
            height=190,
            object_fit="contain",
            format="jpeg",  # half the encoding time of webp for these photos
            elem_id="frames",
        )
        common = [video, model, classes, frames, views, start, stride]
        # Tabs wrap onto a second row on a phone instead of hiding behind a "…" menu.
        with gr.Tabs(overflow_behavior="wrap", elem_id="tabs"):
            with gr.Tab("Calibration", elem_id="tab-calibration"):
                gr.Markdown(
                    "TAdaConv multiplies one shared kernel by a factor per channel **and per frame**. "
                    "Red = the frame gets a stronger kernel, blue = weaker, white = unchanged (identity).",
                    elem_classes="tada-note",
                )
                with gr.Row():
                    cal_view = gr.Radio(CALIBRATION_VIEWS, value="heatmap", label="View")
                    cal_layer = gr.Dropdown([LAST_LAYER], value=LAST_LAYER, label="Layer")
                cal_plot = gr.Plot(elem_id="cal-plot", label="Calibration")
            with gr.Tab("ILA points", elem_id="tab-points"):
                gr.Markdown(
                    "ILA predicts, for each pair of neighbouring frames, one point in each frame where the "
                    "two should be compared, and aligns the frames around them before mixing them. Nothing tells "
                    "it where the object is: the bundled tiny ILA keeps its points near one spot per layer instead "
                    "of following the moving shape (README, Evaluation).",
                    elem_classes="tada-note",
                )
                with gr.Row():
                    pts_view = gr.Radio(POINTS_VIEWS, value="pairs", label="View")
                    pts_layer = gr.Dropdown([LAST_LAYER], value=LAST_LAYER, label="Layer")
                pts_plot = gr.Plot(elem_id="points-plot", label="Interactive points")
            with gr.Tab("Attributions", elem_id="tab-attr"):
                with gr.Row():
                    method = gr.Dropdown(
                        [(m.label, m.name) for m in attribution_methods()],
                        value="integrated_gradients",
                        label="Method",
                        elem_id="attr-method",
                    )
                    target = gr.Dropdown([PREDICTED], value=PREDICTED, label="Target class", allow_custom_value=True)
                    steps = gr.Slider(
                        4, 64, step=4, value=16, label="Steps (IG) / samples (SmoothGrad)", elem_id="attr-steps"
                    )
                with gr.Row():
                    attr_run = gr.Button("Explain", variant="primary", elem_id="attr-btn")
                    attr_stop = gr.Button("Stop", variant="stop", elem_id="attr-stop")
                attr_note = gr.Markdown(elem_id="attr-note")
                attr_plot = gr.Plot(elem_id="attr-plot", label="Attribution")
            with gr.Tab("Counterfactuals", elem_id="tab-cf"):
                gr.Markdown(
                    "Does the model use time? Play the same frames reversed, shuffled, frozen or at half rate "
                    "and see whether the prediction survives.",
                    elem_classes="tada-note",
                )
                cf_run = gr.Button("Run counterfactuals", variant="primary", elem_id="cf-btn")
                cf_note = gr.Markdown(elem_id="cf-note")
                cf_plot = gr.Plot(elem_id="cf-plot", label="Counterfactuals")
            with gr.Tab("About", elem_id="tab-about"):
                gr.Markdown(TEACHING.read_text(encoding="utf-8") if TEACHING.is_file() else "")
                models_json = gr.JSON(h.models(), label="Model catalogue", elem_id="models-json")
                list_btn = gr.Button("Refresh the model list", elem_id="models-btn")

        outputs = [label, gallery, details, cal_plot, pts_plot]
        pred = run.click(
            guarded("the prediction")(h.predict),
            inputs=[*common, frame_view],
            outputs=outputs,
            api_name="predict",
            concurrency_id="compute",
        )
        pred.success(
            h.after_predict,
            inputs=common,
            outputs=[cal_layer, pts_layer, target],
            api_visibility="private",
            queue=False,
        )
        stop.click(
            lambda cur: h.stopped(cur, "prediction"),
            details,
            details,
            cancels=[pred],
            queue=False,
            api_visibility="private",
        )
        # upload / clear / stop_recording, not .change: an example fills the video too, and its own
        # prediction (started by the click) must stay.
        stale = [*outputs, attr_plot, attr_note, cf_plot, cf_note]
        for event in (video.upload, video.clear, video.stop_recording):
            event(lambda: h.new_clip(len(stale)), None, stale, api_visibility="private", queue=False)

        cal_inputs = [*common, cal_view, cal_layer]
        cal_fn = guarded("the calibration view")(h.calibration)
        cal_view.change(cal_fn, cal_inputs, cal_plot, api_name="calibration", concurrency_id="compute")
        cal_layer.input(cal_fn, cal_inputs, cal_plot, api_visibility="private", concurrency_id="compute")

        pts_inputs = [*common, pts_view, pts_layer]
        pts_fn = guarded("the interactive points view")(h.ila_points)
        pts_view.change(pts_fn, pts_inputs, pts_plot, api_name="ila_points", concurrency_id="compute")
        pts_layer.input(pts_fn, pts_inputs, pts_plot, api_visibility="private", concurrency_id="compute")

        attr = attr_run.click(
            guarded("the attribution")(h.attributions),
            inputs=[*common, method, target, steps],
            outputs=[attr_plot, attr_note],
            api_name="attributions",
            concurrency_id="compute",
        )
        attr_stop.click(
            lambda cur: h.stopped(cur, "attribution"),
            attr_note,
            attr_note,
            cancels=[attr],
            queue=False,
            api_visibility="private",
        )
        cf_run.click(
            guarded("the counterfactuals")(h.counterfactuals),
            inputs=common,
            outputs=[cf_plot, cf_note],
            api_name="counterfactuals",
            concurrency_id="compute",
        )
        list_btn.click(guarded("listing models")(h.models), None, models_json, api_name="models", queue=False)
        frame_view.change(h.reframe, [*common, frame_view], gallery, api_visibility="private", concurrency_id="compute")
        show_all.change(h.model_choices, [show_all, model], model, api_visibility="private", queue=False)
        video.upload(
            guarded("making a preview")(h.preview), video, video, api_visibility="private", concurrency_id="preview"
        )
        if adding:
            hub_btn.click(
                guarded("adding the model")(h.add_from_hub),
                [hub_repo, show_all],
                [model, add_note],
                api_name="add_model_from_hub",
                concurrency_id="compute",
            )
            ckpt_btn.click(
                guarded("adding the model")(h.add_from_checkpoint),
                [ckpt, ckpt_variant, show_all],
                [model, add_note],
                api_name="add_model_from_checkpoint",
                concurrency_id="compute",
            )
        model.change(
            guarded("reading the model")(h.model_changed),
            inputs=model,
            outputs=[status, classes, frames, views, start, stride],
            api_visibility="private",
            queue=False,
        )

        if examples:
            with right:  # under the prediction: the column has room there
                ex = gr.Examples(
                    examples=[[str(e)] for e in examples],
                    inputs=[video],
                    examples_per_page=8,
                    example_labels=[example_label(Path(e)) for e in examples],
                    label="Examples (run with the chosen model)",
                    api_visibility="private",
                )
            # A click fills the clip, then runs the chosen model on it (not a cached result of the
            # default model, which reset the picker); the service caches predictions, so a second click
            # on the same example and model is immediate.
            ex_pred = ex.load_input_event.then(
                guarded("the prediction")(h.predict),
                inputs=[*common, frame_view],
                outputs=outputs,
                api_visibility="private",
                concurrency_id="compute",
            )
            ex_pred.success(
                h.after_predict,
                inputs=common,
                outputs=[cal_layer, pts_layer, target],
                api_visibility="private",
                queue=False,
            )
            ex.load_input_event.then(
                lambda: h.new_clip(len(stale) - len(outputs)),
                None,
                stale[len(outputs) :],
                api_visibility="private",
                queue=False,
            )
            stop.click(None, cancels=[ex_pred], queue=False, api_visibility="private")
    return demo


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def create_app(service: Service | None = None, warm_up: bool = True, **kwargs: Any) -> gr.Blocks:
    """The demo with its queue configured: compute events share ``$TADA_CONCURRENCY`` slots
    (default 1 on a CPU, whose cores one request already uses; 2 on a GPU).  With ``warm_up`` the
    default model and a decoder worker are loaded in the background while the server starts."""
    service = service or Service()
    demo = build_demo(service, **kwargs)
    if warm_up:
        clips = example_clips()
        service.warm_up_in_background(clips[0] if clips else None)
    default_limit = 2 if service.device.type == "cuda" else 1
    limit = _env_int("TADA_CONCURRENCY", default_limit)
    demo.queue(default_concurrency_limit=limit, max_size=_env_int("TADA_QUEUE_SIZE", 64))
    return demo


def launch_kwargs(**overrides: Any) -> dict[str, Any]:
    """Arguments for ``demo.launch``: upload size cap, errors as messages, no telemetry, local files only."""
    # Checkpoints added from the page can be larger than a clip (the video layer caps clips itself).
    cap_mb = hosting.max_checkpoint_bytes() // 2**20 if hosting.model_uploads_allowed() else 0
    kwargs: dict[str, Any] = {
        "max_file_size": f"{cap_mb}mb" if cap_mb > 200 else MAX_FILE_SIZE,
        "show_error": True,
        "footer_links": ["api", "settings"],
        "css": CSS,
        "allowed_paths": [str(APP_DIR / "examples"), str(REPO_ROOT / "assets" / "examples")],
    }
    kwargs.update(overrides)
    return kwargs
