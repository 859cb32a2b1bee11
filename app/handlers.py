"""The functions behind the UI's events: parse the inputs, call the :class:`~app.service.Service`,
hand the results to the presenters (:mod:`app.present`); any exception becomes a readable
``gr.Error`` (:func:`guarded`)."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from app import hosting, uploads
from app.catalogue import catalogue, model_info
from app.errors import AppError, Cancelled, is_unexpected, user_message
from app.jobs import run_cancellable
from app.present import (
    LAST_LAYER,
    PREDICTED,
    attribution_figure,
    attribution_note,
    calibration_figure,
    counterfactual_figure,
    counterfactual_markdown,
    details_markdown,
    gallery_items,
    model_status_markdown,
    picker_choices,
    points_figure,
    sampling_fields,
    sampling_warnings,
    top5,
    view_choices,
)
from app.service import MAX_FRAMES, Analysis, Sampling, Service
from tada.errors import WeightsUnavailableError, quote

__all__ = ["FRAMES_RULE", "Handlers", "readable_slider", "guarded", "parse_sampling"]

log = logging.getLogger("tada.app")


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


def _is_upload(path: str) -> bool:
    """Whether ``path`` lies in Gradio's upload folder (where :mod:`app.uploads` sweeps old files)."""
    from gradio.utils import get_upload_folder

    try:
        return Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        return False


def _number(x: Any, what: str, rule: str) -> float | None:
    """``x`` from a text field as a finite number; None when empty; AppError naming the field otherwise."""
    if isinstance(x, str):
        x = x.strip()
    if x is None or x == "":
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise AppError(f"{what} must be {rule}; {quote(x)} is not a number.") from None
    if not math.isfinite(value):
        raise AppError(f"{what} must be {rule}, not {quote(x)}.")
    return value


def _whole(x: Any, what: str, rule: str, low: int, high: int | None = None) -> int | None:
    value = _number(x, what, rule)
    if value is None:
        return None
    if value != int(value) or value < low or (high is not None and value > high):
        raise AppError(f"{what} must be {rule}, not {quote(x)}.")
    return int(value)


_WINDOW = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(?:-|–|to)\s*(\d+(?:\.\d*)?)\s*s?\s*$")

FRAMES_RULE = f"a whole number from 1 to {MAX_FRAMES} (empty: the model's own)"


def parse_sampling(frames: Any, views: Any, start: Any, stride: Any) -> Sampling:
    """The Sampling fields as typed (text boxes, or numbers through the API): Frames a whole number
    from 1 to :data:`~app.service.MAX_FRAMES`, Stride a whole number from 1, Start seconds from 0;
    empty means the model's own.  Start also takes a window ``"12.5-13.5"`` (seconds; what a click on the
    timeline puts there), read by every sampling protocol.  Anything else is an :class:`AppError` that
    names the field."""
    window = _WINDOW.match(start) if isinstance(start, str) else None
    end = None
    if window:
        start, end = window.group(1), float(window.group(2))
    start_s = _number(start, "Start", "a time in seconds, 0 or more")
    if start_s is not None and start_s < 0:
        raise AppError(f"Start must be a time in seconds, 0 or more, not {quote(start)}.")
    return Sampling(
        frames=_whole(frames, "Frames", FRAMES_RULE, 1, MAX_FRAMES),
        views=str(views or "single"),
        start=start_s,
        stride=_whole(stride, "Stride", "a whole number, 1 or more (empty: the model's own)", 1),
        end=end,
    )


