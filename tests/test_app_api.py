"""The launched app through ``gradio_client``: every endpoint, errors, concurrency, no outbound traffic."""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from app_server import launched_app

import tada
from app import catalogue
from tada import hub
from tada.models.motion_zoo import TEMPORAL
from tada.motion import CLASSES, generate_clip
from tada.motion.media import write_mp4

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "assets" / "examples"

#: Recorded held-out top-1 (%) from which a bundled model must label clean clips right.
SENSIBLE_TOP1 = 50.0

_outbound: list[str] = []
_watch = threading.Event()


def _audit(event: str, args: tuple, _watch: threading.Event = _watch, _outbound: list[str] = _outbound) -> None:
    # Record every name lookup / connection to a non-loopback host while _watch is set.  The globals are
    # bound as defaults: the hook outlives the module, whose globals are None at interpreter shutdown.
    if not _watch.is_set() or event not in ("socket.getaddrinfo", "socket.connect"):
        return
    host = args[0] if event == "socket.getaddrinfo" else args[1]
    if isinstance(host, tuple):
        host = host[0]
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", ""):
        _outbound.append(f"{event} {host}")


sys.addaudithook(_audit)


def bundled_models() -> list[str]:
    return [n for n in tada.list_models() if hub.weights_status(tada.get_pretrained_cfg(n)) == "bundled"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Small motion clips with known labels, a text file named .mp4, and a bundled example."""
    d = tmp_path_factory.mktemp("api_clips")
    out = {}
    for i, label in enumerate(("moving right", "moving left", "rotating clockwise", "growing")):
        clip = generate_clip(100 + i, label, num_frames=16, size=64, distractors=False, noise=False)
        out[label] = write_mp4(clip, d / f"{label.replace(' ', '_')}.mp4", fps=8, scale=2)
        # A clip and its reversal as the model sees them: 8 frames each shown twice (segment sampling picks
        # frames 1, 3 ... 15 of 16, one of each pair), lossless, so both files feed the same 8 frames.
        short = generate_clip(200 + i, label, num_frames=8, size=64, distractors=False, noise=False)
        for key, c in (("forward", short), ("reversed", short.reversed())):
            frames = c.frames.repeat(2, axis=0)
            out[label, key] = write_mp4(frames, d / f"{label.replace(' ', '_')}_x2_{key}.mp4", fps=8, scale=2, crf=0)
    bad = d / "holiday.mp4"
    bad.write_text("not a video at all\n" * 50)
    out["bad"] = bad
    out["example"] = EXAMPLES / "coffee_pan.mp4"
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One launched app for the module (in-process, loopback, offline), closed at the end."""
    _outbound.clear()
    _watch.set()
    with launched_app(tmp_path_factory.mktemp("gradio")) as (demo, _):
        launch_outbound = list(_outbound)  # what creating and launching the app tried to reach
        _watch.clear()
        yield {"url": demo.local_url, "demo": demo, "launch_outbound": launch_outbound}


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def _predict(client, path, model, **kw):
    from gradio_client import handle_file

    args = dict(classes="", frames=None, views="single", start=None, stride=None)
    args.update(kw)
    return client.predict(
        handle_file(str(path)),
        model,
        args["classes"],
        args["frames"],
        args["views"],
        args["start"],
        args["stride"],
        api_name="/predict",
    )


def _figure(value, traces: bool = True) -> dict:
    """The plotly figure of a gr.Plot value; with ``traces`` it must draw something, else explain why not."""
    assert isinstance(value, dict) and value.get("type") == "plotly", value
    fig = json.loads(value["plot"])
    if traces:
        assert fig["data"], "the figure has no trace"
    else:
        assert fig["layout"]["annotations"][0]["text"]
    return fig


def _family(model: str) -> str:
    return catalogue.model_info(model).family


def test_launch_makes_no_outbound_requests(server) -> None:
    assert server["launch_outbound"] == []


def test_api_lists_every_endpoint(client) -> None:
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/predict", "/calibration", "/ila_points", "/attributions", "/counterfactuals", "/models"} <= names


def test_models_endpoint_marks_availability(client) -> None:
    rows = client.predict(api_name="/models")
    assert {r["name"] for r in rows} == set(tada.list_models())
    assert all(isinstance(r["available"], bool) for r in rows)
    assert rows[0]["bundled"]


def _has_calibration(model: str) -> bool:
    return tada.get_pretrained_cfg(model).architecture.startswith(("tada2d", "tadaconvnextv2", "tadaformer"))


MOTIONS = ("moving right", "moving left", "rotating clockwise", "growing")


@pytest.fixture(scope="module")
def predictions(client, clips) -> dict[tuple[str, str], tuple]:
    """``/predict`` of every bundled model on every clean motion clip (each call made once)."""
    return {(m, label): _predict(client, clips[label], m) for m in bundled_models() for label in MOTIONS}


@pytest.mark.slow  # 16 predictions through the server
@pytest.mark.parametrize("model", bundled_models())
def test_predict_each_bundled_model_returns_labels_frames_figures(predictions, model) -> None:
    cfg = tada.get_pretrained_cfg(model)
    for label in MOTIONS:
        top, gallery, details, cal, points = predictions[model, label]
        scores = [c["confidence"] for c in top["confidences"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-4
        assert {c["label"] for c in top["confidences"]} <= set(CLASSES)
        assert len(gallery) == cfg.num_frames and all(Path(g["image"]).is_file() for g in gallery)
        assert gallery[0]["caption"].startswith("f")
        assert model in details
        _figure(cal, traces=_has_calibration(model))
        _figure(points, traces=_family(model) == "ila")


def undertrained(model: str) -> str | None:
    """Why labels cannot be sensible yet: the held-out top-1 recorded with the bundled weights is low."""
    top1 = tada.get_pretrained_cfg(model).reported_top1
    if top1 is None or top1 < SENSIBLE_TOP1:
        return f"bundled weights of {model} are undertrained (recorded held-out top-1: {top1}%)"
    return None


def _temporal(model: str) -> bool:
    return TEMPORAL.get(tada.get_pretrained_cfg(model).architecture, True)


@pytest.mark.slow  # 12 predictions through the server
@pytest.mark.parametrize("model", [m for m in bundled_models() if _temporal(m)])
def test_predict_each_temporal_bundled_model_is_sensible(predictions, model, request) -> None:
    reason = undertrained(model)
    if reason:  # the test still runs; it becomes binding as soon as trained weights are bundled
        request.applymarker(pytest.mark.xfail(reason=reason, strict=False))
    right = sum(predictions[model, label][0]["label"] == label for label in MOTIONS)
    assert right >= 3, f"{model} got only {right} of 4 clean motion clips right"


@pytest.mark.slow
@pytest.mark.parametrize("model", [m for m in bundled_models() if not _temporal(m)])
def test_predict_2d_baseline_is_the_control_it_should_be(client, clips, model) -> None:
    """The per-frame 2-D baseline cannot see time (17 % top-1 by design, README): the sensible answer
    for it is the same top-5, scores included, for a clip and the same clip played backwards, while
    the temporal models follow the reversal (held-out reversed accuracy, tests/test_motion_models.py)."""
    for label in ("moving right", "rotating clockwise"):
        forward = _predict(client, clips[label, "forward"], model)[0]
        backward = _predict(client, clips[label, "reversed"], model)[0]
        assert forward["label"] in CLASSES and backward["label"] == forward["label"]
        fwd = {c["label"]: c["confidence"] for c in forward["confidences"]}
        bwd = {c["label"]: c["confidence"] for c in backward["confidences"]}
        assert fwd.keys() == bwd.keys() and all(abs(fwd[k] - bwd[k]) < 1e-4 for k in fwd)


def test_every_tab_endpoint_returns(client, clips) -> None:
    from gradio_client import handle_file

    model = catalogue.default_model_name()
    common = (handle_file(str(clips["example"])), model, "", None, "single", None, None)
    _predict(client, clips["example"], model)
    for view in ("heatmap", "summary", "channels", "kernel"):
        fig = _figure(client.predict(*common, view, "last layer", api_name="/calibration"))
        assert fig["layout"]["title"]["text"]
    for view in ("pairs", "trajectories"):  # the default model is no ILA: the figure says so
        _figure(client.predict(*common, view, "last layer", api_name="/ila_points"), traces=_family(model) == "ila")
    for method in ("gradcam", "integrated_gradients"):
        fig, note = client.predict(*common, method, "predicted class", 4, api_name="/attributions")
        _figure(fig)
        assert "p =" in note
    fig, note = client.predict(*common, api_name="/counterfactuals")
    _figure(fig)
    assert "reverse" in note and "Original prediction" in note


def test_ila_class_phrases_and_points(client, clips) -> None:
    from gradio_client import handle_file

    ila = next(m for m in bundled_models() if catalogue.model_info(m).open_vocabulary)
    phrases = "moving left\nmoving right\ngrowing"
    top, _gallery, details, cal, points = _predict(client, clips["moving left"], ila, classes=phrases)
    assert {c["label"] for c in top["confidences"]} == {"moving left", "moving right", "growing"}
    assert "open vocabulary" in details
    _figure(cal, traces=False)  # ILA has no calibration: the figure says so
    _figure(points)
    common = (handle_file(str(clips["moving left"])), ila, phrases, None, "single", None, None)
    for view in ("pairs", "trajectories"):
        _figure(client.predict(*common, view, "last layer", api_name="/ila_points"))


def test_bad_file_gives_the_clear_error_and_the_server_survives(client, clips) -> None:
    from gradio_client.exceptions import AppError

    model = catalogue.default_model_name()
    with pytest.raises(AppError) as err:
        _predict(client, clips["bad"], model)
    message = str(err.value)
    assert "text file" in message and "Traceback" not in message
    top = _predict(client, clips["moving right"], model)[0]
    assert top["label"]


def test_model_without_weights_says_how_to_get_them(client, clips) -> None:
    from gradio_client.exceptions import AppError

    missing = next(r["name"] for r in client.predict(api_name="/models") if r["weights"] == "gdrive")
    with pytest.raises(AppError) as err:
        _predict(client, clips["moving left"], missing)
    # The error (a toast in the page) is short and whole; the full instructions are in the status panel
    # and in the catalogue, never cut mid-command.
    message = str(err.value)
    assert f"{missing} needs its pretrained weights" in message and "model picker" in message
    assert len(message) < 300
    row = next(r for r in client.predict(api_name="/models") if r["name"] == missing)
    assert "python -m tada convert" in row["get_weights"] and f"--variant {missing}" in row["get_weights"]


def test_every_endpoint_takes_the_clip_alone(client, clips) -> None:
    """A script needs only the clip: model, class phrases and sampling default to the app's own."""
    from gradio_client import handle_file

    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    clip = handle_file(str(clips["moving right"]))
    for name in ("/predict", "/calibration", "/ila_points", "/attributions", "/counterfactuals"):
        params = api[name]["parameters"]
        assert not params[0]["parameter_has_default"], name  # the clip
        optional = [p["parameter_name"] for p in params[1:] if not p["parameter_has_default"]]
        assert optional == [], f"{name} requires {optional}"
    top, gallery, details, cal, _points = client.predict(clip, api_name="/predict")
    assert top["label"] in CLASSES and catalogue.default_model_name() in details
    assert len(gallery) == tada.get_pretrained_cfg(catalogue.default_model_name()).num_frames
    _figure(cal)
    _figure(client.predict(clip, api_name="/calibration"))
    _figure(client.predict(clip, api_name="/ila_points"), traces=False)  # the default model is no ILA
    fig, note = client.predict(clip, api_name="/attributions")
    _figure(fig)
    assert "Integrated gradients" in note
    fig, note = client.predict(clip, api_name="/counterfactuals")
    _figure(fig)
    assert "Original prediction" in note


@pytest.mark.parametrize("field", ["frames", "stride", "start"])
def test_empty_sampling_fields_mean_the_models_own(client, clips, field) -> None:
    """What the page sends for an empty text field ('') and what a script sends (None) are the same."""
    model = catalogue.default_model_name()
    base = _predict(client, clips["growing"], model)
    empty = _predict(client, clips["growing"], model, **{field: ""})
    assert empty[0] == base[0] and empty[2].split("**Time**")[0] == base[2].split("**Time**")[0]


def test_short_clip_is_padded_with_a_warning(client, tmp_path) -> None:
    """A 3-frame clip for an 8-frame model: frames are repeated, and the details say so."""
    model = catalogue.default_model_name()
    four = generate_clip(5, "moving right", num_frames=4, size=64, distractors=False, noise=False)
    path = write_mp4(four.frames[:3], tmp_path / "three.mp4", fps=8, scale=2)
    details = _predict(client, path, model)[2]
    assert "repeated" in details and "distinct frame" in details
    # and a long enough clip has no such warning
    ok = write_mp4(
        generate_clip(6, "moving right", num_frames=16, size=64, distractors=False, noise=False),
        tmp_path / "sixteen.mp4",
        fps=8,
        scale=2,
    )
    assert "repeated" not in _predict(client, ok, model)[2]


@pytest.mark.parametrize("model", bundled_models())
def test_bundled_models_say_they_only_know_the_motion_classes(predictions, model) -> None:
    details = predictions[model, "moving right"][2]
    assert f"just {len(CLASSES)} motion classes" in details
    assert details.index("motion classes") < details.index("**Model**")  # first, next to the label


def test_four_concurrent_clients(server, tmp_path) -> None:
    from gradio_client import Client

    model = catalogue.default_model_name()
    labels = ("moving up", "moving down", "shrinking", "bouncing")
    paths = [  # fresh clips, so no request is answered from the prediction cache
        write_mp4(generate_clip(300 + i, label, num_frames=16, size=64), tmp_path / f"c{i}.mp4", fps=8, scale=2)
        for i, label in enumerate(labels)
    ]

    def one(path):
        c = Client(server["url"], verbose=False)
        return _predict(c, path, model)[0]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, paths))
    assert len(results) == 4
    assert all(len(r["confidences"]) == 5 for r in results)


def test_frames_show_the_models_crop_as_chosen(client, clips) -> None:
    """A wide clip: the strip shows whole frames with the model's centre square outlined, or only that
    square; captions use the one numbering of every tab (source frame · time)."""
    import re

    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    model = catalogue.default_model_name()
    clip = handle_file(str(clips["example"]))
    wide = client.predict(clip, model, api_name="/predict")[1]
    square = client.predict(clip, model, frame_view="crop", api_name="/predict")[1]
    assert len(wide) == len(square) == tada.get_pretrained_cfg(model).num_frames
    for w, s in zip(wide, square):
        assert re.fullmatch(r"f\d+ · \d+\.\d\d s", w["caption"]) and w["caption"] == s["caption"]
        img_w, img_s = np.asarray(Image.open(w["image"])), np.asarray(Image.open(s["image"]))
        assert img_w.shape[1] > img_w.shape[0] * 1.3  # the whole 16:9 frame
        assert abs(img_s.shape[1] - img_s.shape[0]) <= 2  # the centre square only
        # The outline (cyan) runs down the frame where the square begins.
        x0 = (img_w.shape[1] - img_w.shape[0]) // 2
        band = img_w[:, max(x0 - 3, 0) : x0 + 4].reshape(-1, 3).astype(int)
        cyan = (band[:, 0] < 90) & (band[:, 1] > 170) & (band[:, 2] > 200)
        assert cyan.mean() > 0.3


def test_models_endpoint_names_each_family(client) -> None:
    """The 2-D baseline is its own family, not "tadaconv" (#15 item 10)."""
    rows = {r["name"]: r for r in client.predict(api_name="/models")}
    for name in bundled_models():
        arch = tada.get_pretrained_cfg(name).architecture
        want = "frame2d" if not _temporal(name) else ("ila" if arch.startswith("ila") else "tadaconv")
        assert rows[name]["family"] == want, name


def test_attribution_and_points_follow_the_frame_view_and_sign(client, clips) -> None:
    """The crop choice reaches the attribution and ILA figures; gradient maps can keep their sign."""
    from gradio_client import handle_file

    model = catalogue.default_model_name()
    clip = handle_file(str(clips["example"]))  # 16:9: the model sees only the centre square
    plain, _ = client.predict(clip, model, method="saliency", api_name="/attributions")
    signed, _ = client.predict(clip, model, method="saliency", signed=True, api_name="/attributions")
    assert "(signed)" in json.dumps(_figure(signed)["layout"])
    assert "(signed)" not in json.dumps(_figure(plain)["layout"])
    outline = _figure(client.predict(clip, model, method="gradcam", api_name="/attributions")[0])
    crop = _figure(client.predict(clip, model, method="gradcam", frame_view="crop", api_name="/attributions")[0])
    assert outline["layout"].get("shapes") and not crop["layout"].get("shapes")  # the crop outline
    ila = next(m for m in bundled_models() if tada.get_pretrained_cfg(m).family == "ila")
    _predict(client, clips["example"], ila)
    whole = _figure(client.predict(clip, ila, api_name="/ila_points"))
    cropped = _figure(client.predict(clip, ila, frame_view="crop", api_name="/ila_points"))
    assert whole["layout"].get("shapes") and whole != cropped
