"""Released variants and full-size architectures (built on the meta device) against the reference data."""

from __future__ import annotations

import json

import pytest
import torch

import tada
from tada._builder import build_model_with_cfg as build_model
from tada.errors import ModelNotFoundError
from tada.labels import get_labels
from tada.models import tada2d, tadaconvnextv2, tadaformer

# The 32 released variants, as declared beside their architectures.
VARIANTS = [cfg for m in (tada2d, tadaconvnextv2, tadaformer) for cfg in m.default_cfgs.values()]

ARCHS = ("tada2d_r50", "tadaconvnextv2_tiny", "tadaconvnextv2_small", "tadaconvnextv2_base", "tadaformer_b16",
         "tadaformer_l14")  # fmt: skip
MANIFESTS = {
    "tada2d_r50": ("tada2d_r50", {}),
    "tadaconvnextv2_tiny": ("tadaconvnextv2_tiny", {}),
    "tadaconvnextv2_small": ("tadaconvnextv2_small", {}),
    "tadaconvnextv2_base": ("tadaconvnextv2_base", {}),
    "tadaformer_b16": ("tadaformer_b16", {}),
    "tadaformer_l14": ("tadaformer_l14", {}),
    "tadaformer_b16_ssv2": ("tadaformer_b16", {"temp_enhance": True, "double_tada": True}),
    "tadaformer_l14_ssv2": ("tadaformer_l14", {"temp_enhance": True, "double_tada": True}),
}


@pytest.fixture(scope="module")
def tadaconv_ref(reference_dir):
    return reference_dir / "tadaconv"


@pytest.fixture(scope="module")
def variants_json(tadaconv_ref):
    return json.loads((tadaconv_ref / "variants.json").read_text())["variants"]


def _shapes(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("manifest", list(MANIFESTS))
def test_full_size_model_matches_manifest(tadaconv_ref, manifest):
    expected = json.loads((tadaconv_ref / "manifests" / f"{manifest}.json").read_text())
    arch, kwargs = MANIFESTS[manifest]
    with torch.device("meta"):
        model = tada.create_model(arch, num_classes=expected["head.out.weight"][0], **kwargs)
    assert _shapes(model) == list(expected.items())  # key for key, shape for shape, in state-dict order


def test_every_released_variant_is_registered(variants_json):
    registered = {cfg.name: cfg for cfg in VARIANTS}
    assert len(variants_json) == 32 and len(registered) == 32
    # The bundled motion models (tada/models/motion_zoo.py) share the "tada" prefix; they are not releases.
    released = [n for n in tada.list_models("tada*") if "_motion" not in n]
    assert sorted(registered) == released
    for row in variants_json:
        arch = next(a for a in ARCHS if row["id"].startswith(a + "_"))
        cfg = tada.get_pretrained_cfg(f"{arch}.{row['id'][len(arch) + 1 :]}")
        assert cfg == registered[cfg.name] and cfg is not registered[cfg.name]  # a copy, never the registered one
        assert cfg.gdrive_id == row["gdrive_file_id"]
        assert cfg.num_frames == row["num_frames"] == cfg.model_kwargs["num_frames"]
        assert cfg.reported_top1 == row["reported_top1"]
        assert cfg.reported_views == row["reported_views_clips_x_crops"]
        if cfg.reported_views:
            assert f"{cfg.num_clips}x{cfg.num_crops}" == cfg.reported_views
        assert (cfg.test_scale, cfg.crop_size) == (row["test_scale_short_side"], row["test_crop_size"])
        assert list(cfg.mean) == row["mean"] and list(cfg.std) == row["std"]
        mode = row["sampling"]["mode"]
        assert cfg.sampling == {"interval_based": "interval", "segment_based": "segment"}[mode]
        if isinstance(row["sampling"].get("sampling_rate"), int):
            assert cfg.sampling_rate == row["sampling"]["sampling_rate"]
            assert cfg.target_fps == row["sampling"]["target_fps"]
        if cfg.sampling == "interval":
            assert cfg.sampling_rate and cfg.target_fps == 30
        if isinstance(row["num_classes"], int):
            assert cfg.num_classes == row["num_classes"]
        assert cfg.label_set == {"k400": "kinetics400", "ssv2": "ssv2", "k710": "k710"}[row["dataset"]]
        if arch.startswith("tadaformer"):
            assert cfg.model_kwargs.get("temp_enhance", False) == row["arch"]["temp_enhance"]
            assert cfg.model_kwargs.get("double_tada", False) == row["arch"]["double_tada"]
        assert cfg.input_layout == "BCTHW" and cfg.pixel_range == 1.0 and "TAdaConv" in cfg.source


def test_variants_build_with_manifest_shapes(tadaconv_ref):
    """Each of the 32 configs builds (meta device) exactly the manifest's weights, head aside."""
    manifests = {name: json.loads((tadaconv_ref / "manifests" / f"{name}.json").read_text()) for name in MANIFESTS}
    for cfg in VARIANTS:
        ssv2_former = cfg.architecture.startswith("tadaformer") and cfg.label_set == "ssv2"
        expected = dict(manifests[cfg.architecture + ("_ssv2" if ssv2_former else "")])
        width = expected["head.out.weight"][1]
        expected.update({"head.out.weight": [cfg.num_classes, width], "head.out.bias": [cfg.num_classes]})
        with torch.device("meta"):
            model = build_model(cfg)
        assert _shapes(model) == list(expected.items()), cfg.name
        assert model.pretrained_cfg is cfg
        if cfg.architecture.startswith("tadaformer"):
            assert model.num_frames == cfg.num_frames  # baked in, as the official blocks


def test_name_resolution():
    assert tada.get_pretrained_cfg("tadaconvnextv2_tiny.k400_16f").name == "tadaconvnextv2_tiny.k400_16f_in1k"
    assert tada.get_pretrained_cfg("tadaformer_b16").name == "tadaformer_b16.k400_16f_clip"
    assert tada.get_pretrained_cfg("tada2d_r50").name == "tada2d_r50.k400_8x8"
    with pytest.raises(ModelNotFoundError, match="ambiguous"):
        tada.get_pretrained_cfg("tadaformer_l14.k400")
    assert {a for a in tada.list_architectures("tada*") if not a.endswith("_motion")} == set(ARCHS)


def test_label_sets():
    for cfg in VARIANTS:
        if cfg.label_set in ("kinetics400", "ssv2"):
            assert len(get_labels(cfg.label_set)) == cfg.num_classes
    k710 = tada.get_pretrained_cfg("tadaformer_b16.k710_16f")
    with torch.device("meta"):
        model = build_model(k710)
    assert model.labels[:2] == ["class 0", "class 1"] and len(model.labels) == 710
    with torch.device("meta"):
        ssv2 = build_model(tada.get_pretrained_cfg("tadaconvnextv2_tiny.ssv2_16f_in1k"))
    assert ssv2.labels[0] == get_labels("ssv2")[0]


def test_temporal_positions():
    with torch.device("meta"):
        convnext = tada.create_model("tadaconvnextv2_tiny")
        former = tada.create_model("tadaformer_b16")
        tada2d = tada.create_model("tada2d_r50")
    assert convnext.temporal_positions(16)[:2] == [[0, 1], [1, 2, 3]]
    assert len(former.temporal_positions(16)) == 8 and former.temporal_positions(16)[-1] == [13, 14, 15]
    assert tada2d.temporal_positions(8) == [[t] for t in range(8)]
