"""The About tab's lesson in a real browser (Playwright + Debian's Chromium, as in test_app_browser):
every step's button sets the clip, the model and the tab it states, and shows the step's result, at
desktop size and on a 390-px phone.  Screenshots go to the test's tmp dir (path printed) or to
``$TADA_LESSON_SHOTS`` when set.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from app_server import LOCAL, chromium, launched_app

from app.lesson import STEPS, LessonStep
from tada.motion import CLASSES

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

#: What each step's result shows once it is there (a selector and a text it contains).
RESULT = {
    "counterfactuals": ("#cf-note", "reverse"),
    "attributions": ("#attr-note", "Grad-CAM"),
}
VIEW_TEXT = {"heatmap": "scale their kernel most", "summary": "Temporal adaptation is strongest in"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("gradio_lesson"), warm_up=False) as (demo, _):
        yield demo.local_url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _selected_tab(page) -> str:
    """The id of the tab whose button is selected (buttons carry ``<elem_id>-button``)."""
    return page.evaluate(
        """() => { const b = document.querySelector('#tabs button[role=tab][aria-selected=true]');
                   return b ? b.id.replace(/^tab-/, '').replace(/-button$/, '') : null; }"""
    )


def _check_step(page, step: LessonStep) -> None:
    """The button's promises: clip, model and tab as stated, then the step's own result."""
    page.wait_for_function("(id) => document.querySelector(`#tab-${id}-button[aria-selected=true]`)", arg=step.tab)
    assert _selected_tab(page) == step.tab
    stem = Path(step.clip).stem
    page.wait_for_function("(s) => (document.querySelector('#clip video')?.src || '').includes(s)", arg=stem)
    assert page.locator("#model input").input_value().split()[0] == step.model  # label: "<name>  (bundled)"
    # The prediction belongs to this step's model and clip (not the previous step's).
    page.wait_for_function(
        "(m) => document.querySelector('#details').innerText.includes(m)", arg=step.model, timeout=180_000
    )
    names = "|".join(re.escape(c) for c in CLASSES)
    page.wait_for_function(f"() => /({names})/.test(document.querySelector('#pred-label').innerText)")
    if step.run:
        sel, text = RESULT[step.run]
        page.wait_for_function(
            "([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)", arg=[sel, text], timeout=180_000
        )
    if step.calibration_view:
        page.wait_for_function(
            "(t) => (document.querySelector('#cal-plot .gtitle')?.textContent || '').includes(t)",
            arg=VIEW_TEXT[step.calibration_view],
            timeout=180_000,
        )
        checked = page.locator("#tab-calibration input[type=radio]:checked").first.get_attribute("value")
        assert checked == step.calibration_view
    if step.tab == "points":
        page.wait_for_selector("#points-plot .js-plotly-plot .main-svg")
    if step.method:
        assert "Grad-CAM" in page.locator("#attr-method input").input_value()


def _shots_dir(tmp_path: Path, name: str) -> Path:
    root = Path(os.environ.get("TADA_LESSON_SHOTS") or tmp_path)
    shots = root / name
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}")
    return shots


@pytest.mark.parametrize(("size", "width", "height"), [("desktop", 1280, 1000), ("phone", 390, 844)])
def test_each_lesson_button_sets_clip_model_and_tab(server, browser, tmp_path: Path, size, width, height) -> None:
    shots = _shots_dir(tmp_path, size)
    page = browser.new_page(viewport={"width": width, "height": height})
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith(LOCAL) else None)
    page.set_default_timeout(120_000)
    page.goto(server, wait_until="load")
    page.wait_for_selector("#predict-btn")
    for i, step in enumerate(STEPS, 1):
        page.get_by_role("tab", name="About").click()
        button = page.locator(f"#lesson-{step.key}")
        button.scroll_into_view_if_needed()
        if i == 1:
            page.screenshot(path=str(shots / "0_lesson.png"))
        assert button.is_visible() and step.action in button.inner_text()
        button.click()
        _check_step(page, step)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width, f"wider than {width}"
        page.locator("#tabs").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"{i}_{step.key}.png"))
    assert "Traceback" not in page.inner_text("body")
    assert external == [], f"the page fetched external resources: {external[:5]}"
    page.close()


def test_lesson_steps_name_real_examples_models_and_tabs() -> None:
    """No step points at a clip, model or tab that is not there (checked without a browser)."""
    import tada
    from app.lesson import EXAMPLES, build_lesson, name_tabs

    assert 5 <= len(STEPS) <= 6 and len({s.key for s in STEPS}) == len(STEPS)
    models = set(tada.list_models())
    for step in STEPS:
        assert (EXAMPLES / step.clip).is_file(), step.clip
        assert step.model in models, step.model
    import gradio as gr

    with gr.Blocks():
        with gr.Tabs() as tabs:
            with gr.Tab("A", elem_id="tab-cf"):
                pass
            with gr.Tab("B", elem_id="tab-x", id="own"):
                build_lesson()
    assert name_tabs(tabs) == ["cf", "own"]  # ids from elem_ids, an explicit id kept
