"""The Compare view: 2-4 models on the identical frames of one clip (library, service, figures, CLI from a
fresh shell, ``/compare`` through gradio_client against a real server, the tab in a real browser)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from app_server import chromium, launched_app

import tada
from tada.errors import UserError
from tada.models.motion_zoo import BUNDLED_MODELS
from tada.video import load_clip, read_frames
from visualizations.compare import (
    CompareError,
    compare_models,
    frames_sha256,
    plan_inputs,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "app" / "examples" / "motion_moving_right.mp4"
TADA = "tadaconvnextv2_motion.tiny_8f"
FRAME2D = "frame2d_motion.tiny_8f"
ILA = "ila_motion.tiny_8f"
TADAFORMER = "tadaformer_motion.tiny_8f"


def _model(name: str):
    return tada.create_model(name, pretrained=True).eval()


@pytest.fixture(scope="module")
def service():
    from app.service import Service

    return Service(device="cpu")


@pytest.fixture(scope="module")
def all_four(service):
    """Every bundled model on the example clip, with Grad-CAM (the cheapest map every one of them has)."""
    return service.compare(str(EXAMPLE), list(BUNDLED_MODELS), "gradcam")


# --- the acceptance check -------------------------------------------------------------------------


def test_reversed_clip_changes_tadaconvnextv2_and_not_the_2d_baseline(service) -> None:
    c = service.compare(str(EXAMPLE), [TADA, FRAME2D])
    headers, rows = c.counterfactual_table()
    assert headers == ["edit", "tadaconvnextv2", "frame2d"]
    reversed_row = next(r for r in rows if r[0] == "reversed")
    assert reversed_row[1].startswith("changed: "), reversed_row
    assert reversed_row[2].startswith("same: "), reversed_row
    assert c.model(TADA).changed("reverse") and not c.model(FRAME2D).changed("reverse")
    # Both models see the clip's motion right ...
    assert c.model(TADA).predicted_label == "moving right" == c.model(FRAME2D).predicted_label
    # ... and the TAdaConvNeXtV2 answers the reversed clip with the opposite motion.
    assert c.model(TADA).counterfactuals.variant("reverse").predicted_label == "moving left"
    # The frames each model's transform received are identical, and they are the clip's own frames.
    assert c.same_frames and c.model(TADA).frames_sha256 == c.model(FRAME2D).frames_sha256 == c.frames_sha256
    assert frames_sha256(read_frames(EXAMPLE, c.frame_indices)) == c.frames_sha256
    assert c.to_dict()["frames"]["identical_for_every_model"] is True


def test_every_bundled_model_gets_the_same_frames_through_its_own_transform(all_four) -> None:
    c = all_four
    assert [m.name for m in c.models] == list(BUNDLED_MODELS)
    assert len({m.frames_sha256 for m in c.models}) == 1 and c.same_frames
    for m in c.models:
        # Its input is exactly what its own pipeline makes of the clip (what /predict feeds it) ...
        own = load_clip(EXAMPLE, tada.get_pretrained_cfg(m.name)).main_view()
        assert m.input_sha256 == frames_sha256(own.tensor), m.name
        assert list(m.input_shape) == list(own.tensor.shape)
        assert own.frame_indices == c.frame_indices
    # ... so the inputs differ where the transforms do (64-px ConvNeXt, ILA's time-first layout).
    shapes = {m.short: tuple(m.input_shape) for m in c.models}
    assert shapes["tadaconvnextv2"] == (1, 3, 8, 64, 64) and shapes["ila"] == (1, 8, 3, 32, 32)
    assert shapes["frame2d"] == (1, 3, 8, 32, 32)
    # Only the reference says it chose the frames; the others share its protocol, so nothing to note.
    assert "reference" in c.models[0].notes[0] and all(not m.notes for m in c.models[1:])


def test_every_temporal_bundled_model_uses_time_and_the_baseline_does_not(all_four) -> None:
    for m in all_four.models:
        temporal = m.family != "frame2d"
        assert m.changed("reverse") is temporal, m.name
        # Shuffling moves the shape back and forth: a temporal model changes its answer or keeps it with less
        # than half the confidence (the ILA: still "moving right", 0.92 -> 0.21); the time average keeps both.
        cf = m.counterfactuals
        shuffled, kept = cf.variant("shuffle"), cf.original.target_prob
        if temporal:
            assert shuffled.changed or shuffled.target_prob < kept / 2, (m.name, shuffled.target_prob, kept)
        else:
            assert not shuffled.changed and shuffled.target_prob == pytest.approx(kept, abs=1e-3), m.name
    top = all_four.topk_table()
    assert top[0] == ["rank", *(m.short for m in all_four.models)] and len(top[1]) == 5
    assert all(row[1].startswith("moving right") for row in top[1][:1])


def test_one_attribution_method_side_by_side(all_four) -> None:
    from visualizations.figures.compare import compare_attribution_figure

    t = len(all_four.frame_indices)
    for m in all_four.models:
        a = m.attribution
        assert a is not None and a.method == "gradcam" and m.attribution_error is None
        side = m.input_shape[-1]
        assert a.heatmaps.shape == (t, side, side) and np.isfinite(a.heatmaps).all()
        assert a.target_label == m.predicted_label  # each model's own top class
    fig = compare_attribution_figure(all_four)
    maps = [tr for tr in fig.data if tr.type == "heatmap"]
    images = [tr for tr in fig.data if tr.type == "image"]
    curves = [tr for tr in fig.data if tr.type == "scatter"]
    assert len(maps) == len(images) == t * len(all_four.models)
    assert [c.name for c in curves] == [m.short for m in all_four.models]
    for c in curves:  # shares of each model's importance: they sum to 1
        assert abs(sum(c.y) - 1.0) < 1e-6
    assert fig.layout.width is None and fig.layout.autosize  # takes its container's width (phone)


def test_a_method_that_does_not_apply_to_a_model_is_said_per_model(service) -> None:
    from visualizations.figures.compare import compare_attribution_figure

    c = service.compare(str(EXAMPLE), [TADAFORMER, TADA], "rollout")
    assert c.model(TADAFORMER).attribution is not None
    assert c.model(TADA).attribution is None and "transformer" in c.model(TADA).attribution_error
    assert "attribution_error" in c.to_dict()["models"][1]
    fig = compare_attribution_figure(c)
    assert sum(tr.type == "heatmap" for tr in fig.data) == len(c.frame_indices)  # only TAdaFormer's column


def test_counterfactual_figure_marks_changed_predictions(all_four) -> None:
    from visualizations.figures.compare import CHANGED, compare_counterfactual_figure

    fig = compare_counterfactual_figure(all_four)
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert [b.name for b in bars] == [m.short for m in all_four.models]
    for bar, m in zip(bars, all_four.models, strict=True):
        edits = m.counterfactuals.all
        assert list(bar.x) == pytest.approx([v.target_prob for v in edits])
        assert [col == CHANGED for col in bar.marker.color] == [v.changed for v in edits]
    assert fig.layout.width is None


# --- frames when the models' own protocols differ ----------------------------------------------------------


def _with_cfg(name: str, **changes):
    m = _model(name)
    m.pretrained_cfg = m.pretrained_cfg.replace(**changes)
    return m


def test_the_first_models_protocol_samples_the_frames_for_all(tmp_path: Path) -> None:
    # A reference with interval sampling (stride 2): every model gets the frames of that window, not those
    # of its own segment sampling, and the other model's row says so.
    interval = _with_cfg(TADA, sampling="interval", sampling_rate=1, target_fps=8)
    baseline = _model(FRAME2D)
    a = compare_models([("interval", interval), (FRAME2D, baseline)], EXAMPLE)
    b = compare_models([(FRAME2D, baseline), ("interval", interval)], EXAMPLE)
    assert a.frame_indices != b.frame_indices  # the first model decides
    assert b.frame_indices == load_clip(EXAMPLE, baseline.pretrained_cfg).frame_indices
    assert a.frame_indices == load_clip(EXAMPLE, interval.pretrained_cfg).frame_indices
    assert a.same_frames and b.same_frames
    assert "own test protocol 8 frames, segment sampling" in a.model(FRAME2D).notes[0]
    assert "interval sampling" in a.protocol and "interval" in a.frames_note()


def test_a_model_tested_with_more_frames_takes_the_references_count() -> None:
    sixteen = _with_cfg(TADA, num_frames=16)
    c = compare_models([(FRAME2D, _model(FRAME2D)), ("sixteen", sixteen)], EXAMPLE, k=3)
    assert c.model("sixteen").input_shape[2] == 8
    assert "fed 8 frames (tested with 16)" in c.model("sixteen").notes
    assert len(c.model("sixteen").top_k) == 3


def test_plan_refuses_a_fixed_frame_count_model_and_says_what_to_change() -> None:
    tada16 = tada.get_pretrained_cfg("tadaconvnextv2_tiny.k400_16f_in1k")
    ila8 = tada.get_pretrained_cfg("ila_b16.k400_8f")
    with pytest.raises(CompareError, match=r"ila_b16.k400_8f takes exactly 8 frames.*Put ila_b16.k400_8f first"):
        plan_inputs([tada16, ila8])
    used, notes = plan_inputs([ila8, tada16])  # ILA first: its 8 uniform frames for both
    assert [u.num_frames for u in used] == [8, 8]
    assert notes[1] == [
        "own test protocol 16 frames, interval sampling (stride 5 at 30 fps); given the reference's frames",
        "fed 8 frames (tested with 16)",
    ]


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([TADA], "at least 2 models"),
        ([], "Choose 2 to 4 models"),
        ([TADA, FRAME2D, ILA, TADAFORMER, "tada2d_r50.k400_8x8"], "at most 4 models"),
        ([TADA, "tadaconvnextv2_motoin.tiny_8f"], "Unknown model"),
        ([TADA, TADA], "named twice"),
        ([TADA, "tadaconvnextv2_motion"], "named twice"),  # the architecture alone is its bundled variant
        ([TADA, "tadaconvnextv2_tiny.k400_16f_in1k"], "weights"),
    ],
)
def test_bad_requests_get_a_sentence(service, names, message) -> None:
    with pytest.raises(UserError, match=message):
        service.compare(str(EXAMPLE), names)


def test_bad_method_and_bad_clip(service, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="Unknown attribution method 'calibration'"):
        service.compare(str(EXAMPLE), [TADA, FRAME2D], "calibration")
    bad = tmp_path / "holiday.mp4"
    bad.write_text("not a video\n" * 50)
    with pytest.raises(UserError):
        service.compare(str(bad), [TADA, FRAME2D])
    with pytest.raises(UserError, match="Upload a video"):
        service.compare("", [TADA, FRAME2D])


# --- the CLI from a fresh shell ------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="2")
    return subprocess.run(
        [sys.executable, "-m", "tada", "compare", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_json() -> None:
    r = _cli(str(EXAMPLE), "--models", f"{TADA},{FRAME2D}", "--json", "--top-k", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["frames"]["identical_for_every_model"] is True
    assert [m["frames_sha256"] for m in out["models"]] == [out["frames"]["sha256"]] * 2
    assert [m["model"] for m in out["models"]] == [TADA, FRAME2D]
    rev = [next(v for v in m["counterfactuals"] if v["variant"] == "reverse") for m in out["models"]]
    assert rev[0]["changed"] is True and rev[1]["changed"] is False
    assert all(len(m["top_k"]) == 3 for m in out["models"])


def test_cli_text_with_a_method() -> None:
    r = _cli(str(EXAMPLE), "--models", f"{TADA},{TADAFORMER}", "--method", "saliency")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "identical for every model" in out and "Top-5" in out and "Temporal counterfactuals" in out
    reversed_line = next(line for line in out.splitlines() if line.startswith("reversed"))
    assert reversed_line.count("changed: moving left") == 2
    assert "saliency: share of each model's importance per frame" in out


@pytest.mark.parametrize(
    ("models", "message"),
    [(TADA, "at least 2 models"), (",".join([TADA, FRAME2D, ILA, TADAFORMER, TADA]), "at most 4 models")],
)
def test_cli_errors_are_one_line(models: str, message: str, capsys) -> None:
    from tada.cli import main  # the same entry point as the shell's, in this process (no 10-s start-up)

    assert main(["compare", str(EXAMPLE), "--models", models]) == 1
    err = capsys.readouterr().err
    assert err.strip().startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- /compare through gradio_client against a real server ---------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The app launched in this process (loopback, offline), as ``tests/test_app_api.py`` launches it."""
    from gradio_client import Client

    with launched_app(tmp_path_factory.mktemp("gradio_compare"), warm_up=False) as (demo, _):
        yield Client(demo.local_url, verbose=False)


