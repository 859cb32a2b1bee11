"""The About tab's guided lesson: six short steps, each a question, a few sentences and a button that
loads an example clip, picks a model, opens the tab that answers the question and runs what it needs.

Layout (:func:`build_lesson`, inside the About tab) and wiring (:meth:`Lesson.wire`, once every
component exists) live here, so that :mod:`app.ui` only calls them.  Tabs are selected by id; the ids
are the tabs' ``elem_id`` without ``tab-`` (:func:`name_tabs`), so a tab added later is reachable too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.handlers import Handlers, guarded

__all__ = ["STEPS", "Lesson", "LessonStep", "build_lesson", "name_tabs", "tab_id"]

EXAMPLES = Path(__file__).resolve().parent / "examples"

TADA = "tadaconvnextv2_motion.tiny_8f"
TADAFORMER = "tadaformer_motion.tiny_8f"
ILA = "ila_motion.tiny_8f"
BASELINE = "frame2d_motion.tiny_8f"


@dataclass(frozen=True)
class LessonStep:
    """One step: what the button says and sets, and what it runs after the prediction.

    Attributes:
        key: short id (the button's ``elem_id`` is ``lesson-<key>``).
        title: the question (the step's heading).
        action: the button's label: what a click does.
        text: two or three sentences in Markdown: what to look at and what it means.
        clip: file name in ``app/examples``.
        model: the model the picker is set to.
        tab: id of the tab that opens (:func:`tab_id`).
        run: what runs after the prediction: ``"counterfactuals"``, ``"attributions"`` or None.
        calibration_view: the Calibration tab's view, when the step shows one.
        method: the attribution method, when the step runs one.
    """

    key: str
    title: str
    action: str
    text: str
    clip: str
    model: str
    tab: str
    run: str | None = None
    calibration_view: str | None = None
    method: str | None = None


STEPS: tuple[LessonStep, ...] = (
    LessonStep(
        "baseline",
        "Does a 2-D model see time? Reverse the clip",
        "Reverse a clip for the 2-D baseline",
        "The **2-D baseline** looks at every frame on its own and averages what it sees. The button plays "
        "a shape moving right forwards, reversed, shuffled and frozen. Look at the reversed bar: the "
        "baseline gives the same answer, because the frames are the same — only their order changed. It "
        "cannot tell *moving right* from *moving left*.",
        "motion_moving_right.mp4",
        BASELINE,
        "cf",
        run="counterfactuals",
    ),
    LessonStep(
        "temporal",
        "Same clip, a temporal model: reverse it again",
        "Reverse it for TAdaConvNeXtV2",
        "**TAdaConvNeXtV2** sees the same frames, but its kernels change from frame to frame. Reversed, "
        "its answer flips to *moving left*: the order of the frames is what it reads. (Compare the two "
        "models' bars with step 1.)",
        "motion_moving_right.mp4",
        TADA,
        "cf",
        run="counterfactuals",
    ),
    LessonStep(
        "calibration",
        "Which frames does TAdaConv recalibrate?",
        "Show the calibration heatmap",
        "Each row is a channel of the last TAdaConv layer, each column a moment of the clip; the colour is "
        "the factor the shared kernel is multiplied by at that moment (white = unchanged). Only the channels "
        "that change most are shown, most first; the line under the title names them and the frames where "
        "they change most.",
        "motion_moving_right.mp4",
        TADA,
        "calibration",
        calibration_view="heatmap",
    ),
    LessonStep(
        "depth",
        "Where in the network does time matter?",
        "Show calibration across depth",
        "The same model on a rotating shape, every layer at once: the bars say how much each layer's kernels "
        "change over the clip (0 = never), the sentence under the title names the layer that adapts most, "
        "and the map below shows when each layer departs from its average.",
        "motion_rotating_anticlockwise.mp4",
        TADA,
        "calibration",
        calibration_view="summary",
    ),
    LessonStep(
        "ila",
        "Where does ILA look between two frames?",
        "Show ILA's points on a shrinking shape",
        "**ILA** compares each frame with the next at one point per frame, which it picks itself. Step "
        "through the frame pairs with the slider: do the two points sit on the shrinking shape, or "
        "elsewhere? Nothing told the model where the shape is.",
        "motion_shrinking.mp4",
        ILA,
        "points",
    ),
    LessonStep(
        "pixels",
        "Which pixels decided the answer?",
        "Run Grad-CAM on TAdaFormer",
        "Grad-CAM on **TAdaFormer**: the brighter a region, the more it raised the score of the predicted "
        "class. A model that learnt the task looks at the moving shape, not at the background photo; the "
        "curve under the frames says which moments mattered most.",
        "motion_moving_right.mp4",
        TADAFORMER,
        "attr",
        run="attributions",
        method="gradcam",
    ),
)


def tab_id(elem_id: str) -> str:
    """The id a tab is selected by: its ``elem_id`` without ``tab-`` (``tab-cf`` -> ``cf``)."""
    return elem_id.removeprefix("tab-")


def name_tabs(tabs: gr.Tabs) -> list[str]:
    """Give every tab of ``tabs`` without an id the id :func:`tab_id` of its ``elem_id`` (a tab is
    selected by id only), before the page is built; returns the ids."""
    ids = []
    for child in tabs.children:
        if isinstance(child, gr.Tab):
            if child.id is None and child.elem_id:
                child.id = tab_id(child.elem_id)
            ids.append(child.id)
    return ids


@dataclass
class Lesson:
    """The lesson's buttons (one per step, in order), wired by :meth:`wire`."""

    steps: Sequence[LessonStep]
    buttons: list[gr.Button]

    def wire(
        self,
        h: Handlers,
        *,
        tabs: gr.Tabs,
        common: Sequence[gr.components.Component],
        frame_view: gr.components.Component,
        predict_outputs: Sequence[gr.components.Component],
        after_predict_outputs: Sequence[gr.components.Component],
        stale: Sequence[gr.components.Component],
        cal_view: gr.components.Component,
        cal_layer: gr.components.Component,
        cal_plot: gr.components.Component,
        cf_outputs: Sequence[gr.components.Component],
        attr_inputs: Sequence[gr.components.Component],
        attr_outputs: Sequence[gr.components.Component],
        method: gr.components.Component,
    ) -> None:
        """A click sets the clip, the model, the tab (and the view or method the step names), clears the
        results of the previous clip, predicts, then runs the step's own computation."""
        video, model = common[0], common[1]
        known = set(name_tabs(tabs))
        predict = guarded("the prediction")(h.predict)
        calibration = guarded("the calibration view")(h.calibration)
        counterfactuals = guarded("the counterfactuals")(h.counterfactuals)
        attributions = guarded("the attribution")(h.attributions)
        for step, button in zip(self.steps, self.buttons):
            if step.tab not in known:
                raise ValueError(f"lesson step {step.key!r} opens tab {step.tab!r}; tabs: {sorted(known)}")
            event = button.click(
                _setter(step),
                None,
                [video, model, tabs, cal_view, method],
                api_visibility="private",
                queue=False,
            )
            event = event.then(lambda: h.new_clip(len(stale)), None, list(stale), api_visibility="private", queue=False)
            event = event.then(
                predict,
                [*common, frame_view],
                list(predict_outputs),
                api_visibility="private",
                concurrency_id="compute",
            )
            done = event.success(
                h.after_predict, list(common), list(after_predict_outputs), api_visibility="private", queue=False
            )
            if step.calibration_view and step.calibration_view != "heatmap":
                # The prediction draws the heatmap; the step's view replaces it.
                done.then(
                    calibration,
                    [*common, cal_view, cal_layer],
                    cal_plot,
                    api_visibility="private",
                    concurrency_id="compute",
                )
            if step.run == "counterfactuals":
                done.then(
                    counterfactuals, list(common), list(cf_outputs), api_visibility="private", concurrency_id="compute"
                )
            elif step.run == "attributions":
                done.then(
                    attributions,
                    list(attr_inputs),
                    list(attr_outputs),
                    api_visibility="private",
                    concurrency_id="compute",
                )


def _setter(step: LessonStep) -> Callable[[], tuple[Any, ...]]:
    """The first event of a step: clip, model, tab, calibration view, attribution method."""

    def set_inputs() -> tuple[Any, ...]:
        return (
            str(EXAMPLES / step.clip),
            step.model,
            gr.Tabs(selected=step.tab),
            step.calibration_view or gr.skip(),
            step.method or gr.skip(),
        )

    return set_inputs


def build_lesson(steps: Sequence[LessonStep] = STEPS) -> Lesson:
    """The lesson's layout (call inside the About tab): an intro, then per step its question, text and
    button; :meth:`Lesson.wire` connects the buttons once the rest of the page exists."""
    gr.Markdown(
        f"## A short lesson in {len(steps)} steps\n"
        "Each button loads an example clip, picks a model, opens the tab that answers the question and runs "
        "what it needs; the clip, the model and the tab stay yours to change. Below the lesson, *What you "
        "are looking at* explains everything in more detail.",
        elem_id="lesson-intro",
    )
    buttons = []
    for i, step in enumerate(steps, 1):
        with gr.Column(variant="panel", elem_id=f"lesson-step-{step.key}"):
            gr.Markdown(f"### {i}. {step.title}\n{step.text}")
            with gr.Row():  # the button at its own width, not the panel's
                buttons.append(gr.Button(f"▶ {step.action}", elem_id=f"lesson-{step.key}", scale=0, min_width=320))
    return Lesson(steps, buttons)
