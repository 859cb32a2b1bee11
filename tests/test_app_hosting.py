"""Hosting a Space: adding a model from the page (official checkpoint upload or Hub repo id), who may do
it, the size cap, and browser previews of clips Chromium cannot play.  Through a launched app and
``gradio_client``; no network (the Hub repo comes from a pre-seeded Hub cache)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from app_server import free_port

import tada
from app import hosting
from app import service as svc
from tada import convert, hub
from tada.motion import generate_clip
from tada.motion.media import write_mp4

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
TADA2D_MINI = REFERENCE / "tadaconv" / "fixtures" / "tada2d_mini.pyth"
CONVNEXT_MINI = REFERENCE / "tadaconv" / "fixtures" / "tadaconvnextv2_mini.pyth"
ILA_TINY = REFERENCE / "ila" / "fixtures" / "ila_tiny.pth"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Own weights cache and Hub cache (offline), adding allowed, a launched app."""
    from huggingface_hub import constants

    d = tmp_path_factory.mktemp("hosting")
    mp = pytest.MonkeyPatch()
    mp.setenv("TADA_CACHE", str(d / "tada-cache"))
    mp.setattr(constants, "HF_HUB_CACHE", str(d / "hf-cache"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("GRADIO_TEMP_DIR", str(d / "gradio"))
    mp.setenv("TADA_MODEL_UPLOADS", "1")
    from app.ui import create_app, launch_kwargs

    demo = create_app(svc.Service(device="cpu"), warm_up=False)
    kwargs = launch_kwargs(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    demo.launch(**kwargs)
    from gradio_client import Client

    added: list[str] = []
    yield {"client": Client(demo.local_url, verbose=False), "dir": d, "added": added, "mp": mp}
    demo.close()
    for name in added:  # leave the registry as the other test modules expect it
        hosting.remove_added_model(name)
    mp.undo()


@pytest.fixture(scope="module")
def clip(env) -> Path:
    c = generate_clip(3, "moving left", num_frames=16, size=64, distractors=False, noise=False)
    return write_mp4(c, env["dir"] / "left.mp4", fps=8, scale=2)


def _models(client) -> dict[str, dict]:
    return {r["name"]: r for r in client.predict(api_name="/models")}


def test_uploaded_official_checkpoint_becomes_a_model_without_restart(env, clip) -> None:
    from gradio_client import handle_file

    client = env["client"]
    before = _models(client)
    picker, note = client.predict(handle_file(str(TADA2D_MINI)), "", False, api_name="/add_model_from_checkpoint")
    name = picker if isinstance(picker, str) else picker["value"]
    env["added"].append(name)
    assert name.startswith("tada2d") and ".added-" in name and name not in before
    assert "Added" in note and name in note
    row = _models(client)[name]
    assert row["available"] and row["weights"] == "cached" and not row["get_weights"]
    assert (hub.cached_model_dir(name) / hub.WEIGHTS_NAME).is_file()
    top, gallery, details, cal, _points = client.predict(handle_file(str(clip)), name, api_name="/predict")
    assert len(top["confidences"]) == 5 and name in details
    assert len(gallery) == tada.get_pretrained_cfg(name).num_frames
    # The added model runs like a shipped one: its calibration (TAda2D) is there.
    assert "No calibration" not in cal["plot"]


def test_hub_repo_id_from_the_hub_cache(env, clip) -> None:
    """A repo holding a converted model (seeded into the Hub cache, as a Space's persistent storage or an
    earlier download would) becomes a model."""
    from gradio_client import handle_file
    from huggingface_hub import constants

    folder = convert.convert_checkpoint(CONVNEXT_MINI, env["dir"] / "converted")
    repo = "someone/tadaconvnextv2-mini"
    root = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    sha = "89abcdef0123456789abcdef0123456789abcdef"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(sha)
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    client = env["client"]
    picker, note = client.predict(repo, False, api_name="/add_model_from_hub")
    name = picker if isinstance(picker, str) else picker["value"]
    env["added"].append(name)
    assert name.startswith("tadaconvnextv2") and "Added" in note
    assert _models(client)[name]["weights"] == "hub-cached"
    top = client.predict(handle_file(str(clip)), name, api_name="/predict")[0]
    assert len(top["confidences"]) == 5


def test_ila_checkpoint_without_label_set_asks_for_class_phrases(env, clip) -> None:
    """An ILA checkpoint converted without its variant has no label set: the page says to type phrases."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client = env["client"]
    picker, _ = client.predict(handle_file(str(ILA_TINY)), "", False, api_name="/add_model_from_checkpoint")
    name = picker if isinstance(picker, str) else picker["value"]
    env["added"].append(name)
    assert name.startswith("ila")
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(clip)), name, api_name="/predict")
    assert "class phrases" in str(err.value)


def test_bad_inputs_give_clear_messages(env) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client = env["client"]
    text = env["dir"] / "notes.pth"
    text.write_text("not a checkpoint\n" * 20)
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(text)), "", False, api_name="/add_model_from_checkpoint")
    assert "notes.pth" in str(err.value) and "Something went wrong" not in str(err.value)
    with pytest.raises(AppError) as err:
        client.predict("not a repo id", False, api_name="/add_model_from_hub")
    assert "org/name" in str(err.value)
    with pytest.raises(AppError) as err:  # offline and not cached: says so, at once
        client.predict("nobody/nothing-here", False, api_name="/add_model_from_hub")
    assert "nobody/nothing-here" in str(err.value) and "cache" in str(err.value)
    # The size cap (read at call time) refuses a checkpoint above it, with the number.
    env["mp"].setenv("TADA_MAX_CHECKPOINT_MB", "0.01")
    try:
        with pytest.raises(AppError) as err:
            client.predict(handle_file(str(TADA2D_MINI)), "", False, api_name="/add_model_from_checkpoint")
    finally:
        env["mp"].delenv("TADA_MAX_CHECKPOINT_MB")
    assert "accepts up to" in str(err.value) and "TADA_MAX_CHECKPOINT_MB" in str(err.value)


def test_who_may_add_models(monkeypatch) -> None:
    """Local run: the person at the page is the host.  On a Space: only when the host says so."""
    from app.ui import build_demo

    monkeypatch.delenv("TADA_MODEL_UPLOADS", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert hosting.model_uploads_allowed()
    monkeypatch.setenv("SPACE_ID", "someone/tada-lab")
    assert not hosting.model_uploads_allowed()
    demo = build_demo(svc.Service(device="cpu"), examples=[])
    api_names = {d.api_name for d in demo.fns.values()}
    assert "add_model_from_checkpoint" not in api_names and "predict" in api_names
    monkeypatch.setenv("TADA_MODEL_UPLOADS", "1")
    assert hosting.model_uploads_allowed()
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.setenv("TADA_MODEL_UPLOADS", "0")
    assert not hosting.model_uploads_allowed()


def _mjpeg(path: Path, n: int = 24) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg", rate=12)
        s.width, s.height, s.pix_fmt = 320, 180, "yuvj420p"
        for i in range(n):
            img = np.zeros((180, 320, 3), np.uint8)
            img[60:120, 10 * i : 10 * i + 40] = (250, 220, 30)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_preview_of_a_clip_the_browser_cannot_play(tmp_path) -> None:
    from tada.video import probe

    src = _mjpeg(tmp_path / "camera.avi")
    info = probe(src)
    assert info.codec == "mjpeg" and not hosting.browser_playable(src, info.codec)
    out = hosting.browser_preview(src, tmp_path)
    assert out.name.startswith("preview-") and out.suffix == ".mp4"
    with av.open(str(out)) as f:
        v = f.streams.video[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(v)]
    assert len(frames) == 24 and frames[0].shape == (180, 320, 3)
    # The preview shows the same picture (the yellow bar moves right).
    cols = [int(np.argmax(fr[90, :, 0] > 128)) for fr in (frames[0], frames[-1])]
    assert cols[1] > cols[0] + 100
    assert hosting.browser_playable(out, probe(out).codec)
