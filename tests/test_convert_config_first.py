"""Conversion reads construction values from the checkpoint's own training config first (#16 item 7).

An official ``.pyth`` carries its training config; values such as the routing reduction ratio
(``ROUTE_FUNC_R``) come from it, and the weight shapes only check it.  A TAda2D with narrow stages
(bottleneck width 6, ``ROUTE_FUNC_R`` 4 -> routing width 1) is the case where the shapes alone mislead:
6 // 1 suggests a ratio of 6, which does not fit the wider stages.
"""

from __future__ import annotations

import json

import pytest
import torch

import tada
from tada import convert
from tada.errors import ConversionError

NUM_FILTERS = (8, 24, 48, 96, 192)  # bottleneck widths 6, 12, 24, 48 (expansion 4)
KWARGS = {"num_classes": 5, "num_frames": 4, "depths": (1, 1, 1, 1), "num_filters": NUM_FILTERS, "route_ratio": 4}


def _official_cfg(route_ratio: int = 4) -> dict:
    return {
        "DATA": {"NUM_INPUT_FRAMES": 4, "SAMPLING_MODE": "segment_based", "TEST_SCALE": 32, "TEST_CROP_SIZE": 32},
        "VIDEO": {
            "BACKBONE": {
                "META_ARCH": "ResNet3D",
                "NUM_FILTERS": list(NUM_FILTERS),
                "BRANCH": {
                    "NAME": "TAda2DBlock",
                    "ROUTE_FUNC_K": [3, 3],
                    "ROUTE_FUNC_R": route_ratio,
                    "POOL_K": [3, 1, 1],
                },
            },
            "HEAD": {"NUM_CLASSES": 5},
        },
    }


@pytest.fixture()
def narrow(tmp_path):
    """A randomly initialised narrow TAda2D saved in the official ``.pyth`` layout, with its config."""
    torch.manual_seed(0)
    model = tada.create_model("tada2d_r50", **KWARGS).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so a wrong load cannot match by chance
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    routed = model.state_dict()["backbone.conv2.res_1.conv_branch.b_rf.a.weight"].shape[0]
    assert routed == 1  # 6 // 4: the case the shapes alone got wrong

    def write(route_ratio: int = 4):
        src = tmp_path / f"narrow_r{route_ratio}.pyth"
        state = {"model_state": model.state_dict(), "epoch": 1, "cfg": json.dumps(_official_cfg(route_ratio))}
        torch.save(state, src)
        return src

    return model, write


def test_narrow_tada2d_converts_with_the_ratio_of_its_config(narrow, tmp_path):
    model, write = narrow
    out = convert.convert_checkpoint(write(), tmp_path / "out")
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "tada2d_r50" and config["model_kwargs"]["route_ratio"] == 4

    loaded = tada.create_model(f"local-dir:{out}")
    x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_a_config_the_shapes_contradict_is_refused(narrow, tmp_path):
    _, write = narrow
    with pytest.raises(ConversionError, match="ROUTE_FUNC_R"):
        convert.convert_checkpoint(write(route_ratio=2), tmp_path / "out")


def test_without_a_config_the_ratio_fits_every_stage(narrow, tmp_path):
    model, _ = narrow
    src = tmp_path / "bare.pyth"
    torch.save({"model_state": model.state_dict()}, src)
    out = convert.convert_checkpoint(src, tmp_path / "out", overrides=["num_frames=4"])
    assert json.loads((out / "config.json").read_text())["model_kwargs"]["route_ratio"] == 4
    loaded = tada.create_model(f"local-dir:{out}")
    x = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