def _compare(client, models, method="", steps=8, view="outline", clip=EXAMPLE):
    from gradio_client import handle_file

    return client.predict(handle_file(str(clip)), models, method, steps, view, api_name="/compare")


def test_endpoint_returns_the_tables_figures_and_the_hash(client) -> None:
    note, topk, cf, cf_fig, attr_fig = _compare(client, list(BUNDLED_MODELS), "saliency")
    names = [n.split(".")[0].removesuffix("_motion") for n in BUNDLED_MODELS]
    assert topk["headers"] == ["rank", *names] and len(topk["data"]) == 5
    assert cf["headers"] == ["edit", *names]
    reversed_row = next(r for r in cf["data"] if r[0] == "reversed")
    for name, cell in zip(names, reversed_row[1:], strict=True):
        assert cell.startswith("same: " if name == "frame2d" else "changed: "), (name, cell)
    assert "identical for every model" in note and note.count("frames `") == 4
    for value in (cf_fig, attr_fig):
        fig = json.loads(value["plot"])
        assert fig["data"] and fig["layout"].get("width") is None
    attr = json.loads(attr_fig["plot"])
    assert sum(tr["type"] == "heatmap" for tr in attr["data"]) == 8 * 4


def test_endpoint_takes_the_clip_alone(client) -> None:
    from gradio_client import handle_file

    note, topk, cf, cf_fig, attr_fig = client.predict(handle_file(str(EXAMPLE)), api_name="/compare")
    assert topk["headers"] == ["rank", "tadaconvnextv2", "frame2d"]  # the default pair
    assert attr_fig is not None  # integrated gradients by default, as in the tab


