"""Registry, trace and checkpoint plumbing that every model family relies on."""

from __future__ import annotations

import pytest
import torch

import tada
from tada import PretrainedCfg
from tada.checkpoints import (
    CheckpointMismatchError,
    UnsafeCheckpointError,
    load_state_dict_strict,
    read_checkpoint,
)
from tada.errors import ModelNotFoundError
from tada.labels import get_labels
from tada.models.base import conv_temporal_positions


def test_labels_match_reference(reference_dir):
    import csv

    for name, file in (("kinetics400", "kinetics400.csv"), ("ssv2", "ssv2.csv")):
        with (reference_dir / "labels" / file).open(newline="") as f:
            ref = [r["name"] for r in csv.DictReader(f)]
        assert get_labels(name) == ref


def test_pretrained_cfg_roundtrip():
    cfg = PretrainedCfg(architecture="x", tag="y", mean=(0.1, 0.2, 0.3), model_kwargs={"a": 1})
    again = PretrainedCfg.from_dict(cfg.to_dict() | {"unknown_field": 3})
    assert again == cfg and again.name == "x.y"


def test_unknown_model_names_suggest():
    with pytest.raises(ModelNotFoundError, match="Unknown model"):
        tada.get_pretrained_cfg("no_such_model_at_all")


def test_conv_temporal_positions_stride2():
    # kernel 3, stride 2, padding 1 (ConvNeXt stem / TAdaFormer tubelet): 8 frames -> 4 positions
    assert conv_temporal_positions(8, 3, 2, 1) == [[0, 1], [1, 2, 3], [3, 4, 5], [5, 6, 7]]


def test_strict_loading_names_keys():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    sd = model.state_dict()
    bad = dict(sd)
    bad.pop("1.bias")
    bad["extra.weight"] = torch.zeros(1)
    bad["0.weight"] = torch.zeros(5, 3)
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(model, bad)
    msg = str(info.value)
    assert "1.bias" in msg and "extra.weight" in msg and "0.weight" in msg


def test_official_formats_read(reference_dir):
    pyth = read_checkpoint(reference_dir / "tadaconv/fixtures/tadaconvnextv2_mini.pyth")
    assert pyth.format == "tadaconv-pyth" and all(k.startswith(("backbone.", "head.")) for k in pyth.state_dict)
    assert pyth.config["VIDEO"]["HEAD"]["NUM_CLASSES"] == 10
    ila = read_checkpoint(reference_dir / "ila/fixtures/ila_tiny.pth")
    assert ila.format == "ila-pth" and "visual.conv1.weight" in ila.state_dict
    assert "MODEL" in ila.config  # the yacs config became a plain dict, without yacs installed


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_crafted_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    # Official ILA files are torch.save zips with a pickled config: craft the same with a payload.
    torch.save({"model": {"w": torch.zeros(1)}, "config": _Evil()}, path)
    with pytest.raises(UnsafeCheckpointError, match="print"):
        read_checkpoint(path)


def test_trace_is_inactive_outside_context():
    model = torch.nn.Linear(2, 2)
    assert tada.active_trace() is None
    with tada.trace(model) as tr:
        assert tada.active_trace() is tr
    assert tada.active_trace() is None


def test_model_and_transform_travel_together():
    import numpy as np

    model, transform = tada.create_model_and_transforms("tadaconvnextv2_tiny.k400_16f")
    assert transform.cfg is model.pretrained_cfg or transform.cfg == model.pretrained_cfg
    frames = np.random.default_rng(0).integers(0, 255, (16, 300, 400, 3), dtype=np.uint8)
    x = transform(frames)
    assert tuple(x.shape[-4:]) == (3, 16, 256, 256)  # B,C,T,H,W at the variant's 256 crop
