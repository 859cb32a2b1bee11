"""The Compare tab: 2-4 models on the identical frames of the page's clip, side by side.

Layout, event wiring and handlers live here; :mod:`app.ui` only calls :func:`build_compare_tab` inside
its tabs.  The work is :meth:`app.service.Service.compare` (one decode, each model's own transform);
:mod:`visualizations.figures.compare` draws the result.  Endpoint: ``/compare`` (clip, models, method,
steps, frame view) -> note, top-k table, counterfactual table, counterfactual figure, attribution figure.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.catalogue import catalogue, default_model_name
from app.errors import AppError
from app.handlers import Handlers, guarded
from app.jobs import run_cancellable
from app.present import picker_choices

__all__ = ["COMPARE_CSS", "CompareHandlers", "build_compare_tab", "compare_markdown", "default_pair"]

#: Figures never spill out of their box (as the other tabs' figures); the tables fit the screen, their
#: cells wrapping in the page's own font (4 models side by side on a 390-px phone).
COMPARE_CSS = """
#cmp-cf-plot, #cmp-attr-plot {max-width: 100%; overflow-x: auto !important}
#cmp-cf-plot .js-plotly-plot, #cmp-attr-plot .js-plotly-plot {max-width: none}
#cmp-topk table, #cmp-cf-table table {table-layout: fixed !important; width: 100% !important}
#cmp-topk td, #cmp-topk th, #cmp-topk .cell-wrap, #cmp-cf-table td, #cmp-cf-table th, #cmp-cf-table .cell-wrap
  {font-family: var(--font) !important}
