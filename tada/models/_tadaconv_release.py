"""One row of the official TAdaConv model zoo as config fields (used by the TAdaConv model files).

The 32 released checkpoints are declared in ``default_cfgs`` beside their architectures
(:mod:`tada.models.tada2d`, :mod:`~tada.models.tadaconvnextv2`, :mod:`~tada.models.tadaformer`), one
call of :func:`release` per row of the official model zoo (alibaba-mmai-research/TAdaConv @ 75b7839:
``MODEL_ZOO.md`` and ``projects/tadaconvv2/README.md``, with test settings from the configs), copied
from ``shared/reference/tadaconv/variants.json`` so the package needs nothing beside itself.  Variant
name = ``architecture.tag`` with the tag being the zoo id minus the architecture prefix, e.g.
``tadaconvnextv2_tiny.k400_16f_in1k``.

Test protocol fields follow the official loaders: interval sampling at a rate defined for 30 fps,
or TSN-style segment sampling; short side resized to ``test_scale`` then a ``crop_size`` crop;
views = clips x crops as reported.  K710 checkpoints (TAdaFormer pre-training) have no label list
in the package (the repository does not publish the class order): their label set ``k710`` falls
back to ``class <i>`` names, and their head size (assumed 710) is checked when weights load.
"""

from __future__ import annotations

from typing import Any

from tada.constants import CLIP_MEAN, CLIP_STD, KINETICS_MEAN, KINETICS_STD

__all__ = ["release"]

_REPO = "alibaba-mmai-research/TAdaConv @ 75b7839"
_NO_CFG = "no config for this row in the repository; same architecture as {cfg} with NUM_INPUT_FRAMES={frames}"
_RATE_ASSUMED = "the 32-frame sampling rate is not in the repository: 5 (the 16-frame config value) is assumed"
_K710 = (
    "K710 pre-training checkpoint (for K400 fine-tuning); the package has no K710 class list, so classes are "
    "named 'class <i>'; head size 710 assumed (checked when the weights load); test settings as the K400 config"
)
_LABEL_SETS = {"k400": "kinetics400", "ssv2": "ssv2", "k710": "k710"}


def release(
    dataset: str,
    pretrain: str,
    frames: int,
    classes: int,
    sampling: str,
    rate: int | None,
    views: str | None,
    top1: float | None,
    gdrive: str,
    config: str,
    kind: str = "",
    former: bool = False,
) -> dict[str, Any]:
    """Config fields of one zoo row.

    ``dataset`` decides the label set; ``former`` (TAdaFormer) the test size and statistics: ConvNets
    test at 256/256 with Kinetics mean/std, TAdaFormer at 224/224 with CLIP mean/std.  ``config`` is
    the row's config file relative to ``configs/projects/``; ``kind`` marks rows without their own
    config in the repository: ``"32f"``, ``"nocfg"`` or ``"k710"``.
    """
    config = f"configs/projects/{config}"
    model_kwargs: dict[str, Any] = {"num_frames": frames}
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
    return {
        "family": "tadaconv",
        "num_classes": classes,
        "label_set": _LABEL_SETS[dataset],
        "num_frames": frames,
        "sampling": sampling,
        "sampling_rate": rate,
        "target_fps": 30.0 if sampling == "interval" else None,
        "test_scale": 224 if former else 256,
        "crop_size": 224 if former else 256,
        "mean": CLIP_MEAN if former else KINETICS_MEAN,
        "std": CLIP_STD if former else KINETICS_STD,
        "pixel_range": 1.0,
        "input_layout": "BCTHW",
        "num_clips": clips,
        "num_crops": crops,
        "model_kwargs": model_kwargs,
        "gdrive_id": gdrive,
        "reported_top1": top1,
        "reported_views": views,
        "source": f"{_REPO}, model zoo ({config_text}); pre-training: {pretrain}",
        "notes": "; ".join(notes),
    }
