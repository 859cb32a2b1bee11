"""Weights resolution and conversion, exercised on a small real model family registered by the test.

The family (a Conv3d + linear classifier) is saved in the official TAdaConv ``.pyth`` layout, so the
whole path runs for real: conversion, strict loading, the cache, a download from a loopback HTTP
server through gdown, the Hub cache, and the offline errors.  The released model families are
covered on the reference fixtures in ``test_hub_fixtures.py``.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from pathlib import Path

import pytest
import torch
from app_server import free_port
from safetensors import safe_open
from torch import nn

import tada
from tada import PretrainedCfg, _factory, _registry, convert, hub
from tada.checkpoints import CheckpointMismatchError
from tada.models.base import VideoClassifier

ARCH = "hubtest_net"
FILE_ID = "1HubTestFileId_abc"


class HubTestNet(VideoClassifier):
    def __init__(self, num_classes: int = 5, width: int = 4, temporal_kernel: int = 3):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv3d(3, width, (temporal_kernel, 3, 3), padding=(1, 1, 1)), nn.ReLU())
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x).mean(dim=(2, 3, 4)))


def hubtest_net(num_classes: int = 5, width: int = 4, temporal_kernel: int = 3) -> nn.Module:
    return HubTestNet(num_classes=num_classes, width=width, temporal_kernel=temporal_kernel)


def _infer(sd: dict[str, torch.Tensor], official_cfg: dict | None):
    if "backbone.0.weight" not in sd or "head.weight" not in sd:
        return None
    # temporal_kernel is deliberately *not* inferred: the checkpoint shape says it, but the test uses it as
    # "a parameter the checkpoint does not record" to exercise --override.
    return ARCH, {"num_classes": sd["head.weight"].shape[0], "width": sd["backbone.0.weight"].shape[0]}


@pytest.fixture()
def family():
    """Register the test family (builder, inferrer, two variants); remove every trace of it afterwards."""
    assert _factory.list_models()  # every real model registered first
    _registry.register_model(hubtest_net)
    _registry.register_arch_inferrer(_infer)
    base = dict(architecture=ARCH, num_frames=4, crop_size=16, test_scale=16, label_set="", source="hub test")
    _registry.register_pretrained(PretrainedCfg(tag="dl", num_classes=5, gdrive_id=FILE_ID, reported_top1=12.5, **base))
    _registry.register_pretrained(PretrainedCfg(tag="seven", num_classes=7, gdrive_id="other", **base))
    _registry.register_pretrained(PretrainedCfg(tag="k1", num_classes=5, model_kwargs={"temporal_kernel": 1}, **base))
    yield
    _registry.deregister_model(ARCH)
    _registry.deregister_arch_inferrer(_infer)


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """Fresh tada cache and Hub cache, offline by default."""
    from huggingface_hub import constants

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "tada-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TADA_DOWNLOAD_URL", raising=False)
    return tmp_path


def _official_file(path: Path, num_classes: int = 5, width: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    sd = HubTestNet(num_classes, width).state_dict()
    cfg = {"DATA": {"NUM_INPUT_FRAMES": 4, "SAMPLING_MODE": "segment_based", "TEST_SCALE": 16, "TEST_CROP_SIZE": 16}}
    torch.save({"epoch": 3, "model_state": sd, "optimizer_state": {"state": {}}, "cfg": json.dumps(cfg)}, path)
    return sd


def _clip() -> torch.Tensor:
    return torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))


def _same_weights(model: nn.Module, sd: dict[str, torch.Tensor]) -> bool:
    own = model.state_dict()
    return own.keys() == sd.keys() and all(torch.equal(own[k], sd[k]) for k in sd)


# --- conversion --------------------------------------------------------------------------------------


def test_convert_writes_a_loadable_model_folder(family, isolated):
    src = isolated / "official.pyth"
    sd = _official_file(src)
    out = convert.convert_checkpoint(src, isolated / "out")
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "official_config.json", "README.md"}

    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == ARCH and config["format_version"] == 1
    assert config["num_classes"] == 5 and config["model_kwargs"] == {"width": 4}
    assert config["provenance"]["source_sha256"] == convert._sha256(src)
    # preprocessing came from the official training config
    assert config["pretrained_cfg"]["sampling"] == "segment" and config["pretrained_cfg"]["num_frames"] == 4
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.metadata()["source_sha256"] == config["provenance"]["source_sha256"]

    model = tada.create_model(f"local-dir:{out}")
    assert not model.training and _same_weights(model, sd)
    reference = HubTestNet()
    reference.load_state_dict(sd)
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(_clip()), reference(_clip()), rtol=0, atol=0)


def test_model_card_front_matter_parses(family, isolated):
    from huggingface_hub import ModelCard

    src = isolated / "official.pyth"
    _official_file(src)
    out = convert.convert_checkpoint(src, isolated / "out", variant=f"{ARCH}.dl")
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "tada"
    assert "video-classification" in card.data.tags
    assert convert._sha256(src) in card.text and hub.gdrive_view_url(FILE_ID) in card.text and "12.5%" in card.text


def test_convert_with_variant_attaches_its_config(family, isolated):
    src = isolated / "official.pyth"
    _official_file(src)
    out = convert.convert_checkpoint(src, isolated / "out", variant=f"{ARCH}.dl")
    model = tada.create_model(f"local-dir:{out}")
    assert model.pretrained_cfg.name == f"{ARCH}.dl"
    assert model.pretrained_cfg.gdrive_id == FILE_ID and model.pretrained_cfg.source == "hub test"


def test_convert_rejects_a_mismatched_variant(family, isolated):
    src = isolated / "official.pyth"
    _official_file(src)  # 5 classes
    with pytest.raises(convert.ConversionError, match="5 classes.*7"):
        convert.convert_checkpoint(src, isolated / "out", variant=f"{ARCH}.seven")
    # same class count, but the variant's architecture has other weight shapes
    with pytest.raises(
        convert.ConversionError, match=r"does not match variant hubtest_net\.k1: 1 shapes differ.*backbone"
    ):
        convert.convert_checkpoint(src, isolated / "out", variant=f"{ARCH}.k1")
    assert not (isolated / "out").exists()


def test_overrides_are_parsed_and_checked(family, isolated):
    assert convert.parse_overrides(["a=3", "b=0.5", "c=true", "d=[1,2]", "e=(1, 2)", "f=name", "g=null"]) == {
        "a": 3,
        "b": 0.5,
        "c": True,
        "d": [1, 2],
        "e": (1, 2),
        "f": "name",
        "g": None,
    }
    with pytest.raises(convert.ConversionError, match="key=value"):
        convert.parse_overrides(["no_equals_sign"])
    src = isolated / "official.pyth"
    _official_file(src)
    with pytest.raises(convert.ConversionError, match="not_a_param"):
        convert.convert_checkpoint(src, isolated / "out", overrides=["not_a_param=1"])
    # an override the checkpoint cannot satisfy fails loudly, naming the mis-shaped key
    with pytest.raises(CheckpointMismatchError, match=r"backbone\.0\.weight"):
        convert.convert_checkpoint(src, isolated / "out", overrides=["temporal_kernel=1"])
    out = convert.convert_checkpoint(src, isolated / "out", overrides=["temporal_kernel=3"])
    assert json.loads((out / "config.json").read_text())["model_kwargs"]["temporal_kernel"] == 3


def test_strict_loading_names_extra_keys(family, isolated):
    src = isolated / "official.pyth"
    sd = _official_file(src)
    sd["backbone.9.weight"] = torch.zeros(2)
    torch.save({"model_state": sd}, src)
    with pytest.raises(CheckpointMismatchError, match=r"backbone\.9\.weight"):
        convert.convert_checkpoint(src, isolated / "out")


def test_loading_a_folder_with_changed_shapes_fails_loudly(family, isolated):
    src = isolated / "official.pyth"
    _official_file(src)
    out = convert.convert_checkpoint(src, isolated / "out")
    with pytest.raises(CheckpointMismatchError, match=r"head\.weight"):
        tada.create_model(f"local-dir:{out}", num_classes=3)


# --- pretrained=True: the official download through a loopback server ------------------------------


class _Server:
    """Serves one directory on 127.0.0.1 from a thread and counts the requests it answered."""

    def __init__(self, root: Path):
        hits = self.hits = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                hits.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def test_pretrained_downloads_converts_caches_and_reloads(family, isolated, monkeypatch):
    served = isolated / "served"
    served.mkdir()
    sd = _official_file(served / FILE_ID)
    server = _Server(served)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("TADA_DOWNLOAD_URL", server.url + "/{id}")
    try:
        assert hub.weights_status(tada.get_pretrained_cfg(f"{ARCH}.dl")) == "gdrive"
        model = tada.create_model(f"{ARCH}.dl", pretrained=True)
    finally:
        server.stop()
    assert server.hits == [f"/{FILE_ID}"]
    assert _same_weights(model, sd)
    cached = hub.cached_model_dir(f"{ARCH}.dl")
    assert (cached / "model.safetensors").is_file() and (cached / "config.json").is_file()
    assert not list((hub.cache_dir() / "downloads").iterdir())  # raw file removed after conversion
    assert hub.weights_status(tada.get_pretrained_cfg(f"{ARCH}.dl")) == "cached"

    # server gone and offline again: the cache answers
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = tada.create_model(f"{ARCH}.dl", pretrained=True)
    assert _same_weights(again, sd)
    with torch.no_grad():
        torch.testing.assert_close(again(_clip()), model(_clip()), rtol=0, atol=0)


def test_offline_without_cache_fails_fast_and_says_what_to_do(family, isolated):
    start = time.monotonic()
    with pytest.raises(hub.WeightsUnavailableError) as info:
        tada.create_model(f"{ARCH}.dl", pretrained=True)
    assert time.monotonic() - start < 2.0
    msg = str(info.value)
    assert f"https://drive.google.com/file/d/{FILE_ID}" in msg
    assert str(hub.cached_model_dir(f"{ARCH}.dl")) in msg
    assert "python -m tada convert" in msg and "checkpoint=" in msg
    assert isinstance(info.value, RuntimeError)


def test_offline_error_comes_before_building_a_large_model(isolated):
    """Resolution happens before construction: no minutes of random init for a model that cannot load."""
    start = time.monotonic()
    with pytest.raises(hub.WeightsUnavailableError, match="drive.google.com/file/d/"):
        tada.create_model("tadaformer_l14.k400_64f_clip_k710", pretrained=True)
    assert time.monotonic() - start < 2.0


def test_connection_refused_maps_to_the_clear_error(family, isolated, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("TADA_DOWNLOAD_URL", f"http://127.0.0.1:{free_port()}/{{id}}")
    start = time.monotonic()
    with pytest.raises(hub.WeightsUnavailableError, match=f"drive.google.com/file/d/{FILE_ID}") as info:
        tada.create_model(f"{ARCH}.dl", pretrained=True)
    assert time.monotonic() - start < 10.0
    assert "ConnectionError" in str(info.value)
    assert not (hub.cache_dir() / "downloads" / f"{FILE_ID}.pyth.part").exists()


def test_missing_remote_file_maps_to_the_clear_error(family, isolated, monkeypatch):
    empty = isolated / "empty"
    empty.mkdir()
    server = _Server(empty)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("TADA_DOWNLOAD_URL", server.url + "/{id}")
    try:
        with pytest.raises(hub.WeightsUnavailableError, match="404"):
            tada.create_model(f"{ARCH}.dl", pretrained=True)
    finally:
        server.stop()
    assert not hub.cached_model_dir(f"{ARCH}.dl").exists()


def test_a_manual_convert_into_the_cache_is_picked_up(family, isolated):
    """The path the offline message recommends: convert the downloaded file into the cache folder."""
    src = isolated / "downloaded.pyth"
    sd = _official_file(src)
    convert.convert_checkpoint(src, hub.cached_model_dir(f"{ARCH}.dl"), variant=f"{ARCH}.dl")
    assert _same_weights(tada.create_model(f"{ARCH}.dl", pretrained=True), sd)


def test_bundled_local_dir_comes_first(family, isolated):
    src = isolated / "official.pyth"
    sd = _official_file(src, seed=5)
    folder = convert.convert_checkpoint(src, isolated / "bundled")
    cfg = tada.get_pretrained_cfg(f"{ARCH}.dl").replace(tag="bundled", local_dir=str(folder))
    _registry.register_pretrained(cfg)
    assert hub.weights_status(cfg) == "bundled"
    assert _same_weights(tada.create_model(f"{ARCH}.bundled", pretrained=True), sd)


# --- the Hub (a pre-seeded cache; no network) ---------------------------------------------------------


def _seed_hub_cache(repo_id: str, folder: Path) -> None:
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    sha = "0123456789abcdef0123456789abcdef01234567"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(sha)
    snapshot = root / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())


def test_hf_hub_names_and_hub_ids_resolve_from_the_hub_cache(family, isolated):
    src = isolated / "official.pyth"
    sd = _official_file(src, seed=3)
    _seed_hub_cache("tada-lab/hubtest", convert.convert_checkpoint(src, isolated / "conv", variant=f"{ARCH}.dl"))

    model = tada.create_model("hf-hub:tada-lab/hubtest")
    assert _same_weights(model, sd) and model.pretrained_cfg.name == f"{ARCH}.dl"

    cfg = tada.get_pretrained_cfg(f"{ARCH}.dl").replace(tag="viahub", hf_hub_id="tada-lab/hubtest")
    _registry.register_pretrained(cfg)
    assert hub.weights_status(cfg) == "hub-cached"
    assert _same_weights(tada.create_model(f"{ARCH}.viahub", pretrained=True), sd)


def test_uncached_hub_repo_offline_fails_fast(family, isolated):
    start = time.monotonic()
    with pytest.raises(hub.WeightsUnavailableError, match="tada-lab/not-there"):
        tada.create_model("hf-hub:tada-lab/not-there")
    # a variant whose Hub repo is not cached falls through to the official-file instructions
    cfg = tada.get_pretrained_cfg(f"{ARCH}.dl").replace(tag="hubmiss", hf_hub_id="tada-lab/not-there")
    _registry.register_pretrained(cfg)
    with pytest.raises(hub.WeightsUnavailableError, match="tada-lab/not-there.*HF_HUB_OFFLINE") as info:
        tada.create_model(f"{ARCH}.hubmiss", pretrained=True)
    assert FILE_ID in str(info.value)
    assert time.monotonic() - start < 2.0
