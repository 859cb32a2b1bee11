"""The app in a real browser: Playwright driving Debian's Chromium (installed by ``.ci/run``; no download).

Uploads a clip, predicts, reads the top label, opens every tab and checks its plot rendered, uploads a
bad file and reads the error.  Screenshots are saved under the test's tmp dir (path printed).
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from app_server import LOCAL, chromium, launched_app

import tada
from app import catalogue
from tada.motion import CLASSES, generate_clip
from tada.motion.media import write_mp4

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def _save_small(png: bytes, path: Path, width: int = 1000) -> None:
    """Downscale a screenshot and store it as a palette PNG (small enough for the repository)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("gradio_browser")) as (demo, _):
        yield demo.local_url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_upload_predict_tabs_and_error(server, browser, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    truth = "moving right"
    clip = write_mp4(
        generate_clip(11, truth, num_frames=16, size=64, distractors=False, noise=False),
        tmp_path / "right.mp4",
        fps=8,
        scale=3,
    )
    bad = tmp_path / "holiday.mp4"
    bad.write_text("this is a shopping list, not a video\n" * 40)
    model = catalogue.default_model_name()
    frames = tada.get_pretrained_cfg(model).num_frames

    page = browser.new_page(viewport={"width": 1280, "height": 1100}, permissions=["camera"])
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith(LOCAL) else None)
    page.set_default_timeout(120_000)
    page.goto(server, wait_until="load")  # never "networkidle": the queue connection stays open
    page.wait_for_selector("#predict-btn")

    # An example: one click fills the inputs and shows the (lazily cached) prediction.
    names = "|".join(re.escape(c) for c in CLASSES)
    page.get_by_text("moving right (motion task)", exact=True).click()
    page.wait_for_function(f"() => /({names})/.test(document.querySelector('#pred-label').innerText)")
    page.wait_for_selector("#cal-plot .js-plotly-plot")
    page.wait_for_selector("#clip video")

    # Upload and predict (the clip is 192 x 192: the details panel tells its result from the example's).
    page.locator("#clip button[aria-label=Clear]").first.click()
    page.wait_for_selector("#clip video", state="detached")
    page.locator("#clip input[type=file]").first.set_input_files(str(clip))
    page.wait_for_selector("#clip video")
    page.click("#predict-btn")
    page.wait_for_function("() => document.querySelector('#details').innerText.includes('192×192')")
    label_text = page.inner_text("#pred-label")
    top = next(line for line in label_text.splitlines()[1:] if line.strip() in CLASSES)
    assert top in CLASSES
    page.wait_for_function(f"() => document.querySelectorAll('#frames img').length >= {frames}")
    page.wait_for_selector("#cal-plot .js-plotly-plot")
    page.screenshot(path=str(shots / "1_prediction.png"), full_page=True)
    if os.environ.get("TADA_README_SCREENSHOT"):  # refresh the README picture: the top of this very page
        _save_small(
            page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 1900}),
            Path(os.environ["TADA_README_SCREENSHOT"]),
        )

    # Every tab renders its plot.
    page.get_by_role("tab", name="Calibration").click()
    assert page.locator("#cal-plot .js-plotly-plot .main-svg").count() > 0
    page.get_by_role("tab", name="ILA points").click()
    page.wait_for_selector("#points-plot .js-plotly-plot")
    page.get_by_role("tab", name="Attributions").click()
    page.locator("#attr-method input").click()
    page.get_by_role("option", name="Grad-CAM").click()
    page.click("#attr-btn")
    page.wait_for_selector("#attr-plot .js-plotly-plot")
    page.wait_for_function("() => document.querySelector('#attr-note').innerText.includes('Grad-CAM')")
    page.screenshot(path=str(shots / "2_attributions.png"), full_page=True)
    page.get_by_role("tab", name="Counterfactuals").click()
    page.click("#cf-btn")
    page.wait_for_selector("#cf-plot .js-plotly-plot")
    assert "reverse" in page.inner_text("#cf-note")
    page.get_by_role("tab", name="About").click()
    page.wait_for_selector("text=TAdaConv: one kernel")
    page.screenshot(path=str(shots / "3_about.png"), full_page=True)

    # Webcam: record a second of the synthetic camera, predict on the recording (a MediaRecorder webm).
    page.locator("#clip button[aria-label=Clear]").first.click()
    page.locator("#clip button[aria-label='Capture from camera']").click()
    page.get_by_text("Click to Access Webcam").click()
    page.locator("#clip button[aria-label='start recording']").click()
    time.sleep(1.5)
    page.locator("#clip button", has_text="Stop").first.click()
    page.wait_for_selector("#clip video[src*='.webm']")
    page.click("#predict-btn")
    page.wait_for_function("() => /Clip \\d+×\\d+, .*, vp[89]/.test(document.querySelector('#details').innerText)")
    page.screenshot(path=str(shots / "4_webcam.png"), full_page=True)

    # A bad file: the video layer's message reaches the page, the app keeps working.
    page.locator("#clip button[aria-label=Clear]").first.click()
    page.locator("#clip button[aria-label='Upload file']").click()  # back from the webcam source
    page.locator("#clip input[type=file]").first.set_input_files(str(bad))
    # The webcam clip's results leave with it: nothing on the page describes a clip that is not there.
    page.wait_for_function("() => !document.querySelector('#details').innerText.includes('Clip')")
    page.click("#predict-btn")
    toast = page.locator("[data-testid=toast-text]", has_text="not a video")
    toast.first.wait_for()
    assert "Clip" not in page.inner_text("#details")
    assert not any(line.strip() in CLASSES for line in page.inner_text("#pred-label").splitlines())
    assert "Traceback" not in page.inner_text("body")
    page.screenshot(path=str(shots / "5_error.png"))
    assert external == [], f"the page fetched external resources: {external[:5]}"
    page.close()


