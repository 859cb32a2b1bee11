"""One contract, every registered architecture (timm's ``tests/test_models.py`` style).

Each architecture is built small (its own class and block structure, reduced widths/depths, small
frames) so that a real CPU forward stays fast, and full size on the meta device (no memory, no
time).  The contract: it builds through the registry with a :class:`PretrainedCfg` attached that
names its family and layout; ``forward`` maps a batch in that layout to ``(B, num_classes)``
logits; ``temporal_positions`` covers the input frames; ``tada.trace`` records what the family
records, under module names of the model; the state dict round-trips strictly through safetensors.
"""

from __future__ import annotations

import pytest
import torch

import tada
from tada._pretrained import FAMILIES
from tada.checkpoints import load_state_dict_strict, save_safetensors
from tada.models.base import VideoClassifier

_CONVNEXT = {"dims": (16, 32, 64, 128), "depths": (1, 1, 2, 1), "route_head_dim": 8}
_FORMER = {"width": 64, "layers": 2, "heads": 2, "patch_size": 16, "input_res": 32, "route_head_dim": 8}
_ILA = {
    "image_resolution": 32,
    "vision_patch_size": 8,
    "vision_width": 64,
    "vision_layers": 2,
    "embed_dim": 32,
    "transformer_width": 32,
    "transformer_layers": 1,
    "align_hidden": 16,
}
#: Reduced construction arguments and input side per architecture (frames: 4 for every one).
SMALL: dict[str, tuple[dict, int]] = {
    "tada2d_r50": ({"depths": (1, 1, 1, 1), "num_filters": (8, 24, 48, 96, 192)}, 32),
    "tadaconvnextv2_tiny": (_CONVNEXT, 64),
    "tadaconvnextv2_small": (_CONVNEXT, 64),
    "tadaconvnextv2_base": (_CONVNEXT, 64),
    "tadaconvnextv2_motion": ({}, 64),
    "tadaformer_b16": (_FORMER, 32),
    "tadaformer_l14": ({**_FORMER, "patch_size": 8}, 32),
    "tadaformer_motion": ({}, 32),
    "ila_b32": ({**_ILA, "image_resolution": 64, "vision_patch_size": 16}, 64),
    "ila_b16": (_ILA, 32),
    "ila_l14": (_ILA, 32),
    "ila_l14_336": (_ILA, 32),
    "ila_motion": ({}, 32),
    "frame2d": ({"dims": (8, 16, 32, 64), "depths": (1, 1, 1, 1)}, 32),
    "frame2d_motion": ({}, 32),
}
FRAMES = 4
#: What a traced forward records, per family.
RECORDS = {"tadaconv": "calibration", "ila": "points", "frame2d": None}


def test_every_registered_architecture_is_under_contract():
    assert set(tada.list_architectures()) == set(SMALL)


def _small(arch: str, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    kwargs, size = SMALL[arch]
    torch.manual_seed(seed)
    model = tada.create_model(arch, num_frames=FRAMES, **kwargs).eval()
    x = torch.randn(model.pretrained_cfg.input_shape(batch=2, frames=FRAMES, size=size))
    return model, x


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_contract(arch, tmp_path):
    model, x = _small(arch)
    cfg = model.pretrained_cfg
    # built through the registry, with the config attached in one place, naming family and layout
    assert isinstance(model, VideoClassifier) and cfg.architecture == arch
    assert cfg.family in FAMILIES and cfg.family == model.family
    assert cfg.input_layout in ("BCTHW", "BTCHW") and cfg.time_first == (cfg.family == "ila")
    assert x.shape[cfg.time_dim] == FRAMES and x.shape[cfg.channel_dim] == 3

    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, cfg.num_classes) and torch.isfinite(logits).all()

    positions = model.temporal_positions(FRAMES)
    assert positions and all(p and all(0 <= f < FRAMES for f in p) for p in positions)
    assert sorted({f for p in positions for f in p}) == list(range(FRAMES))

    with torch.no_grad(), tada.trace(model) as tr:
        traced = model(x)
    torch.testing.assert_close(traced, logits)  # tracing changes nothing
    assert tr.num_input_frames == FRAMES
    names = {n for n, _ in model.named_modules()}
    recorded = RECORDS[cfg.family]
    if recorded is None:
        assert not tr.calibration and not tr.points
    else:
        found = getattr(tr, recorded)
        assert found and set(found) <= names
        assert all(tr.frame_map[k] for k in found)

    # strict state-dict round trip through safetensors into a differently initialised twin
    save_safetensors(model.state_dict(), tmp_path / "w.safetensors")
    twin, _ = _small(arch, seed=1)
    from safetensors.torch import load_file

    load_state_dict_strict(twin, load_file(str(tmp_path / "w.safetensors")))
    with torch.no_grad():
        torch.testing.assert_close(twin(x), logits, rtol=0, atol=0)


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_full_size_builds_and_variants_agree(arch):
    """Full size on the meta device (the bundled tiny ones on the CPU: the motion ILA reads its token
    table while building); every variant of the architecture says the model's family."""
    if arch.endswith("_motion"):
        model = tada.create_model(arch)
    else:
        with torch.device("meta"):
            model = tada.create_model(arch)
    assert model.state_dict() and model.pretrained_cfg.family == model.family
    for name in tada.list_models(f"{arch}.*"):
        cfg = tada.get_pretrained_cfg(name)
        assert cfg.family == model.family and cfg.input_layout == model.pretrained_cfg.input_layout, name
        assert cfg.architecture == arch and cfg.model_kwargs.get("num_frames", cfg.num_frames) == cfg.num_frames
