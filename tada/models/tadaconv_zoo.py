"""The 32 checkpoints released for the TAdaConv family, as registered variants.

One :class:`~tada.registry.PretrainedCfg` per row of the official model zoo (alibaba-mmai-research/
TAdaConv @ 75b7839: ``MODEL_ZOO.md`` and ``projects/tadaconvv2/README.md``, with test settings from
the configs), copied from ``shared/reference/tadaconv/variants.json`` so the package needs nothing
beside itself.  Variant name = ``architecture.tag`` with the tag being the zoo id minus the
architecture prefix, e.g. ``tadaconvnextv2_tiny.k400_16f_in1k``.

Test protocol fields follow the official loaders: interval sampling at a rate defined for 30 fps,
or TSN-style segment sampling; short side resized to ``test_scale`` then a ``crop_size`` crop;
views = clips x crops as reported.  K710 checkpoints (TAdaFormer pre-training) have no label list
in the package (the repository does not publish the class order): their label set ``k710`` falls
back to ``class <i>`` names, and their head size (assumed 710) is checked when weights load.
"""

from __future__ import annotations

from tada.registry import PretrainedCfg, register_pretrained

__all__ = ["VARIANTS", "KINETICS_MEAN", "KINETICS_STD", "CLIP_MEAN", "CLIP_STD"]

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_REPO = "alibaba-mmai-research/TAdaConv @ 75b7839"
_NO_CFG = "no config for this row in the repository; same architecture as {cfg} with NUM_INPUT_FRAMES={frames}"
_RATE_ASSUMED = "the 32-frame sampling rate is not in the repository: 5 (the 16-frame config value) is assumed"
_K710 = (
    "K710 pre-training checkpoint (for K400 fine-tuning); the package has no K710 class list, so classes are "
    "named 'class <i>'; head size 710 assumed (checked when the weights load); test settings as the K400 config"
)

