"""Facts used in several places, stated once: normalisation statistics and the default model."""

from __future__ import annotations

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN_255",
    "IMAGENET_STD_255",
    "MOTION_MEAN",
    "MOTION_STD",
    "DEFAULT_MODEL",
]

#: TAdaConv ConvNets (TAda2D, TAdaConvNeXtV2): pixels in [0, 1].
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
#: TAdaFormer (CLIP initialised): pixels in [0, 1].
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: ILA's official pipeline normalises RGB 0..255 with ImageNet statistics (not CLIP's).
IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)
#: The bundled motion models: pixels in [0, 1], Kinetics statistics (the ILA one takes them x 255).
MOTION_MEAN = KINETICS_MEAN
MOTION_STD = KINETICS_STD

#: The model the app and ``predict`` open with: bundled, runs offline in well under a second.
DEFAULT_MODEL = "tadaconvnextv2_motion.tiny_8f"