def readable_slider(slider: gr.Slider) -> gr.Slider:
    """``slider`` with a sentence for an out-of-range or non-numeric API value instead of Gradio's
    preprocessing report (component index, types, the original exception).  The check wraps this one
    instance's ``preprocess``: a subclass of a Gradio component would make Gradio write a ``.pyi``
    stub beside this module."""
    label = slider.label or "The value"
    rule = f"a whole number from {slider.minimum:g} to {slider.maximum:g}"
    original = slider.preprocess

    def preprocess(payload: Any) -> float:
        try:
            value = _whole(payload, label, rule, int(slider.minimum), int(slider.maximum))
        except AppError as exc:
            raise gr.Error(str(exc), title="Not a valid setting", print_exception=False) from None
        if value is None:
            raise gr.Error(f"{label} must be {rule}.", title="Not a valid setting", print_exception=False)
        return original(value)

    slider.preprocess = preprocess  # type: ignore[method-assign]
    return slider


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
        uploads.sweep_folder(self._preview_dir)  # previews age like the uploads they stand for
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
        return gr.update(choices=picker_choices(bool(show_all)), value=current)

    def _added(self, name: str, show_all) -> tuple[Any, str]:
        info = model_info(name)
        note = (
            f"✅ Added **{name}**: {info.family_name}, {info.num_classes} classes, "
            f"{info.num_frames} frames. "
            "It is selected in the picker; press **Predict**."
        )
        return gr.update(choices=picker_choices(bool(show_all)), value=name), note

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
        if video and not os.path.isfile(video) and _is_upload(video):
            raise AppError(
                "This clip's upload has been deleted (uploads are kept for a limited time); upload it again."
            )
        info = model_info(model)
        if info.open_vocabulary and not (classes or "").strip():
            from tada.labels import list_label_sets

            if info.label_set not in list_label_sets():  # e.g. an ILA checkpoint added without its variant
                raise AppError(
                    f"{model} has no label set of its own: type the class phrases to compare in the box "
                    "under the model picker."
                )
        return self.service.analyse(video, model, parse_sampling(frames, views, start, stride), classes, progress)

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
            points_figure(a, frame_view=frame_view),
        )
        log.info("predict %s: analysis %.3f s, figures %.3f s", a.model_name, t1 - t0, time.perf_counter() - t1)
        yield out

    def after_predict(self, video, model=None, classes=None, frames=None, views=None, start=None, stride=None):
        """Refresh the layer and target pickers from the cached prediction (UI only)."""
        try:
            model = model or self.service.default_model()
            a = (
                self.service.peek(self.original(video), model, parse_sampling(frames, views, start, stride), classes)
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
        self,
        video,
        model=None,
        classes=None,
        frames=None,
        views=None,
        start=None,
        stride=None,
        view=None,
        layer=None,
        frame_view=None,
    ):
        a = self._analysis(video, model, classes, frames, views, start, stride)
        return points_figure(a, view or "pairs", layer, frame_view)

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
        frame_view=None,
        signed=None,
        progress=gr.Progress(),  # noqa: B008
    ):
        """An attribution map for the target class; progress is shown and Stop ends it early.  ``signed``:
        gradient methods keep the sign (+ for the class, − against it) on a diverging scale."""
        from visualizations import METHODS

        method = method or "integrated_gradients"
        entry = METHODS.get(method)
        opts: dict[str, Any] = {entry.steps: int(steps or 16)} if entry is not None and entry.steps else {}
        if signed and entry is not None and entry.signed_curve:
            opts["signed"] = True
        tgt = None if not target or target == PREDICTED else str(target)

        def work(p):
            a = self._analysis(video, model, classes, frames, views, start, stride, p)
            return a, self.service.explain(a, method, tgt, progress=p, **opts)

        yield None, ""  # an old map must not stay under a failed or stopped run
        a, expl = yield from run_cancellable(work, report=lambda f, m: progress(f, desc=m), idle=(gr.skip(), gr.skip()))
        yield attribution_figure(a, expl, frame_view), attribution_note(expl)

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
        """Predictions on reversed / shuffled / frozen / half-rate versions of the clip."""
        yield None, ""

        def work(p):
            a = self._analysis(video, model, classes, frames, views, start, stride, p)
            return self.service.explain(a, "counterfactuals", None, progress=p)

        result = yield from run_cancellable(work, report=lambda f, m: progress(f, desc=m), idle=(gr.skip(), gr.skip()))
        yield counterfactual_figure(result), counterfactual_markdown(result)

    def reframe(self, video, model, classes, frames, views, start, stride, frame_view, pts_view=None, pts_layer=None):
        """Redraw the frame strip and the points figure of the prediction on the page as whole frames or
        crops (UI only; an attribution map follows at its next run)."""
        try:
            model = model or self.service.default_model()
            a = self.service.peek(self.original(video), model, parse_sampling(frames, views, start, stride), classes)
        except Exception:  # noqa: BLE001 - no prediction on the page: nothing to redraw
            a = None
        if a is None:
            return gr.skip(), gr.skip()
        return gallery_items(a, frame_view or "outline"), points_figure(a, pts_view or "pairs", pts_layer, frame_view)

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

    @staticmethod
    def drop_window(start: Any) -> Any:
        """Empty Sampling ▸ Start when it holds a timeline window (``"30-32"``; UI only): the window was
        picked on the previous clip, a plain start time is the user's own setting and stays."""
        return "" if isinstance(start, str) and _WINDOW.match(start) else gr.skip()

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
            gr.update(choices=view_choices(info), value="single", visible=info.num_views > 1),
            gr.update(value="", **st),
            gr.update(value="", **sd),
        )