# (architecture, tag, dataset, pretrain, frames, classes, sampling, rate, views, top1, gdrive id, config, note)
# dataset decides label set, scale/crop and mean/std: ConvNets test at 256/256 with Kinetics mean/std,
# TAdaFormer at 224/224 with CLIP mean/std.
_TABLE: list[tuple] = [
    ("tada2d_r50", "k400_8x8", "k400", "IN-1K", 8, 400, "interval", 8, "10x3", 76.7,
     "1YsbTKLoDwxtStAsP5oxUMbIsw85NvY0O", "configs/projects/tada/k400/tada2d_8x8.yaml", ""),
    ("tada2d_r50", "k400_16x5", "k400", "IN-1K", 16, 400, "interval", 5, "10x3", 77.4,
     "1UQDurxakmnDxa5D2tBuTqTH60BVyW3XM", "configs/projects/tada/k400/tada2d_16x5.yaml", ""),
    ("tada2d_r50", "ssv2_8f", "ssv2", "IN-1K", 8, 174, "segment", None, "2x3", 64.2,
     "16y6dDf-hcMmJ2jDCV9tRla8aRJZKJXSk", "configs/projects/tada/ssv2/tada2d_8f.yaml", ""),
    ("tada2d_r50", "ssv2_16f", "ssv2", "IN-1K", 16, 174, "segment", None, "2x3", 65.6,
     "1xwCxuFW6DZ0xpEsp_tFJYQRGuHPJe4uS", "configs/projects/tada/ssv2/tada2d_16f.yaml", ""),
    ("tadaconvnextv2_tiny", "k400_16f_in1k", "k400", "IN1K", 16, 400, "interval", 5, "4x3", 79.6,
     "1_jkIOP8kYeMzgEGyVznDKXNRG2tSEOkV", "configs/projects/tadaconvnextv2/tadaconvnextv2_tiny_k400_16f.yaml", ""),
    ("tadaconvnextv2_tiny", "k400_32f_in1k", "k400", "IN1K", 32, 400, "interval", 5, "4x3", 80.8,
     "1FSpmNgDETQ0WchABBUgpTLG9q3N9xBHN", "configs/projects/tadaconvnextv2/tadaconvnextv2_tiny_k400_16f.yaml", "32f"),
    ("tadaconvnextv2_small", "k400_16f_in1k", "k400", "IN1K", 16, 400, "interval", 5, "4x3", 80.8,
     "12R74tV2-VRRUxrH0Tubki5voRSCbR3F1", "configs/projects/tadaconvnextv2/tadaconvnextv2_small_k400_16f.yaml", ""),
    ("tadaconvnextv2_small", "k400_32f_in1k", "k400", "IN1K", 32, 400, "interval", 5, "4x3", 81.9,
     "15GDqJZSgy5fQ8gHgq3mEru_rWghelzP3", "configs/projects/tadaconvnextv2/tadaconvnextv2_small_k400_16f.yaml", "32f"),
    ("tadaconvnextv2_small", "k400_32f_in21k", "k400", "IN21K", 32, 400, "interval", 5, "4x3", 82.9,
     "1yM-OHpzNOu0180vogZxiMDk9x45SlFFF", "configs/projects/tadaconvnextv2/tadaconvnextv2_small_k400_16f.yaml", "32f"),
    ("tadaconvnextv2_base", "k400_16f_in1k", "k400", "IN1K", 16, 400, "interval", 5, "4x3", 81.4,
     "1rtapp_GzQHe6CBrhcNfe4wuBAS106uIk", "configs/projects/tadaconvnextv2/tadaconvnextv2_base_k400_16f.yaml", ""),
    ("tadaconvnextv2_base", "k400_32f_in1k", "k400", "IN1K", 32, 400, "interval", 5, "4x3", 82.3,
     "1_VcPSEa4xd1npk1HMVihmXwzRsjk5xGd", "configs/projects/tadaconvnextv2/tadaconvnextv2_base_k400_16f.yaml", "32f"),
    ("tadaconvnextv2_base", "k400_32f_in21k", "k400", "IN21K", 32, 400, "interval", 5, "4x3", 83.7,
     "1yyCKDa144iL1TsibNDFHaNW0dap2Xjpz", "configs/projects/tadaconvnextv2/tadaconvnextv2_base_k400_16f.yaml", "32f"),
    ("tadaconvnextv2_tiny", "ssv2_16f_in1k", "ssv2", "IN1K+K400", 16, 174, "segment", None, "2x3", 67.2,
     "1IZaJ4EDrniK4ZxVYnl_2Y6qpx1F6UjqY", "configs/projects/tadaconvnextv2/tadaconvnextv2_tiny_ssv2_16f.yaml", ""),
    ("tadaconvnextv2_tiny", "ssv2_32f_in1k", "ssv2", "IN1K+K400", 32, 174, "segment", None, "2x3", 69.8,
     "1WDJ5iMyR9VTkfeIoZwICtiJ8BSQ8u4gp", "configs/projects/tadaconvnextv2/tadaconvnextv2_tiny_ssv2_16f.yaml", "32f"),
    ("tadaconvnextv2_small", "ssv2_16f_in1k", "ssv2", "IN1K+K400", 16, 174, "segment", None, "2x3", 68.4,
     "1X94evPniWrjJfs38-SKPWehVZtYD3Xu7", "configs/projects/tadaconvnextv2/tadaconvnextv2_small_ssv2_16f.yaml", ""),
    ("tadaconvnextv2_small", "ssv2_32f_in1k", "ssv2", "IN1K+K400", 32, 174, "segment", None, "2x3", 70.0,
     "17TP1v1el5hNBoyNPmTa5Zi_6ZrVJ7oi5", "configs/projects/tadaconvnextv2/tadaconvnextv2_small_ssv2_16f.yaml", "32f"),
    ("tadaconvnextv2_small", "ssv2_32f_in21k", "ssv2", "IN21K+K400", 32, 174, "segment", None, "2x3", 70.6,
     "1plKqnNGnDD5JpPZ_c8K8TZKTvynbrEg8", "configs/projects/tadaconvnextv2/tadaconvnextv2_small_ssv2_16f.yaml", "32f"),
    ("tadaconvnextv2_base", "ssv2_32f_in21k", "ssv2", "IN21K+K400", 32, 174, "segment", None, "2x3", 71.1,
     "1IIVxJlstPIVA9xunThZrp9RztBzsPyd6", "configs/projects/tadaconvnextv2/tadaconvnextv2_base_ssv2_16f.yaml", "32f"),
    # TAdaFormer: K400 rows first so that the bare architecture name resolves to a K400 classifier.
    ("tadaformer_b16", "k400_16f_clip", "k400", "CLIP", 16, 400, "segment", None, "4x3", 84.5,
     "1E7IE762YLJnfeiqtjv0jBb91_dZhNK0Q", "configs/projects/tadaformer/tadaformer_b16_k400_16f.yaml", ""),
    ("tadaformer_l14", "k400_16f_clip", "k400", "CLIP", 16, 400, "segment", None, "4x3", 87.6,
     "1chSLHo0nbFNObsLlCRSsAJE2vbYwIaYJ", "configs/projects/tadaformer/tadaformer_l14_k400_16f.yaml", ""),
    ("tadaformer_b16", "k400_16f_clip_k710", "k400", "CLIP+K710", 16, 400, "segment", None, "4x3", 86.6,
     "1pAhjXycxdT_eOH5kO-5t7y8o5MjtlQdZ", "configs/projects/tadaformer/tadaformer_b16_k400_16f.yaml", "nocfg"),
    ("tadaformer_l14", "k400_16f_clip_k710", "k400", "CLIP+K710", 16, 400, "segment", None, "4x3", 88.9,
     "1qx3M33hsdoBcPsXihOdeViqI0VHUXnRf", "configs/projects/tadaformer/tadaformer_l14_k400_16f.yaml", "nocfg"),
    ("tadaformer_l14", "k400_32f_clip_k710", "k400", "CLIP+K710", 32, 400, "segment", None, "4x3", 89.5,
     "1T99YSQEe8yVUl3b03r_Wd04Qm36lN5Us", "configs/projects/tadaformer/tadaformer_l14_k400_16f.yaml", "nocfg"),
    ("tadaformer_l14", "k400_64f_clip_k710", "k400", "CLIP+K710", 64, 400, "segment", None, "4x3", 89.9,
     "1DBTfkCa0pHXqAm51gZSmmOVdGnBYacsM", "configs/projects/tadaformer/tadaformer_l14_k400_16f.yaml", "nocfg"),
    ("tadaformer_b16", "ssv2_16f", "ssv2", "CLIP", 16, 174, "segment", None, "2x3", 70.4,
     "1D-pKrxdrP2IcGXnd_e47ryci7OYCt8BK", "configs/projects/tadaformer/tadaformer_b16_ssv2_16f.yaml", ""),
    ("tadaformer_b16", "ssv2_32f", "ssv2", "CLIP", 32, 174, "segment", None, "2x3", 71.3,
     "1uY9tt0rcP_bQDs36oBNWPaqzxqibBQFt", "configs/projects/tadaformer/tadaformer_b16_ssv2_16f.yaml", "nocfg"),
    ("tadaformer_l14", "ssv2_16f", "ssv2", "CLIP", 16, 174, "segment", None, "2x3", 72.4,
     "1jXzh9_WFbrHAkrzijnNs0vIJHWTQNsbA", "configs/projects/tadaformer/tadaformer_l14_ssv2_16f.yaml", ""),
    ("tadaformer_l14", "ssv2_32f", "ssv2", "CLIP", 32, 174, "segment", None, "2x3", 73.6,
     "1hj8O3j_lf6VVp93nfy5z7zRGQ_W7Pou_", "configs/projects/tadaformer/tadaformer_l14_ssv2_16f.yaml", "nocfg"),
    ("tadaformer_b16", "k710_16f", "k710", "CLIP", 16, 710, "segment", None, None, None,
     "1hKKdhg6gfxCxV8C6w9vxV6RNSsxTHqZO", "configs/projects/tadaformer/tadaformer_b16_k400_16f.yaml", "k710"),
    ("tadaformer_l14", "k710_16f", "k710", "CLIP", 16, 710, "segment", None, None, None,
     "1GQlSTqvsQkRB7DexiFAl-MgK3OkqHm0C", "configs/projects/tadaformer/tadaformer_l14_k400_16f.yaml", "k710"),
    ("tadaformer_l14", "k710_32f", "k710", "CLIP", 32, 710, "segment", None, None, None,
     "1uNfkujaUIQo6RkjbrPKdTg-HHIBWVvbD", "configs/projects/tadaformer/tadaformer_l14_k400_16f.yaml", "k710"),
    ("tadaformer_l14", "k710_64f", "k710", "CLIP", 64, 710, "segment", None, None, None,
     "1NUbnnZ1EtQUfJ0kiLncIihQbnvbfu7NK", "configs/projects/tadaformer/tadaformer_l14_k400_16f.yaml", "k710"),
]  # fmt: skip

