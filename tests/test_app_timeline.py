"""The Timeline tab: the service's cached timeline, a picked window that every model family and endpoint
honours, the ``/timeline``, ``/timeline_figure`` and ``/frame_importance`` endpoints through
``gradio_client`` (rows, exports, cache, every bundled model), Stop, and readable errors."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from app_server import launched_app

import tada
from app import catalogue
from app.handlers import Handlers
from app.service import Sampling, Service
from app.timeline_tab import TimelineHandlers
from tada import hub
from tada.errors import Cancelled
from tada.timeline import compute_timeline, plan_windows
from tada.video import probe

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

REPO = Path(__file__).resolve().parents[1]
LONG = REPO / "app" / "examples" / "motion_rotating_then_moving_right_40s.mp4"


def bundled_models() -> list[str]:
    return [n for n in tada.list_models() if hub.weights_status(tada.get_pretrained_cfg(n)) == "bundled"]


@pytest.fixture(scope="module")
def service() -> Service:
    return Service(device="cpu")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with launched_app(tmp_path_factory.mktemp("gradio_tl"), warm_up=False) as (demo, service):
        yield {"url": demo.local_url, "service": service}


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def test_long_example_is_small_and_changes_at_20_s() -> None:
    info = probe(str(LONG))
    assert LONG.stat().st_size < 1_000_000
    assert info.duration == pytest.approx(40.0, abs=0.2) and info.fps == pytest.approx(8.0)


def test_service_timeline_is_the_librarys_and_cached(service: Service, monkeypatch) -> None:
    name = catalogue.default_model_name()
    tl = service.timeline(str(LONG), name)
    ref = compute_timeline(LONG, tada.create_model(name, pretrained=True).eval())
    assert [r["frames"] for r in tl.rows()] == [r["frames"] for r in ref.rows()]
    assert np.allclose(tl.probs, ref.probs, atol=1e-5)
    # The content changes at 20 s: the top class of the first and the last windows differ, and follow it.
    top = [tl.labels[int(np.argmax(p))] for p in tl.probs]
    assert top[:10].count("rotating clockwise") >= 8 and top[10:].count("moving right") >= 8
    # A second request (another upload of the same bytes included) is the cached result: nothing is computed.
    monkeypatch.setattr("tada.timeline.compute_timeline", lambda *a, **k: pytest.fail("computed again"))
    assert service.timeline(str(LONG), name) is tl


def test_cache_follows_the_clips_bytes_not_its_path(service: Service, tmp_path: Path) -> None:
    name = catalogue.default_model_name()
    tl = service.timeline(str(LONG), name)
    again = tmp_path / "same_clip_uploaded_again.mp4"
    again.write_bytes(LONG.read_bytes())
    assert service.peek_timeline(str(again), name) is tl
    other = tmp_path / "other.mp4"
    data = bytearray(LONG.read_bytes())
    data[-1] ^= 1
    other.write_bytes(bytes(data))
    assert service.peek_timeline(str(other), name) is None
    assert service.peek_timeline(str(LONG), name, stride_s=2.0) is None  # other settings: another timeline


@pytest.mark.parametrize(
    "variant",
    ["tada2d_r50.k400_8x8", "tadaformer_b16.ssv2_16f", "ila_b16.k400_8f"],  # interval, segment, uniform
)
def test_a_window_is_read_with_the_timelines_frames_for_every_protocol(service: Service, variant, tmp_path) -> None:
    """Interval, segment and uniform sampling: the window 'start-end' feeds the frames of that timeline row."""
    cfg = tada.get_pretrained_cfg(variant)
    info = probe(str(LONG))
    plan, _, _ = plan_windows(info, cfg, stride_s=3.0)
    small = cfg.replace(test_scale=32, crop_size=32)
    for start, end, frames in plan[::4]:
        clip = service.load_clip(str(LONG), small, Sampling(start=round(start, 4), end=round(end, 4)))
        assert clip.indices[0].tolist() == frames.tolist(), (variant, start)
        assert start - 1e-6 <= clip.timestamps[0][0] and clip.timestamps[0][-1] < end + 1e-6


@pytest.mark.parametrize("name", bundled_models())
def test_a_picked_window_predicts_what_the_timeline_says(service: Service, name: str) -> None:
    """The prediction on a picked window (what every tab then explains) is the timeline's row for it."""
    tl = service.timeline(str(LONG), name)
    for w in (tl.windows[5], tl.windows[15]):
        a = service.analyse(str(LONG), name, Sampling(start=round(w.start_s, 4), end=round(w.end_s, 4)))
        assert a.view.frame_indices == [int(i) for i in w.frames]
        assert torch.allclose(a.probs, torch.as_tensor(w.probs), atol=1e-4)