def _motion_example(page) -> None:
    names = "|".join(re.escape(c) for c in CLASSES)
    page.get_by_text("moving right (motion task)", exact=True).click()
    page.wait_for_function(f"() => /({names})/.test(document.querySelector('#pred-label').innerText)")


PLOTS = ("#cal-plot", "#points-plot", "#attr-plot", "#cf-plot")


def test_phone_every_tab_reachable_figures_fit(server, browser, tmp_path: Path) -> None:
    """At 390 x 844 every tab is a visible button (no "…" menu), nothing spills sideways out of the page,
    each figure stays inside its box (fitting, or scrolling inside it), and the frame captions do not
    run into each other."""
    shots = tmp_path / "phone"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(120_000)
    page.goto(server, wait_until="load")
    page.wait_for_selector("#predict-btn")
    _motion_example(page)
    page.wait_for_function("() => document.querySelectorAll('#frames img').length >= 8")
    page.screenshot(path=str(shots / "0_main.png"), full_page=True)

    # Every frame of the strip is on screen (4 a row, no sideways scroll) and captions are apart.
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('#frames .caption-label')].map(e => {
             const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""
    )
    assert len(boxes) >= 8
    assert all(0 <= b[0] and b[2] <= 390 for b in boxes), boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = min(a[2], b[2]) - max(a[0], b[0]) > 0 and min(a[3], b[3]) - max(a[1], b[1]) > 0
            assert not overlap, (a, b)

    for i, (tab, plot) in enumerate(
        [("Calibration", "#cal-plot"), ("ILA points", "#points-plot"), ("Attributions", "#attr-plot"),
         ("Counterfactuals", "#cf-plot"), ("About", None)]
    ):  # fmt: skip
        button = page.get_by_role("tab", name=tab)
        assert button.is_visible(), f"tab {tab} is not reachable"
        button.click()
        if tab == "Attributions":
            page.click("#attr-btn")
        if tab == "Counterfactuals":
            page.click("#cf-btn")
        if plot:
            page.wait_for_selector(f"{plot} .js-plotly-plot .main-svg")
            time.sleep(0.5)  # plotly's resize to its box
            fit = page.evaluate(
                """(sel) => { const e = document.querySelector(sel), r = e.getBoundingClientRect();
                     return {left: r.left, right: r.right, sw: e.scrollWidth, cw: e.clientWidth,
                             ox: getComputedStyle(e).overflowX}; }""",
                plot,
            )
            assert fit["left"] >= 0 and fit["right"] <= 390, (tab, fit)
            assert fit["sw"] <= fit["cw"] + 1 or fit["ox"] in ("auto", "scroll"), (tab, fit)
        if tab == "ILA points":  # the default model has no ILA modules: the figure says so, in lines that fit
            spans = page.evaluate(
                """() => [...document.querySelectorAll('#points-plot .annotation-text')]
                     .map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"""
            )
            assert spans and all(0 <= left and right <= 390 for left, right in spans), spans
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, f"page wider than 390 on {tab}"
        page.screenshot(path=str(shots / f"{i + 1}_{tab.split()[0].lower()}.png"), full_page=True)
    page.close()


def test_sampling_fields_examples_keep_model_and_stale_states(server, browser) -> None:
    """Empty sampling fields say what empty means and disabled ones look disabled; an example runs the
    chosen model; a failed run clears the old result; Stop leaves a message."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(server, wait_until="load")
    page.wait_for_selector("#predict-btn")

    page.get_by_text("Sampling", exact=True).first.click()
    frames = page.locator("#frames-field textarea, #frames-field input").first
    frames.wait_for()
    assert frames.input_value() == "" and "the model's own" in frames.get_attribute("placeholder")
    assert frames.is_enabled()
    default = tada.get_pretrained_cfg(catalogue.default_model_name())
    stride = page.locator("#stride-field textarea, #stride-field input").first
    assert stride.input_value() == "" and stride.is_disabled() == (default.sampling != "interval")
    if stride.is_disabled():
        assert float(stride.evaluate("e => getComputedStyle(e).opacity")) < 0.8  # looks disabled
    if default.num_clips * default.num_crops == 1:
        assert not page.locator("#views-field").is_visible()  # no "official multi-view (1 views)"
    assert "(1 views)" not in page.inner_text("body")

    # The example runs the model in the picker, and the picker keeps it.
    other = next(
        m for m in tada.list_models() if "motion" in m and m != default.name and catalogue.model_info(m).bundled
    )
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile(re.escape(other))).click()
    page.wait_for_function(f"() => document.querySelector('#status').innerText.includes('{other}')")
    _motion_example(page)
    page.wait_for_function(f"() => document.querySelector('#details').innerText.includes('{other}')")
    assert other in page.locator("#model input").input_value()

    # A model without weights: the error clears the result, the toast is whole, the panel has the commands.
    # Models that cannot run here are not in the picker until asked for.
    missing = next(m for m in tada.list_models() if catalogue.model_info(m).weights == "gdrive")
    page.locator("#model input").click()
    assert page.get_by_role("option", name=re.compile(re.escape(missing))).count() == 0
    page.keyboard.press("Escape")
    page.locator("#show-all input").check()
    time.sleep(0.5)
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile(re.escape(missing))).click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('python -m tada convert')")
    page.click("#predict-btn")
    toast = page.locator("[data-testid=toast-text]", has_text="model picker")
    toast.first.wait_for()
    assert "says how to get them" in toast.first.inner_text()
    page.wait_for_function("() => !document.querySelector('#details').innerText.includes('Model')")
    assert not any(line.strip() in CLASSES for line in page.inner_text("#pred-label").splitlines())
    assert page.locator("#frames img").count() == 0

    # Stop during an attribution leaves a visible note (back to a model that runs).
    page.locator("#model input").click()
    page.get_by_role("option", name=re.compile(re.escape(default.name))).click()
    _motion_example(page)
    page.get_by_role("tab", name="Attributions").click()
    page.locator("#attr-method input").click()
    page.get_by_role("option", name="SmoothGrad").click()
    page.locator("#attr-steps input[type=number]").fill("64")
    page.click("#attr-btn")
    page.click("#attr-stop")
    page.wait_for_function("() => document.querySelector('#attr-note').innerText.includes('Stopped')")
    page.close()


def test_unplayable_upload_shows_a_server_preview(server, browser, tmp_path: Path) -> None:
    """An MJPEG .avi (as some cameras write; Chromium cannot play it) is shown as a server-made H.264
    preview that the page plays, while the model reads the original file."""
    import av
    import numpy as np

    src = tmp_path / "camera.avi"
    with av.open(str(src), "w") as c:
        s = c.add_stream("mjpeg", rate=12)
        s.width, s.height, s.pix_fmt = 320, 180, "yuvj420p"
        for i in range(24):
            img = np.zeros((180, 320, 3), np.uint8)
            img[60:120, 10 * i : 10 * i + 40] = (250, 220, 30)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(server, wait_until="load")
    page.wait_for_selector("#predict-btn")
    page.locator("#clip input[type=file]").first.set_input_files(str(src))
    page.wait_for_selector("#clip video[src*='preview-']")
    # The browser decodes the preview: it knows its size (an unplayable file never gets one).
    page.wait_for_function("() => document.querySelector('#clip video').videoWidth === 320")
    assert "not playable" not in page.inner_text("#clip").lower()
    page.click("#predict-btn")
    page.wait_for_function("() => document.querySelector('#details').innerText.includes('mjpeg')")
    assert "320×180" in page.inner_text("#details")
    page.close()


LONG_EXAMPLE = "rotating then moving right 40s (motion task)"


def _fits(page, sel: str, width: int) -> None:
    """The element stays inside the viewport (a wide figure scrolls inside its own box)."""
    fit = page.evaluate(
        """(sel) => { const e = document.querySelector(sel), r = e.getBoundingClientRect();
             return {left: r.left, right: r.right, sw: e.scrollWidth, cw: e.clientWidth,
                     ox: getComputedStyle(e).overflowX}; }""",
        sel,
    )
    assert fit["left"] >= 0 and fit["right"] <= width, (sel, fit)
    assert fit["sw"] <= fit["cw"] + 1 or fit["ox"] in ("auto", "scroll"), (sel, fit)


def test_timeline_click_seeks_and_every_tab_explains_that_window(server, browser, tmp_path: Path) -> None:
    """The long example's timeline: a click on a point seeks the video to that window and reruns the
    prediction on it (details, frames and the calibration tab show its frames); the playback line
    follows the video on the timeline and the frame-importance figure; the JSON download is the timeline."""
    import json

    shots = tmp_path / "timeline"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(120_000)
    page.goto(server, wait_until="load")
    page.wait_for_selector("#predict-btn")
    page.get_by_text(LONG_EXAMPLE, exact=True).click()
    page.wait_for_function("() => document.querySelector('#details').innerText.includes('40.0 s')")
    page.wait_for_selector("#clip video")
    page.get_by_role("tab", name="Timeline").click()
    page.click("#tl-btn")
    page.wait_for_function("() => document.querySelector('#tl-note').innerText.includes('20 windows')")
    page.wait_for_function("() => document.querySelectorAll('#tl-plot .scatterlayer .trace .points path').length >= 20")
    points = page.locator("#tl-plot .scatterlayer .trace").first.locator(".points path")
    assert points.count() == 20

    # Click the point of window 16 (30-32 s).
    page.locator("#tl-plot").scroll_into_view_if_needed()
    box = points.nth(15).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function("() => document.querySelector('#tl-note').innerText.includes('Window 16 of 20')")
    page.wait_for_function("() => Math.abs(document.querySelector('#clip video').currentTime - 30) < 0.05")
    page.wait_for_function("() => document.querySelector('#details').innerText.includes('window 30.12–31.88 s')")
    page.wait_for_function("() => document.querySelector('#frames').innerText.includes('f241')")
    page.get_by_text("Sampling", exact=True).first.click()
    assert page.locator("#start-field textarea, #start-field input").first.input_value() == "30-32"
    # The playback line sits on the clicked window and follows the video.
    page.wait_for_function("() => document.querySelector('#tl-plot .tada-playhead')?.dataset.t === '30'")
    page.evaluate("() => { document.querySelector('#clip video').currentTime = 12.5; }")
    page.wait_for_function("() => document.querySelector('#tl-plot .tada-playhead')?.dataset.t === '12.5'")
    page.screenshot(path=str(shots / "1_timeline.png"), full_page=True)

    # The per-frame importance of the window, with the playback line on it when the video is inside.
    page.click("#fi-btn")
    page.wait_for_selector("#fi-plot .js-plotly-plot .barlayer")
    page.wait_for_function("() => document.querySelector('#fi-note').innerText.includes('30.12–31.88 s')")
    page.evaluate("() => { document.querySelector('#clip video').currentTime = 30.5; }")
    page.wait_for_function(
        "() => { const l = document.querySelector('#fi-plot .tada-playhead');"
        " return l && l.dataset.t === '30.5' && l.style.display === 'block'; }"
    )
    page.screenshot(path=str(shots / "2_frame_importance.png"), full_page=True)

    # The JSON download is the timeline (20 windows, frames of each; 8 of the 16 frames 240-255).
    with page.expect_download() as dl:
        page.locator("#tl-files tr", has_text=".json").locator("a").first.click()
    data = json.loads(Path(dl.value.path()).read_text())
    assert len(data["windows"]) == 20 and data["windows"][15]["frames"][0] == 241
    assert data["windows"][15]["start_s"] == 30.0

    # The calibration tab explains the window: its frames are the window's frames.
    page.get_by_role("tab", name="Calibration").click()
    page.wait_for_selector("#cal-plot .js-plotly-plot .main-svg")
    cal = page.inner_text("#cal-plot")  # positions labelled by the frames they cover, e.g. "f241–243 · 30.12–30.38 s"
    assert "f241" in cal and "30.12–" in cal

    # Another example: the window belonged to the long clip, so it is dropped and the whole clip is read.
    page.get_by_text("moving right (motion task)", exact=True).click()
    page.wait_for_function(
        "() => { const t = document.querySelector('#details').innerText;"
        " return t.includes('_motion') && !t.includes('40.0 s'); }"
    )
    assert page.locator("#start-field textarea, #start-field input").first.input_value() == ""
    assert "window 30.00" not in page.inner_text("#details") and "f241" not in page.inner_text("#frames")
    page.close()

    # A phone: the timeline stays inside the page (scrolling inside its box).
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.set_default_timeout(120_000)
    phone.goto(server, wait_until="load")
    phone.wait_for_selector("#predict-btn")
    phone.get_by_text(LONG_EXAMPLE, exact=True).click()
    phone.wait_for_function("() => document.querySelector('#details').innerText.includes('40.0 s')")
    phone.get_by_role("tab", name="Timeline").click()
    phone.click("#tl-btn")
    phone.wait_for_function("() => document.querySelector('#tl-note').innerText.includes('from the cache')")
    phone.wait_for_selector("#tl-plot .js-plotly-plot .main-svg")
    time.sleep(0.5)
    _fits(phone, "#tl-plot", 390)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    phone.locator("#tl-plot").scroll_into_view_if_needed()
    phone.screenshot(path=str(shots / "3_phone.png"))
    phone.close()