_LABEL_SETS = {"k400": "kinetics400", "ssv2": "ssv2", "k710": "k710"}


def _make_cfg(row: tuple) -> PretrainedCfg:
    arch, tag, dataset, pretrain, frames, classes, sampling, rate, views, top1, gdrive, config, kind = row
    former = arch.startswith("tadaformer")
    model_kwargs: dict = {"num_frames": frames}
    if former and dataset == "ssv2":
        model_kwargs.update(temp_enhance=True, double_tada=True)
    clips, crops = (int(v) for v in views.split("x")) if views else (1, 1)
    notes = []
    if kind in ("32f", "nocfg", "k710"):
        notes.append(_NO_CFG.format(cfg=config, frames=frames))
    if kind == "32f" and sampling == "interval":
        notes.append(_RATE_ASSUMED)
    if kind == "k710":
        notes.append(_K710)
    config_text = f"config {config}" if kind == "" else "no config in the repository"
    return PretrainedCfg(
        architecture=arch,
        tag=tag,
        num_classes=classes,
        label_set=_LABEL_SETS[dataset],
        num_frames=frames,
        sampling=sampling,
        sampling_rate=rate,
        target_fps=30.0 if sampling == "interval" else None,
        test_scale=224 if former else 256,
        crop_size=224 if former else 256,
        mean=CLIP_MEAN if former else KINETICS_MEAN,
        std=CLIP_STD if former else KINETICS_STD,
        pixel_range=1.0,
        input_layout="BCTHW",
        num_clips=clips,
        num_crops=crops,
        model_kwargs=model_kwargs,
        gdrive_id=gdrive,
        reported_top1=top1,
        reported_views=views,
        source=f"{_REPO}, model zoo ({config_text}); pre-training: {pretrain}",
        notes="; ".join(notes),
    )


VARIANTS: list[PretrainedCfg] = [register_pretrained(_make_cfg(row)) for row in _TABLE]
