"""The Gradio Blocks app: the layout and the wiring of its events to :class:`app.handlers.Handlers`.

Every endpoint has an ``api_name`` so scripts can call it with ``gradio_client``:

``/predict``          clip + model + sampling -> top-5, the frames fed to the model, details, the
                      calibration and ILA-points figures of the main view
``/calibration``      one calibration view (heatmap of a layer, across depth, channels, kernel)
``/ila_points``       ILA interactive points (frame pairs of a layer, or trajectories)
``/attributions``     an attribution method for a target class (progress, can be stopped)
``/counterfactuals``  predictions on reversed / shuffled / frozen / half-rate versions of the clip
``/compare``          2-4 models on the identical frames: top-k, counterfactuals, attributions side by side
``/models``           the model catalogue with availability
``/timeline``, ``/timeline_figure``, ``/frame_importance``: the Timeline tab (:mod:`app.timeline_tab`)

All compute endpoints but ``/compare`` take the same first seven inputs as ``/predict`` and reuse its cached result.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr

from app import hosting, uploads
from app.catalogue import catalogue, model_info
from app.compare_tab import COMPARE_CSS, build_compare_tab
from app.handlers import Handlers, guarded, readable_slider
from app.lesson import build_lesson
from app.present import (
    CALIBRATION_VIEWS,
    FRAME_VIEWS,
    LAST_LAYER,
    POINTS_VIEWS,
    PREDICTED,
    model_status_markdown,
    picker_choices,
    sampling_fields,
    view_choices,
)
from app.service import Service
from app.timeline_tab import CSS as TIMELINE_CSS
from app.timeline_tab import build_timeline_tab

__all__ = ["build_demo", "create_app", "launch_kwargs", "example_clips", "MAX_FILE_SIZE"]

APP_DIR = Path(__file__).resolve().parent

REPO_ROOT = APP_DIR.parent

MAX_FILE_SIZE = "200mb"  # same as tada.video.VideoLimits.max_bytes

TEACHING = APP_DIR / "teaching.md"

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
CSS += COMPARE_CSS  # the Compare tab (app/compare_tab.py)


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
    choices = picker_choices()
    first = default or (choices[0][1] if choices else None)
    info0 = model_info(first) if first else None
    if examples is None:
        examples = example_clips() if default else []

    # delete_cache: uploads and made files are deleted once old (app.uploads; Gradio keeps them otherwise).
    with gr.Blocks(title="TAda Lab", analytics_enabled=False, delete_cache=uploads.cache_sweep()) as demo:
        gr.Markdown(
            "# TAda Lab\nUpload a clip (or record one, or pick an example), choose a model, press **Predict**. "
            "The tabs below show what happens inside: per-frame calibration weights (TAdaConv), interactive "
            "points (ILA), attributions and counterfactuals. The **About** tab has a six-step lesson with "
            "one-click examples, and explains it all in plain words."
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
                            view_choices(info0) if info0 else [("single view", "single")],
                            value="single",
                            label="Views",
                            visible=bool(info0 and info0.num_views > 1),
                            elem_id="views-field",
                        )
                    with gr.Row():
                        start = gr.Textbox(label="Start or window (s)", max_lines=1, elem_id="start-field", **st0)
                        stride = gr.Textbox(
                            label="Stride (frames at 30 fps)", max_lines=1, elem_id="stride-field", **sd0
                        )
                    gr.Markdown(
                        "Start and stride apply to interval sampling (TAda2D, TAdaConvNeXtV2 on Kinetics); "
                        "segment and uniform sampling cover the whole clip, or the window `start-end` (seconds) "
                        "given in its place, as a click on the Timeline does.",
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
        with gr.Tabs(overflow_behavior="wrap", elem_id="tabs") as tabs:
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
                    "two should be compared, and aligns the frames around them before mixing them; the arrow is "
                    "the points' displacement from the earlier frame to the later one. The bundled tiny ILA's "
                    "points follow the moving shape (both within one patch of it in 92 % of held-out frame "
                    "pairs) because its training had help the official ILA does not: a training-only loss "
                    "pulled them towards the true object centre. The model itself runs the released code; "
                    "a released ILA, trained without that loss, is not told where the object is (README, "
                    "Evaluation).",
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
                    steps = readable_slider(
                        gr.Slider(
                            4, 64, step=4, value=16, label="Steps (IG) / samples (SmoothGrad)", elem_id="attr-steps"
                        )
                    )
                signed = gr.Checkbox(
                    False,
                    label="Signed map for gradient methods: + for the class, − against it (diverging colours)",
                    elem_id="attr-signed",
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
            build_compare_tab(h, video, frame_view)  # "Compare": 2-4 models on the identical frames
            timeline = build_timeline_tab(h)
            with gr.Tab("About", elem_id="tab-about"):
                lesson = build_lesson()
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
            event(h.drop_window, start, start, api_visibility="private", queue=False)

        cal_inputs = [*common, cal_view, cal_layer]
        cal_fn = guarded("the calibration view")(h.calibration)
        cal_view.change(cal_fn, cal_inputs, cal_plot, api_name="calibration", concurrency_id="compute")
        cal_layer.input(cal_fn, cal_inputs, cal_plot, api_visibility="private", concurrency_id="compute")

        pts_inputs = [*common, pts_view, pts_layer, frame_view]
        pts_fn = guarded("the interactive points view")(h.ila_points)
        pts_view.change(pts_fn, pts_inputs, pts_plot, api_name="ila_points", concurrency_id="compute")
        pts_layer.input(pts_fn, pts_inputs, pts_plot, api_visibility="private", concurrency_id="compute")

        attr = attr_run.click(
            guarded("the attribution")(h.attributions),
            inputs=[*common, method, target, steps, frame_view, signed],
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
        timeline.wire(
            video=video,
            model=model,
            classes=classes,
            common=common,
            start=start,
            target=target,
            predict=h.predict,
            predict_inputs=[*common, frame_view],
            predict_outputs=outputs,
            after_predict=h.after_predict,
            after_predict_outputs=[cal_layer, pts_layer, target],
            stale=[attr_plot, attr_note, cf_plot, cf_note],
        )
        list_btn.click(guarded("listing models")(h.models), None, models_json, api_name="models", queue=False)
        lesson.wire(
            h,
            tabs=tabs,
            common=common,
            frame_view=frame_view,
            predict_outputs=outputs,
            after_predict_outputs=[cal_layer, pts_layer, target],
            stale=stale[len(outputs) :],
            cal_view=cal_view,
            cal_layer=cal_layer,
            cal_plot=cal_plot,
            cf_outputs=[cf_plot, cf_note],
            attr_inputs=[*common, method, target, steps, frame_view, signed],
            attr_outputs=[attr_plot, attr_note],
            method=method,
        )
        frame_view.change(
            h.reframe,
            [*common, frame_view, pts_view, pts_layer],
            [gallery, pts_plot],
            api_visibility="private",
            concurrency_id="compute",
        )
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
            # A timeline window picked on the previous clip is dropped before the example's prediction.
            ex_pred = ex.load_input_event.then(h.drop_window, start, start, api_visibility="private", queue=False).then(
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
    """Arguments for ``demo.launch``: upload size cap and per-client quota (:class:`app.uploads.UploadGuard`),
    errors as messages, no telemetry, local files only, Gradio's worker threads capped at
    ``$TADA_MAX_THREADS`` (default 16, Gradio's is 40: compute runs ``$TADA_CONCURRENCY`` at a time
    anyway, and every extra thread can hold a malloc arena of its own), and the sessions whose state
    Gradio keeps capped at ``$TADA_SESSION_CAPACITY`` (default 128, Gradio's is 10000: each visitor's
    session holds a copy of every component's config and last value, ~1.5 MB here; the least
    recently active go first)."""
    from starlette.middleware import Middleware

    # Checkpoints added from the page can be larger than a clip (the video layer caps clips itself).
    cap_mb = hosting.max_checkpoint_bytes() // 2**20 if hosting.model_uploads_allowed() else 0
    kwargs: dict[str, Any] = {
        "max_file_size": f"{cap_mb}mb" if cap_mb > 200 else MAX_FILE_SIZE,
        "show_error": True,
        "footer_links": ["api", "settings"],
        "css": CSS + TIMELINE_CSS,
        "allowed_paths": [str(APP_DIR / "examples"), str(REPO_ROOT / "assets" / "examples")],
        "max_threads": max(4, _env_int("TADA_MAX_THREADS", 16)),
        "state_session_capacity": max(8, _env_int("TADA_SESSION_CAPACITY", 128)),
        "app_kwargs": {"middleware": [Middleware(uploads.UploadGuard)]},
    }
    kwargs.update(overrides)
    return kwargs