def test_stop_ends_the_timeline_work(service: Service, tmp_path: Path, monkeypatch) -> None:
    """Closing the handler's generator (what Gradio does on Stop) stops the windows within one step."""
    from tests.test_timeline import motion_film

    clip = motion_film(tmp_path / "long.mp4", [("moving left", 60), ("moving right", 60)])
    # On an idle host the whole timeline takes less than the handler's 0.25-s poll: each window is made
    # to take 50 ms, so Stop lands while windows remain (the stop itself goes through the real callback).
    real = service.timeline

    def slow_timeline(*args, progress=None, **kwargs):
        def slow(fraction: float, message: str = "") -> None:
            time.sleep(0.05)
            if progress is not None:
                progress(fraction, message)

        return real(*args, progress=slow, **kwargs)

    monkeypatch.setattr(service, "timeline", slow_timeline)
    th = TimelineHandlers(Handlers(service))
    calls: list[float] = []
    gen = th.timeline(str(clip), "tadaformer_motion.tiny_8f", progress=lambda f, desc=None: calls.append(f))
    next(gen)  # cleared the panels
    t0 = time.time()
    while not any(0 < f < 0.5 for f in calls):
        next(gen)
        assert time.time() - t0 < 300, "no progress"
    gen.close()
    deadline = time.time() + 30
    while any(t.name == "tada-job" for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "tada-job" for t in threading.enumerate()), "the work went on after Stop"
    assert service.peek_timeline(str(clip), "tadaformer_motion.tiny_8f") is None  # nothing half-made is cached
    # The same through the service alone: a progress callback that raises ends the work, nothing is cached.
    with pytest.raises(Cancelled):
        service.timeline(str(clip), "tadaformer_motion.tiny_8f", progress=_cancel_at(0.3))
    assert service.peek_timeline(str(clip), "tadaformer_motion.tiny_8f") is None


def _cancel_at(fraction: float):
    def progress(f: float, message: str = "") -> None:
        if f >= fraction:
            raise Cancelled()

    return progress


# --- through the launched app -------------------------------------------------------------------------


def _figure(out: dict) -> dict:
    """The plotly figure (JSON) of a ``gr.Plot`` output, its typed arrays (numpy arrays) decoded."""
    import base64

    def decode(x):
        if isinstance(x, dict) and "bdata" in x and "dtype" in x:
            arr = np.frombuffer(base64.b64decode(x["bdata"]), dtype=np.dtype(x["dtype"]))
            shape = x.get("shape")
            return arr.reshape([int(n) for n in str(shape).split(",")]) if shape else arr
        if isinstance(x, dict):
            return {k: decode(v) for k, v in x.items()}
        if isinstance(x, list):
            return [decode(v) for v in x]
        return x

    assert out["type"] == "plotly"
    return decode(json.loads(out["plot"]))


def _timeline(client, path: Path, model: str | None = None, **kw):
    from gradio_client import handle_file

    return client.predict(
        handle_file(str(path)), model, kw.get("classes", ""), kw.get("stride"), kw.get("window"), api_name="/timeline"
    )


@pytest.mark.parametrize("name", bundled_models())
def test_every_bundled_model_gives_a_timeline(client, name: str) -> None:
    fig, data, files, note = _timeline(client, LONG, name)
    ref = compute_timeline(LONG, tada.create_model(name, pretrained=True).eval(), display_name=name)
    assert data["model"] == name and len(data["windows"]) == 20
    for row, want in zip(data["windows"], ref.rows(5)):
        assert row["frames"] == want["frames"] and (row["start_s"], row["end_s"]) == (want["start_s"], want["end_s"])
        assert [t["label"] for t in row["top"]][:1] == [t["label"] for t in want["top"]][:1]
        assert row["top"][0]["score"] == pytest.approx(want["top"][0]["score"], abs=1e-4)
    assert fig["type"] == "plotly" and "20 windows" in note
    is_tadaconv = catalogue.model_info(name).family == "tadaconv"
    assert ("calibration_variation" in data["windows"][0]) == is_tadaconv


