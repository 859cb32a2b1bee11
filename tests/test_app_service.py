"""The app's service object without a server: model cache, predictions, sampling, errors, cancellation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tada
from app import catalogue, runtime
from app.errors import AppError, Cancelled, user_message
from app.jobs import run_cancellable
from app.service import Sampling, Service, parse_class_names
from tada import hub
from tada.motion import generate_clip
from tada.motion.media import write_mp4
from tada.video import VideoError, load_clip

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def bundled_models() -> list[str]:
    return [n for n in tada.list_models() if hub.weights_status(tada.get_pretrained_cfg(n)) == "bundled"]


@pytest.fixture(scope="module")
def model_name() -> str:
    """The app's default model: the bundled TAdaConvNeXtV2 motion model."""
    name = catalogue.default_model_name()
    if name is None:
        pytest.fail("no bundled model is registered: the app has no default model")
    return name


@pytest.fixture(scope="module")
def service() -> Service:
    return Service(device="cpu")


@pytest.fixture(scope="module")
def motion_clip(tmp_path_factory) -> tuple[Path, str]:
    """A small real mp4 of a shape moving right (64 px, 16 frames)."""
    clip = generate_clip(7, "moving right", num_frames=16, size=64, distractors=False, noise=False)
    path = write_mp4(clip, tmp_path_factory.mktemp("clips") / "right.mp4", fps=8, scale=2)
    return path, clip.label_name


def test_parse_class_names() -> None:
    assert parse_class_names("a dog, a cat\n  a horse ,, ") == ("a dog", "a cat", "a horse")
    assert parse_class_names("  \n ") is None
    assert parse_class_names(None) is None
    assert parse_class_names(["x", "x", "y"]) == ("x", "y")
    with pytest.raises(AppError, match="at least two"):
        parse_class_names("only one")


def test_catalogue_lists_every_variant_with_availability(service: Service, model_name: str) -> None:
    infos = catalogue.catalogue()
    assert {i.name for i in infos} == set(tada.list_models())
    by_name = {i.name: i for i in infos}
    assert by_name[model_name].bundled and by_name[model_name].available
    assert infos[0].bundled  # bundled models come first in the picker
    ila = by_name["ila_b16.k400_8f"]
    assert ila.open_vocabulary and ila.family == "ila"
    if not ila.available:
        assert "needs weights" in ila.choice_label
        how = catalogue.how_to_get_weights(ila.name)
        assert "python -m tada convert" in how and "drive.google.com" in how