@media (max-width: 640px) {
  #cmp-topk td, #cmp-topk th, #cmp-cf-table td, #cmp-cf-table th {font-size: 12px !important; padding: 4px !important}
  #cmp-topk .cell-wrap, #cmp-cf-table .cell-wrap {padding: 2px !important; font-size: 12px !important}
}
"""

#: Range of the steps slider (integration steps / SmoothGrad samples), enforced for API calls too.
MIN_STEPS, MAX_STEPS = 4, 64
#: What the tab says before anything runs.
INTRO = (
    "Run 2 to 4 models on **the same frames** of the clip above: it is decoded once, with the sampling of "
    "the first model chosen, and each model gets those frames through its own resize, crop and "
    "normalisation. Then their top-5, what reversing, shuffling, freezing or halving the frame rate does "
    "to each prediction, and one attribution method, side by side. A model that only looks at frames one "
    "by one (the 2-D baseline) cannot tell a reversed clip from the original."
)


def default_pair() -> list[str]:
    """The comparison the tab opens with: the default (temporal) model and the 2-D baseline, when both
    run here; else the first two models that do."""
    available = [i for i in catalogue() if i.available]
    first = default_model_name()
    baseline = next((i.name for i in available if i.family == "frame2d"), None)
    if first and baseline:
        return [first, baseline]
    return [i.name for i in available[:2]]


def _names(models: Any) -> list[str]:
    """Model names from the picker (a list) or an API call (a list, or one comma-separated string)."""
    if models is None:
        return default_pair()
    if isinstance(models, str):
        models = models.split(",")
    return [str(m).strip() for m in models if m and str(m).strip()]


def compare_markdown(c: Any) -> str:
    """Which frames every model got (and their hash), how each model's input was made, and how to read
    the tables."""
    frames = ", ".join(f"f{i}" for i in c.frame_indices or [])
    same = (
        "identical for every model"
        if c.same_frames
        else "**not identical** (a bug: please report it)"  # the hashes are checked, not assumed
    )
    lines = [
        f"**Frames:** {len(c.frame_indices or [])} frames ({frames}), decoded once and sampled with the protocol "
        f"of `{c.reference}`, the first model ({c.protocol}). SHA-256 of the frames each model's transform "
        f"received: `{c.frames_sha256[:16]}…`, {same}. Each model's own transform (one view, centre crop):",
    ]
    for m in c.models:
        shape = "×".join(str(s) for s in m.input_shape[1:])
        notes = f" — {'; '.join(m.notes)}" if m.notes else ""
        lines.append(f"- `{m.name}`: frames `{m.frames_sha256[:12]}…` → input {shape}{notes}")
    lines.append(
        "\n*Counterfactual table:* each model's prediction on the edited clip, and the probability it still "
        "gives its original prediction (*changed* = the edit changed the prediction)."
    )
    skipped = [f"`{m.short}`: {m.attribution_error}" for m in c.models if m.attribution_error]
    if skipped:
        lines.append("\n*Attribution not applicable:* " + "; ".join(skipped))
    for w in c.warnings:
        lines.append(f"\n⚠️ {w}")
    return "\n".join(lines)


def _table(headers: list[str], rows: list[list[str]]) -> dict[str, Any]:
    return {"headers": headers, "data": rows}


class CompareHandlers:
    """The functions behind the Compare tab (the page's :class:`~app.handlers.Handlers` give the service
    and the uploaded file behind a browser preview)."""

    def __init__(self, handlers: Handlers) -> None:
        self.h = handlers
        self.service = handlers.service

    def compare(
        self,
        video,
        models=None,
        method=None,
        steps=None,
        frame_view=None,
        progress=gr.Progress(),  # noqa: B008
    ):
        """2-4 models on the identical frames: note, top-k table, counterfactual table and figure,
        attribution figure (``models``: a list or a comma-separated string; None = the default pair;
        ``method`` empty = no attribution)."""
        from visualizations import METHODS
        from visualizations.figures.compare import compare_attribution_figure, compare_counterfactual_figure

        outputs = 5
        yield (None,) * outputs  # an old comparison must not stay under a failed or stopped run
        names = _names(models)
        method = (method or "").strip() or None
        entry = METHODS.get(method or "")
        opts: dict[str, Any] = {}
        if entry is not None and entry.steps:
            n = int(steps or 16)
            if not MIN_STEPS <= n <= MAX_STEPS:  # the slider's range; an API call is held to it too
                raise AppError(f"Steps must be between {MIN_STEPS} and {MAX_STEPS} (got {n}).")
            opts[entry.steps] = n
        video = self.h.original(video)
        c = yield from run_cancellable(
            lambda p: self.service.compare(video, names, method, 5, progress=p, **opts),
            report=lambda f, m: progress(f, desc=m),
            idle=(gr.skip(),) * outputs,
        )
        yield (
            compare_markdown(c),
            _table(*c.topk_table()),
            _table(*c.counterfactual_table()),
            compare_counterfactual_figure(c),
            compare_attribution_figure(c, frame_view or "outline") if c.method else None,
        )


def build_compare_tab(h: Handlers, video: gr.Video, frame_view: gr.Radio | None = None) -> dict[str, Any]:
    """The "Compare" tab (``elem_id="tab-compare"``) and its events; call inside the page's ``gr.Tabs``.
    Returns its components by name."""
    from visualizations.explain import attribution_methods

    ch = CompareHandlers(h)
    with gr.Tab("Compare", elem_id="tab-compare") as tab:
        gr.Markdown(INTRO, elem_classes="tada-note")
        models = gr.Dropdown(
            picker_choices(),
            value=default_pair(),
            multiselect=True,
            max_choices=4,
            allow_custom_value=True,  # an API call may name any variant (errors say what is wrong)
            label="Models (2 to 4; the first one's sampling chooses the frames)",
            elem_id="cmp-models",
        )
        with gr.Row():
            method = gr.Dropdown(
                [("none (faster)", "")] + [(m.label, m.name) for m in attribution_methods()],
                value="integrated_gradients",
                label="Attribution method (each model's own top class)",
                elem_id="cmp-method",
            )
            steps = gr.Slider(
                MIN_STEPS, MAX_STEPS, step=4, value=16, label="Steps (IG) / samples (SmoothGrad)", elem_id="cmp-steps"
            )
        with gr.Row():
            run = gr.Button("Compare", variant="primary", elem_id="cmp-btn")
            stop = gr.Button("Stop", variant="stop", elem_id="cmp-stop")
        note = gr.Markdown(elem_id="cmp-note")
        table = {"interactive": False, "wrap": True, "max_height": 1200}  # whole tables, no inner scrolling
        topk = gr.Dataframe(label="Top-5 of each model", elem_id="cmp-topk", **table)
        cf_table = gr.Dataframe(
            label="Temporal counterfactuals: prediction on the edited clip · probability left to the original",
            elem_id="cmp-cf-table",
            **table,
        )
        # No label over the figures: they carry their own titles (a label box would cover them).
        cf_plot = gr.Plot(label="Counterfactuals of every model", show_label=False, elem_id="cmp-cf-plot")
        attr_plot = gr.Plot(label="Attributions side by side", show_label=False, elem_id="cmp-attr-plot")
    outputs = [note, topk, cf_table, cf_plot, attr_plot]
    inputs = [video, models, method, steps] + ([frame_view] if frame_view is not None else [])
    event = run.click(
        guarded("the comparison")(ch.compare),
        inputs=inputs,
        outputs=outputs,
        api_name="compare",
        concurrency_id="compute",
    )
    stop.click(
        lambda cur: Handlers.stopped(cur, "comparison"),
        note,
        note,
        cancels=[event],
        queue=False,
        api_visibility="private",
    )
    # Results on the page belong to the clip on the page: any new clip (upload, recording, example)
    # empties them.
    video.change(lambda: (None,) * len(outputs), None, outputs, api_visibility="private", queue=False)
    return {
        "tab": tab,
        "models": models,
        "method": method,
        "steps": steps,
        "run": run,
        "stop": stop,
        **dict(zip(["note", "topk", "cf_table", "cf_plot", "attr_plot"], outputs, strict=True)),
    }
