"""``pretrained=True`` end to end on the official-format reference fixtures, served from a loopback server.

Each test registers a variant of a real architecture, built with the fixture's reduced sizes and
pointing at a file id that a thread on 127.0.0.1 serves (``$TADA_DOWNLOAD_URL``).  ``create_model``
downloads it through gdown, converts it into the cache and loads it; the outputs must equal the
fixture's logits.  The server is then stopped and the model loads again from the cache.  Finally,
with an empty cache and ``HF_HUB_OFFLINE=1``, the error comes at once and names the file.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_hub_machinery import _Server  # tests/ is on sys.path (rootdir conftest)

import tada
from tada import PretrainedCfg, _factory, _registry, hub
from tada.checkpoints import read_checkpoint


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("TADA_CACHE", str(tmp_path / "tada-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path


@pytest.fixture()
def variant():
    """Register a test variant under a real architecture; remove it afterwards."""
    added: list[PretrainedCfg] = []

    def add(cfg: PretrainedCfg) -> PretrainedCfg:
        added.append(_registry.register_pretrained(cfg))
        return cfg

    yield add
    for cfg in added:
        _registry.deregister_pretrained(cfg.name)


def _serve_and_load(cfg: PretrainedCfg, fixture: Path, cache: Path, monkeypatch, forward) -> torch.Tensor:
    served = cache / "served"
    served.mkdir()
    shutil.copyfile(fixture, served / cfg.gdrive_id)
    server = _Server(served)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TADA_DOWNLOAD_URL", server.url + "/{id}")
    try:
        model = tada.create_model(cfg.name, pretrained=True)
    finally:
        server.stop()
    outputs = forward(model)
    assert server.hits == [f"/{cfg.gdrive_id}"]
    cached = hub.cached_model_dir(cfg.name)
    assert (cached / "model.safetensors").is_file() and (cached / "config.json").is_file()

    # server gone, offline: the converted copy in the cache answers, with identical weights
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = tada.create_model(cfg.name, pretrained=True).state_dict()
    assert again.keys() == model.state_dict().keys()
    assert all(torch.equal(again[k], v) for k, v in model.state_dict().items())

    # empty cache, offline: fails within seconds, naming the file and where it goes
    shutil.rmtree(cached)
    start = time.monotonic()
    with pytest.raises(hub.WeightsUnavailableError) as info:
        tada.create_model(cfg.name, pretrained=True)
    assert time.monotonic() - start < 2.0
    assert hub.gdrive_view_url(cfg.gdrive_id) in str(info.value) and str(cached) in str(info.value)
    return outputs


def test_ila_pretrained_download_convert_cache(cache, variant, monkeypatch, reference_dir):
    fixtures = reference_dir / "ila" / "fixtures"
    state = read_checkpoint(fixtures / "ila_tiny.pth")
    arch, kwargs = _factory.infer_architecture(state.state_dict, state.config)
    cfg = variant(
        PretrainedCfg(
            architecture=arch,
            tag="hubtest_tiny",
            num_classes=8,
            label_set="",
            num_frames=8,
            crop_size=64,
            input_layout="BTCHW",
            model_kwargs=kwargs,
            gdrive_id="ilaTinyFixtureId",
        )
    )
    io = load_file(str(fixtures / "ila_tiny.io.safetensors"))

    def forward(model):
        model.set_text_tokens(io["text_tokens"])  # the fixture's reduced vocabulary
        with torch.no_grad():
            return model(io["input"])

    logits = _serve_and_load(cfg, fixtures / "ila_tiny.pth", cache, monkeypatch, forward)
    torch.testing.assert_close(logits, io["logits"], rtol=1e-4, atol=1e-4)


def test_tadaconvnextv2_pretrained_download_convert_cache(cache, variant, monkeypatch, reference_dir):
    fixtures = reference_dir / "tadaconv" / "fixtures"
    # the reduced TAdaConvNeXtV2-T of the fixture, with the builder's own arguments (fixture config.json)
    cfg = variant(
        PretrainedCfg(
            architecture="tadaconvnextv2_tiny",
            tag="hubtest_mini",
            num_classes=10,
            label_set="",
            num_frames=16,
            crop_size=64,
            test_scale=64,
            model_kwargs={"dims": (16, 32, 64, 128), "depths": (1, 1, 2, 1), "route_head_dim": 8, "num_frames": 16},
            gdrive_id="tadaconvnextv2MiniFixtureId",
        )
    )
    io = load_file(str(fixtures / "tadaconvnextv2_mini.io.safetensors"))

    def forward(model):
        with torch.no_grad():
            return model(io["input"])

    logits = _serve_and_load(cfg, fixtures / "tadaconvnextv2_mini.pyth", cache, monkeypatch, forward)
    torch.testing.assert_close(logits, io["logits"], rtol=1e-4, atol=1e-4)
