"""The Timeline tab: the model over sliding windows of the whole clip, under the video, synced to playback.

``/timeline``          clip + model (+ class phrases, stride, window) -> the timeline figure, its rows as
                       JSON, the JSON and CSV exports (files) and a summary; progress shown, Stop ends it,
                       cached per clip and model (a second request is immediate)
``/timeline_figure``   the timeline figure as a PNG (kaleido + Chromium) or a standalone HTML file
``/frame_importance``  per-frame importance of the current prediction (the ``temporal`` frame ablation)
                       against time in the video

A click on a point of the timeline selects that window: the video seeks to it (``gr.Video``'s
``playback_position``), the Sampling "Start" field takes the window as ``start-end`` seconds (which
every model family honours, see :class:`app.service.Sampling`), and the prediction reruns on it, so
every other tab (calibration, ILA points, attributions, counterfactuals) explains that window.

The playback time is drawn on both figures in the browser (a line that follows the ``<video>``'s
time, the value ``playback_position`` carries): Gradio sends ``playback_position`` to the server only
inside another event, and a round trip per video frame would load the queue for a line.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.errors import AppError
from app.handlers import Handlers, guarded, parse_sampling
from app.jobs import run_cancellable
from app.present import PREDICTED
from tada.errors import quote

__all__ = ["TimelineHandlers", "TimelineTab", "build_timeline_tab"]

log = logging.getLogger("tada.app")

TOP_K = 5

CSS = """
#tl-plot, #fi-plot {max-width: 100%; overflow-x: auto !important}
#tl-plot .js-plotly-plot, #fi-plot .js-plotly-plot {max-width: none}
#tl-bridge {display: none !important}
.tada-playhead {position: absolute; width: 0; border-left: 2px dotted crimson; pointer-events: none; z-index: 5}
/* On a phone the timeline keeps a readable width and scrolls sideways inside its box. */
@media (max-width: 640px) {#tl-plot .js-plotly-plot, #fi-plot .js-plotly-plot {min-width: 620px}}
"""

# Runs once in the page (gr.HTML's js_on_load): clicks on the figures become events of the hidden
# bridge component ("click": a timeline window, "select": a frame's time), and a line follows the
# video's playback time on both figures.
BRIDGE_JS = """
const hooked = new WeakSet();
const figures = [["tl-plot", "window"], ["fi-plot", "frame"]];
function hook(gd, kind) {
  if (!gd || hooked.has(gd) || typeof gd.on !== "function") return;
  hooked.add(gd);
  gd.on("plotly_click", (ev) => {
    const p = ev && ev.points && ev.points[0];
    if (!p) return;
    const cd = Array.isArray(p.customdata) ? p.customdata : null;
    if (kind === "window") trigger("click", {window: cd ? Number(cd[0]) : null, t: Number(p.x)});
    else trigger("select", {t: cd ? Number(cd[0]) : Number(p.x)});
  });
}
function playhead(gd, t) {
  const fl = gd && gd._fullLayout;
  if (!fl || !fl.xaxis || !fl._size) return;
  let line = gd.querySelector(":scope > .tada-playhead");
  if (!line) {
    line = document.createElement("div");
    line.className = "tada-playhead";
    if (getComputedStyle(gd).position === "static") gd.style.position = "relative";
    gd.appendChild(line);
  }
  const r = fl.xaxis.range.map(Number);
  if (t === null || !(t >= Math.min(r[0], r[1]) && t <= Math.max(r[0], r[1]))) {
    line.style.display = "none";
    return;
  }
  line.style.left = (fl.xaxis._offset + fl.xaxis.l2p(t)) + "px";
  line.style.top = fl._size.t + "px";
  line.style.height = fl._size.h + "px";
  line.style.display = "block";
  line.dataset.t = String(t);
}
setInterval(() => {
  const video = document.querySelector("#clip video");
  const t = video && Number.isFinite(video.currentTime) ? video.currentTime : null;
  for (const [id, kind] of figures) {
    const gd = document.querySelector("#" + id + " .js-plotly-plot");
    if (gd) { hook(gd, kind); playhead(gd, t); }
  }
}, 200);
"""

_NUMBER = re.compile(r"^\s*\d+(?:\.\d*)?\s*s?\s*$")


def _seconds(x: Any, what: str) -> float | None:
    """A seconds field: empty = automatic; a positive number otherwise."""
    if x is None or (isinstance(x, str) and not x.strip()):
        return None
    if isinstance(x, int | float):
        value = float(x)
    elif _NUMBER.match(str(x)):
        value = float(str(x).strip().rstrip("s"))
    else:
        raise AppError(f"The {what} must be a number of seconds, not {quote(x)}.")
    if value <= 0:
        raise AppError(f"The {what} must be longer than 0 s.")
    return value


def _fmt_s(x: float) -> str:
    """Seconds for the Start field, exact enough to find the same first frame again (up to 1000 fps)."""
    return f"{x:.3f}".rstrip("0").rstrip(".") or "0"


def _stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "clip"


class TimelineHandlers:
    """The functions behind the Timeline tab's events (on the app's :class:`~app.handlers.Handlers`)."""

    def __init__(self, handlers: Handlers) -> None:
        self.h = handlers
        self.service = handlers.service
        self._out = Path(tempfile.mkdtemp(prefix="tada-timeline-"))

    # --- shared --------------------------------------------------------------------------------
    def _args(self, video, model, classes, stride, window) -> tuple[str, str, Any, float | None, float | None]:
        model = model or self.service.default_model()
        if not model:
            raise AppError("Pick a model first.")
        if not video:
            raise AppError("Upload a video (or record one with the webcam, or pick an example) first.")
        return self.h.original(video), model, classes, _seconds(stride, "stride"), _seconds(window, "window")

    def _cached(self, video, model, classes, stride, window) -> Any | None:
        try:
            video, model, classes, stride_s, window_s = self._args(video, model, classes, stride, window)
            return self.service.peek_timeline(video, model, stride_s, window_s, classes)
        except Exception:  # noqa: BLE001 - no valid settings: no timeline on the page
            return None

    @staticmethod
    def _selected(timeline: Any, start: Any) -> int | None:
        """The window of ``timeline`` that the Start field names (``"s-e"``), if any."""
        try:
            window = parse_sampling(None, None, start, None).window
        except Exception:  # noqa: BLE001 - a bad field selects nothing
            return None
        if window is None:
            return None
        for w in timeline.windows:
            if abs(w.start_s - window[0]) < 1e-3 and abs(w.end_s - window[1]) < 1e-3:
                return w.index
        return None

    def _files(self, tl: Any, video: str) -> list[str]:
        folder = Path(tempfile.mkdtemp(dir=self._out))
        stem = f"{_stem(Path(video).stem)}_{_stem(tl.model)}_timeline"
        import json

        js = folder / f"{stem}.json"
        js.write_text(json.dumps(tl.to_dict(TOP_K), indent=1), encoding="utf-8")
        cs = folder / f"{stem}.csv"
        cs.write_text(tl.to_csv(TOP_K), encoding="utf-8")
        return [str(js), str(cs)]

    @staticmethod
    def _summary(tl: Any, cached: bool, seconds: float) -> str:
        cal = any(w.calibration_variation is not None for w in tl.windows)
        lines = [
            f"**{len(tl.windows)} windows** of {tl.window_s:.2f} s every {tl.stride_s:.2f} s over "
            f"{tl.info.duration:.1f} s ({tl.num_frames} frames each, {tl.sampling} sampling) · "
            + ("from the cache" if cached else f"computed in {seconds:.1f} s"),
            "**Click a point** to select its window: the video jumps there and every tab explains that window "
            "(its `start-end` is put in Sampling ▸ Start; empty that field for the whole clip again).",
        ]
        if cal:
            lines.append(
                "The bottom row is the **calibration variation** of each window: how much TAdaConv's per-frame "
                "calibration changes over the window's frames (where temporal adaptation is strongest)."
            )
        lines += [f"⚠️ {w}" for w in tl.warnings]
        return "\n\n".join(lines)

    # --- events --------------------------------------------------------------------------------
    def timeline(self, video, model=None, classes=None, stride=None, window=None, progress=gr.Progress()):  # noqa: B008
        """The timeline figure, its JSON (dict), the JSON and CSV files, and a summary (Stop ends it)."""
        video, model, classes, stride_s, window_s = self._args(video, model, classes, stride, window)
        cached = self.service.peek_timeline(video, model, stride_s, window_s, classes) is not None
        yield None, None, None, ""  # nothing old stays under a failed or stopped run
        t0 = time.perf_counter()
        tl = yield from run_cancellable(
            lambda p: self.service.timeline(video, model, stride_s, window_s, classes, progress=p),
            report=lambda f, m: progress(f, desc=m),
            idle=(gr.skip(),) * 4,
        )
        seconds = time.perf_counter() - t0
        from visualizations.figures.timeline import timeline_figure

        fig = timeline_figure(tl, TOP_K)
        log.info("timeline %s: %d windows in %.2f s%s", tl.model, len(tl.windows), seconds, " (cached)" * cached)
        yield fig, tl.to_dict(TOP_K), self._files(tl, video), self._summary(tl, cached, seconds)

    def pick(self, video, model, classes, stride, window, evt: gr.EventData):
        """A click on the timeline (UI only): seek the video to that window, put it in the Start field,
        shade it on the figure.  The prediction then reruns on it (wired in :meth:`TimelineTab.wire`)."""
        tl = self._cached(video, model, classes, stride, window)
        data = getattr(evt, "_data", None) or {}
        if tl is None or not tl.windows:
            raise AppError("Compute the timeline first (the button above the figure).")
        index = data.get("window")
        if isinstance(index, int | float) and 0 <= int(index) < len(tl.windows):
            w = tl.windows[int(index)]
        else:
            w = tl.window_at(float(data.get("t") or 0.0))
        from visualizations.figures.timeline import timeline_figure

        first, last = int(w.frames.min()), int(w.frames.max())
        note = (
            f"**Window {w.index + 1} of {len(tl.windows)} selected: {w.start_s:.2f}–{w.end_s:.2f} s** "
            f"(frames f{first}–f{last}). The prediction above and every tab now explain this window; empty "
            "Sampling ▸ Start to go back to the whole clip."
        )
        return (
            gr.update(playback_position=float(w.start_s)),
            f"{_fmt_s(w.start_s)}-{_fmt_s(w.end_s)}",
            timeline_figure(tl, TOP_K, selected=w.index),
            note,
        )

    @staticmethod
    def seek(evt: gr.EventData):
        """A click on a frame of the importance figure (UI only): seek the video to that frame."""
        t = (getattr(evt, "_data", None) or {}).get("t")
        return gr.update(playback_position=float(t)) if isinstance(t, int | float) else gr.skip()

    def figure_file(self, video, model=None, classes=None, stride=None, window=None, start=None, fmt=None):
        """The timeline figure on the page (the selected window shaded) as a PNG or a standalone HTML file."""
        fmt = (fmt or "png").lower()
        if fmt not in ("png", "html"):
            raise AppError("The figure can be saved as 'png' or 'html'.")
        tl = self._cached(video, model, classes, stride, window)
        if tl is None:
            raise AppError("Compute the timeline first (the button above the figure).")
        from visualizations.figures.timeline import timeline_figure

        fig = timeline_figure(tl, TOP_K, selected=self._selected(tl, start))
        folder = Path(tempfile.mkdtemp(dir=self._out))
        path = folder / f"{_stem(Path(self.h.original(video)).stem)}_{_stem(tl.model)}_timeline.{fmt}"
        if fmt == "html":
            fig.write_html(path, include_plotlyjs=True, full_html=True)  # opens offline
            return str(path)
        try:
            png = fig.to_image(format="png", width=1200, height=int(fig.layout.height or 500), scale=1)
        except Exception as exc:  # noqa: BLE001 - no kaleido or no browser: say what to install
            log.warning("PNG export failed", exc_info=True)
            raise AppError(
                "Saving a PNG needs the kaleido package and a Chromium browser on the server "
                f"(apt-get install chromium) and failed here ({type(exc).__name__}); the HTML file works "
                "without them."
            ) from None
        path.write_bytes(png)
        return str(path)

    def frame_importance(
        self,
        video,
        model=None,
        classes=None,
        frames=None,
        views=None,
        start=None,
        stride=None,
        target=None,
        progress=gr.Progress(),  # noqa: B008
    ):
        """Per-frame importance (frame ablation) of the current prediction against time in the video."""
        tgt = None if not target or target == PREDICTED else str(target)

        def work(p):
            a = self.h._analysis(video, model, classes, frames, views, start, stride, p)
            return a, self.service.explain(a, "temporal", tgt, progress=p)

        yield None, ""
        a, expl = yield from run_cancellable(work, report=lambda f, m: progress(f, desc=m), idle=(gr.skip(),) * 2)
        from visualizations.figures.timeline import frame_importance_figure

        ts = a.view.frame_timestamps
        fig = frame_importance_figure(expl)
        best = int(expl.frame_importance.argmax()) if len(expl.frame_importance) else 0
        note = (
            f"Each bar: how much the score of **{expl.target_label}** drops when that one frame "
            f"({len(ts)} frames, {ts[0]:.2f}–{ts[-1]:.2f} s) is blanked; the dotted line is the playback time. "
            f"Most important: frame f{int(a.view.frame_indices[best])} at {float(ts[best]):.2f} s. "
            "Click a bar to jump there."
        )
        yield fig, note


@dataclass
class TimelineTab:
    """The Timeline tab's components (built inside the app's ``gr.Tabs``); :meth:`wire` connects them."""

    handlers: TimelineHandlers
    stride: gr.Textbox
    window: gr.Textbox
    run: gr.Button
    stop: gr.Button
    note: gr.Markdown
    plot: gr.Plot
    bridge: gr.HTML
    files: gr.File
    data: gr.JSON
    fmt: gr.Radio
    save: gr.Button
    figure_file: gr.File
    fi_run: gr.Button
    fi_note: gr.Markdown
    fi_plot: gr.Plot

    def wire(
        self,
        *,
        video: gr.Video,
        model: gr.Dropdown,
        classes: gr.Textbox,
        common: list[Any],
        start: gr.Textbox,
        target: gr.Dropdown,
        predict: Any,
        predict_inputs: list[Any],
        predict_outputs: list[Any],
        after_predict: Any,
        after_predict_outputs: list[Any],
        stale: list[Any],
    ) -> None:
        """Connect the events (call after every component of the page exists).

        ``predict``/``after_predict``: the app's prediction handler and its follow-up, rerun on a picked
        window; ``stale``: the panels a new window makes out of date (emptied)."""
        th = self.handlers
        tl_inputs = [video, model, classes, self.stride, self.window]
        tl_outputs = [self.plot, self.data, self.files, self.note]
        run = self.run.click(
            guarded("the timeline")(th.timeline),
            tl_inputs,
            tl_outputs,
            api_name="timeline",
            concurrency_id="compute",
        )
        self.stop.click(
            lambda cur: th.h.stopped(cur, "timeline"),
            self.note,
            self.note,
            cancels=[run],
            queue=False,
            api_visibility="private",
        )
        own_stale = [self.fi_plot, self.fi_note]
        picked = self.bridge.click(
            guarded("selecting the window")(th.pick),
            tl_inputs,
            [video, start, self.plot, self.note],
            api_visibility="private",
            queue=False,
        )
        picked.success(
            lambda: (None,) * len(stale + own_stale), None, stale + own_stale, api_visibility="private", queue=False
        )
        rerun = picked.success(
            guarded("the prediction")(predict),
            predict_inputs,
            predict_outputs,
            api_visibility="private",
            concurrency_id="compute",
        )
        rerun.success(after_predict, common, after_predict_outputs, api_visibility="private", queue=False)
        self.stop.click(None, cancels=[rerun], queue=False, api_visibility="private")
        self.bridge.select(th.seek, None, video, api_visibility="private", queue=False)
        self.save.click(
            guarded("saving the figure")(th.figure_file),
            [*tl_inputs, start, self.fmt],
            self.figure_file,
            api_name="timeline_figure",
            concurrency_id="compute",
        )
        fi = self.fi_run.click(
            guarded("the frame importance")(th.frame_importance),
            [*common, target],
            [self.fi_plot, self.fi_note],
            api_name="frame_importance",
            concurrency_id="compute",
        )
        self.stop.click(None, cancels=[fi], queue=False, api_visibility="private")
        # A new clip or model: the timeline on the page belongs to the old one.
        clear = [self.plot, self.data, self.files, self.note, self.figure_file, *own_stale]
        for event in (video.upload, video.clear, video.stop_recording, model.change):
            event(lambda: (None,) * len(clear), None, clear, api_visibility="private", queue=False)


def build_timeline_tab(handlers: Handlers) -> TimelineTab:
    """Lay out the Timeline tab (inside ``gr.Tabs``); then call :meth:`TimelineTab.wire`."""
    th = TimelineHandlers(handlers)
    with gr.Tab("Timeline", elem_id="tab-timeline"):
        gr.Markdown(
            "A long clip, window by window: the model is run on sliding windows of its own clip length over "
            "the whole video. The dotted line follows the video as it plays.",
            elem_classes="tada-note",
        )
        with gr.Row():
            stride = gr.Textbox(
                label="Stride (s)", placeholder="automatic (at most 120 windows)", max_lines=1, elem_id="tl-stride"
            )
            window = gr.Textbox(
                label="Window (s)", placeholder="the model's own clip length", max_lines=1, elem_id="tl-window"
            )
        with gr.Row():
            run = gr.Button("Compute the timeline", variant="primary", elem_id="tl-btn")
            stop = gr.Button("Stop", variant="stop", elem_id="tl-stop")
        note = gr.Markdown(elem_id="tl-note")
        plot = gr.Plot(elem_id="tl-plot", label="Timeline")
        bridge = gr.HTML("", js_on_load=BRIDGE_JS, elem_id="tl-bridge", padding=False)
        files = gr.File(label="Timeline as JSON and CSV", file_count="multiple", interactive=False, elem_id="tl-files")
        with gr.Row(equal_height=True):
            fmt = gr.Radio(
                [("PNG picture", "png"), ("HTML page (interactive, works offline)", "html")],
                value="png",
                label="Save the figure as",
                elem_id="tl-fmt",
            )
            save = gr.Button("Save the figure", elem_id="tl-save-btn", scale=0)
        figure_file = gr.File(label="Figure", interactive=False, height=90, elem_id="tl-figure-file")
        with gr.Accordion("Timeline data (JSON)", open=False):
            data = gr.JSON(label="Windows", elem_id="tl-json")
        gr.Markdown(
            "### Which frames matter\nPer-frame importance of the current prediction (the selected window, "
            "or the whole clip): the drop of the class score when one frame is blanked (frame ablation).",
            elem_classes="tada-note",
        )
        fi_run = gr.Button("Per-frame importance", elem_id="fi-btn")
        fi_note = gr.Markdown(elem_id="fi-note")
        fi_plot = gr.Plot(elem_id="fi-plot", label="Per-frame importance")
    return TimelineTab(
        th, stride, window, run, stop, note, plot, bridge, files, data, fmt, save, figure_file, fi_run, fi_note, fi_plot
    )