def test_timeline_endpoint_rows_exports_and_cache(client, server) -> None:
    name = catalogue.default_model_name()
    fig, data, files, note = _timeline(client, LONG)  # the clip alone: the default model, automatic stride
    ref = compute_timeline(LONG, tada.create_model(name, pretrained=True).eval(), display_name=name)
    assert data == json.loads(json.dumps(ref.to_dict(5)))  # the library's rows, as JSON
    lines = [t for t in _figure(fig)["data"] if t["type"] == "scatter" and t.get("customdata") is not None]
    assert [int(c[0]) for c in lines[0]["customdata"]] == list(range(20))  # a click names its window
    # The downloads: the same rows as JSON, and as CSV (window, times, frames, model, sampling, top-k).
    by_ext = {Path(f).suffix: Path(f) for f in files}
    assert json.loads(by_ext[".json"].read_text()) == data
    rows = list(csv.DictReader(io.StringIO(by_ext[".csv"].read_text())))
    assert len(rows) == 20
    for row, want in zip(rows, data["windows"]):
        assert int(row["window"]) == want["window"] and float(row["start_s"]) == want["start_s"]
        assert [int(i) for i in row["frames"].split()] == want["frames"]
        assert row["model"] == name and row["sampling"] == data["sampling"]["protocol"]
        assert row["top1_label"] == want["top"][0]["label"]
        assert float(row["top1_score"]) == pytest.approx(want["top"][0]["score"])
    # Computed once: the second call (a new upload of the same clip) comes from the cache.
    service: Service = server["service"]
    before = dict(service._timelines)
    assert "from the cache" in _timeline(client, LONG)[3]
    assert dict(service._timelines) == before


def test_timeline_settings_and_errors_are_readable(client, tmp_path: Path) -> None:
    from gradio_client.exceptions import AppError

    _, data, _, _ = _timeline(client, LONG, stride="2.5", window="2")
    assert data["sampling"]["stride_s"] == pytest.approx(2.5) and data["sampling"]["window_s"] == pytest.approx(2.0)
    assert len(data["windows"]) == 16
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 40)
    for path, kw, words in (
        (LONG, {"stride": "0.1"}, "at most 120"),
        (LONG, {"stride": "fast"}, "number of seconds"),
        (bad, {}, "video"),
    ):
        with pytest.raises(AppError) as err:
            _timeline(client, path, **kw)
        assert words in str(err.value) and "Traceback" not in str(err.value)


def test_figure_exports_png_and_html(client) -> None:
    from gradio_client import handle_file
    from PIL import Image

    _timeline(client, LONG)
    clip = handle_file(str(LONG))
    html = Path(client.predict(clip, None, "", None, None, "", "html", api_name="/timeline_figure"))
    text = html.read_text()
    assert html.suffix == ".html" and "Plotly.newPlot" in text and "20 windows" in text
    assert '<script src="http' not in text and len(text) > 1_000_000  # standalone: plotly.js inside, opens offline
    png = Path(client.predict(clip, None, "", None, None, "5-6", "png", api_name="/timeline_figure"))
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] == 1200 and img.size[1] >= 400
        # the picked window (5-6 s) is shaded: some orange-ish pixels
        px = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
        assert ((px[:, 0] > 240) & (px[:, 1] > 200) & (px[:, 1] < 235) & (px[:, 2] < 200)).sum() > 100


def test_endpoints_honour_a_window_and_work_with_the_clip_alone(client) -> None:
    from gradio_client import handle_file

    clip = handle_file(str(LONG))
    details = client.predict(clip, None, "", None, None, "20-21", api_name="/predict")[2]
    assert "window 20.00–20.88 s" in details
    whole = client.predict(clip, api_name="/predict")[2]
    assert "window 20.00" not in whole
    fig, note = client.predict(clip, None, "", None, None, "20-21", api_name="/frame_importance")
    bars = _figure(fig)["data"][0]
    assert bars["type"] == "bar" and len(bars["y"]) == 8
    times = np.asarray(bars["customdata"])[:, 0]  # each bar's frame time (what a click seeks to)
    assert all(20.0 <= t <= 21.0 for t in times) and "20.00–20.88 s" in note
    fig, note = client.predict(clip, api_name="/frame_importance")  # the clip alone
    assert _figure(fig)["data"][0]["type"] == "bar"