def test_endpoint_without_a_method_draws_no_attribution(client) -> None:
    *_, attr_fig = _compare(client, f"{TADA},{ILA}", "")  # a comma-separated string works too
    assert attr_fig is None


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([TADA], "Choose at least 2 models to compare (you chose 1)."),
        ([TADA, FRAME2D, ILA, TADAFORMER, "tada2d_r50.k400_8x8"], "Compare at most 4 models at a time (you chose 5)."),
        ([TADA, "no_such_model"], "Unknown model 'no_such_model'"),
        ([TADA, "x" * 5000], "(5000 chars)"),  # user input is quoted, and cut
        ([TADA, FRAME2D, "steps"], "greater than maximum value 64"),  # the slider's range holds for the API
    ],
)
def test_endpoint_errors_are_sentences(client, models, message) -> None:
    from gradio_client.exceptions import AppError

    steps = 8
    if models[-1] == "steps":
        models, steps = models[:-1], 100_000
    with pytest.raises(AppError) as err:
        _compare(client, models, "integrated_gradients", steps)
    assert message in str(err.value) and "Traceback" not in str(err.value)


# --- the tab in a real browser ------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 390])
def test_tab_in_a_browser(client, width: int, tmp_path: Path) -> None:
    """Pick an example, open Compare, run it, read the tables; nothing wider than the screen. Screenshots
    go to ``$TADA_COMPARE_SCREENSHOTS`` when set (else the test's tmp dir)."""
    shots = Path(os.environ.get("TADA_COMPARE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with chromium() as b:
        page = b.new_page(viewport={"width": width, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(client.src, wait_until="load")
        page.wait_for_selector("#predict-btn")
        page.get_by_text("moving right (motion task)", exact=True).click()
        page.wait_for_selector("#clip video")
        page.locator("#tabs button", has_text="Compare").first.click()
        page.wait_for_selector("#cmp-btn")
        page.click("#cmp-btn")
        page.wait_for_selector("#cmp-attr-plot .js-plotly-plot")
        page.wait_for_selector("#cmp-cf-plot .js-plotly-plot")
        table = page.inner_text("#cmp-cf-table")
        assert "reversed" in table and "changed: moving left" in table and "same: moving right" in table
        assert "identical for every model" in page.inner_text("#cmp-note")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a {width}-px screen"
        page.locator("#tab-compare").screenshot(path=str(shots / f"compare_{width}.png"))