def test_model_cache_loads_once_across_threads(service: Service, model_name: str, monkeypatch) -> None:
    fresh = Service(device="cpu")
    calls = []
    real = fresh._load

    def counting(name, progress):
        calls.append(name)
        time.sleep(0.2)  # widen the race window
        return real(name, progress)

    monkeypatch.setattr(fresh, "_load", counting)
    got = []
    threads = [threading.Thread(target=lambda: got.append(fresh.get_model(model_name))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [model_name]
    assert len({id(g.model) for g in got}) == 1
    assert fresh.get_model(model_name).model is got[0].model
    assert fresh.cached_models() == [model_name]


def test_analyse_predicts_and_caches(service: Service, model_name: str, motion_clip) -> None:
    path, _truth = motion_clip
    a = service.analyse(str(path), model_name)
    cfg = tada.get_pretrained_cfg(model_name)
    assert a.probs.shape == (cfg.num_classes,)
    assert torch.isclose(a.probs.sum(), torch.tensor(1.0), atol=1e-4)
    assert len(a.top(5)) == 5 and a.top(5)[0][1] >= a.top(5)[-1][1]
    assert len(a.view.frame_indices) == cfg.num_frames == len(a.view.display_frames)
    assert np.all(np.diff(a.view.frame_timestamps) >= 0)
    assert "calibration" in a.internals  # the bundled model is a TAdaConvNeXtV2
    assert len(a.internals["calibration"].layers) > 0
    t0 = time.perf_counter()
    again = service.analyse(str(path), model_name)
    assert again is a and time.perf_counter() - t0 < 0.05  # served from the cache


def test_bundled_model_gets_the_motion_right(service: Service, model_name: str, motion_clip, request) -> None:
    top1 = tada.get_pretrained_cfg(model_name).reported_top1
    if top1 is None or top1 < 50:  # still runs; binding once trained weights are bundled
        request.applymarker(pytest.mark.xfail(reason=f"bundled weights undertrained (held-out top-1 {top1}%)"))
    path, truth = motion_clip
    a = service.analyse(str(path), model_name, internals=False)
    assert a.top(1)[0][0] == truth


def test_frames_override_and_views(service: Service, model_name: str, motion_clip) -> None:
    path, _ = motion_clip
    cfg = tada.get_pretrained_cfg(model_name)
    a = service.analyse(str(path), model_name, Sampling(frames=cfg.num_frames // 2), internals=False)
    assert len(a.view.frame_indices) == cfg.num_frames // 2
    multi = service.analyse(str(path), model_name, Sampling(views="official"), internals=False)
    assert multi.view_probs.shape[0] == cfg.num_clips * cfg.num_crops == multi.clip.num_views
    assert torch.allclose(multi.probs, multi.view_probs.mean(0))
    with pytest.raises(AppError):
        service.effective_cfg(model_name, Sampling(views="all of them"))
    with pytest.raises(AppError, match="exactly"):
        service.effective_cfg("ila_b16.k400_8f", Sampling(frames=4))


def test_start_and_stride_for_interval_sampling(service: Service, tmp_path: Path) -> None:
    """The service hands the user's start and stride to the video layer (tada.video.load_clip)."""
    frames = np.zeros((90, 32, 48, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(90, dtype=np.uint8)[:, None, None] * 2  # frame number in the red channel
    path = write_mp4(frames, tmp_path / "ramp.mp4", fps=30, scale=1)
    cfg = tada.get_pretrained_cfg("tadaconvnextv2_tiny.k400_16f").replace(
        num_frames=4, sampling_rate=3, test_scale=32, crop_size=32
    )
    clip = service.load_clip(str(path), cfg, Sampling(start=1.0))
    # official interval protocol: a window of 4 x 3 frames from frame 30, linspace over it
    assert clip.indices[0].tolist() == [30, 33, 37, 41]
    assert clip.timestamps[0][0] == pytest.approx(1.0, abs=0.01)
    late = service.load_clip(str(path), cfg, Sampling(start=100.0))
    assert late.indices[0][-1] == 89  # clamped to the end of the video
    assert service.load_clip(str(path), cfg, Sampling()).indices[0].tolist() == [39, 42, 46, 50]  # centred
    # multi-view (and segment / uniform) sampling covers the whole clip: the start does not apply
    multi = service.load_clip(str(path), cfg, Sampling(start=1.0, views="official"))
    assert multi.indices.tolist() == load_clip(str(path), cfg, views="official").indices.tolist()
    strided = service.effective_cfg(cfg.name, Sampling(stride=5))
    assert strided.sampling_rate == 5


def test_single_view_predict_with_internals_runs_the_model_once(model_name: str, motion_clip) -> None:
    """One prediction of one view with its internals is one forward pass: the calibration factors
    come from the traced pass that predicts (issue #16)."""
    fresh = Service(device="cpu")
    model = fresh.get_model(model_name).model  # loading (and any precision check) is not counted
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        a = fresh.analyse(str(motion_clip[0]), model_name, internals=True)
    finally:
        handle.remove()
    assert len(calls) == 1
    cal = a.internals["calibration"]
    assert len(cal.layers) > 0 and cal.target == int(a.probs.argmax())
    assert cal.frame_indices == a.view.frame_indices
    # The same factors as a separate explain() of that view (fp32 on a CPU: identical numbers).
    from visualizations import explain

    again = explain(model, a.view, "calibration")
    assert [la.name for la in again.layers] == [la.name for la in cal.layers]
    for x, y in zip(again.layers, cal.layers):
        np.testing.assert_allclose(x.factors, y.factors, rtol=1e-5, atol=1e-6)
    # A cached prediction made without internals gets them with one more pass, not two.
    b = fresh.analyse(str(motion_clip[0]), model_name, Sampling(frames=4), internals=False)
    assert not b.internals
    calls.clear()
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        b2 = fresh.analyse(str(motion_clip[0]), model_name, Sampling(frames=4), internals=True)
    finally:
        handle.remove()
    assert b2 is b and len(calls) == 1 and len(b.internals["calibration"].layers) > 0


def test_bad_files_give_readable_errors(service: Service, model_name: str, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 10)
    with pytest.raises(VideoError) as err:
        service.analyse(str(text), model_name)
    assert "video" in user_message(err.value).lower() and "Traceback" not in user_message(err.value)
    with pytest.raises(VideoError, match="does not exist"):
        service.analyse(str(tmp_path / "missing.mp4"), model_name)
    with pytest.raises(AppError, match="Upload a video"):
        service.analyse("", model_name)
    assert user_message(KeyError("x")).startswith("Something went wrong")


def test_model_without_weights_says_how_to_get_them(service: Service, motion_clip, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = next(i.name for i in catalogue.catalogue() if not i.available and i.weights == "gdrive")
    with pytest.raises(hub.WeightsUnavailableError) as err:
        service.analyse(str(motion_clip[0]), missing)
    assert missing in str(err.value) and "python -m tada convert" in str(err.value)


def test_explain_methods_on_the_cached_prediction(service: Service, model_name: str, motion_clip) -> None:
    a = service.analyse(str(motion_clip[0]), model_name)
    e = service.explain(a, "gradcam")
    assert e.heatmaps.shape[0] == len(a.view.frame_indices)
    cf = service.explain(a, "counterfactuals")
    assert cf.original.predicted_label == a.top(1)[0][0]
    with pytest.raises(AppError, match="Unknown method"):
        service.explain(a, "telepathy")
    with pytest.raises(AppError, match="not a class"):
        service.explain(a, "gradcam", target="no such class")


def test_bf16_check_runs_and_agrees_on_cpu(model_name: str) -> None:
    model = tada.create_model(model_name, pretrained=True)
    diff = runtime.bf16_difference(model, torch.device("cpu"))
    assert 0.0 <= diff < 0.1
    forced = Service(device="cpu", precision="bf16")
    loaded = forced.get_model(model_name)
    assert loaded.precision == ("bf16" if diff <= runtime.BF16_TOLERANCE else "fp32")


def test_run_cancellable_stops_the_work() -> None:
    steps = []

    def work(progress):
        for i in range(200):
            progress(i / 200, f"step {i}")
            steps.append(i)
            time.sleep(0.01)
        return "finished"

    gen = run_cancellable(work, idle="tick", poll=0.05)
    assert next(gen) == "tick"
    gen.close()  # what Gradio does when the user presses Stop
    time.sleep(0.2)
    n = len(steps)
    time.sleep(0.2)
    assert len(steps) == n < 200  # the work ended early and stays stopped

    done = run_cancellable(lambda p: 42, poll=0.01)
    with pytest.raises(StopIteration) as stop:
        while True:
            next(done)
    assert stop.value.value == 42

    def failing(progress):
        raise Cancelled()

    with pytest.raises(Cancelled):
        list(run_cancellable(failing, poll=0.01))


def test_ila_open_vocabulary_scores_the_given_phrases(service: Service, motion_clip) -> None:
    ila = next((n for n in bundled_models() if catalogue.model_info(n).open_vocabulary), None)
    if ila is None:
        pytest.fail("no bundled open-vocabulary ILA model")
    phrases = "moving left, moving right\nrotating clockwise"
    a = service.analyse(str(motion_clip[0]), ila, class_names=phrases)
    assert a.labels == ["moving left", "moving right", "rotating clockwise"]
    assert a.probs.shape == (3,)
    assert {label for label, _ in a.top(5)} == set(a.labels)
    plain = service.analyse(str(motion_clip[0]), ila)  # the model's own label set again, not the phrases
    assert len(plain.labels) == tada.get_pretrained_cfg(ila).num_classes
    with pytest.raises(Exception) as err:
        service.analyse(str(motion_clip[0]), ila, class_names="a dog, a cat")
    assert "a dog" in user_message(err.value) and not user_message(err.value).startswith("Something went wrong")
