"""Official checkpoints -> model folders (``python -m tada convert``).

The architecture and its construction arguments come from the checkpoint: first its own training
config (an official ``.pyth`` carries it), with the weight shapes as a check, then the shapes where
the config says nothing.  A registered ``variant`` only attaches label set, preprocessing and
provenance, and must agree with the checkpoint.  The folder is written by
:func:`tada._model_folder.write_model_folder` with the card of :mod:`tada._model_card`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

import tada
import tada.models  # noqa: F401  (every architecture and its inferrer registered)
from tada._builder import build_model_with_cfg
from tada._model_card import model_card
from tada._model_folder import folder_config, write_model_folder
from tada._overrides import check_overrides, parse_overrides
from tada._pretrained import PretrainedCfg
from tada._registry import get_pretrained_cfg, infer_architecture
from tada.checkpoints import CheckpointError, load_state_dict_strict, read_checkpoint
from tada.constants import IMAGENET_MEAN_255, IMAGENET_STD_255
from tada.errors import ConversionError, quote

__all__ = ["convert_checkpoint", "cfg_from_official", "parse_overrides", "ConversionError"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _get(cfg: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(cfg, dict) or key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


_LABEL_SETS = {400: "kinetics400", 174: "ssv2"}


def cfg_from_official(
    architecture: str, num_classes: int, model_kwargs: dict[str, Any], ckpt_format: str, official: dict | None
) -> PretrainedCfg:
    """A config for a checkpoint converted without ``--variant``: what the official training config says."""
    cfg = PretrainedCfg(
        architecture=architecture,
        num_classes=num_classes,
        label_set=_LABEL_SETS.get(num_classes, ""),
        model_kwargs=model_kwargs,
        notes="Converted without --variant: preprocessing read from the checkpoint's training config.",
    )
    if ckpt_format == "ila-pth":
        size = _get(official, "DATA", "INPUT_SIZE") or 224
        return cfg.replace(
            num_frames=int(_get(official, "DATA", "NUM_FRAMES") or model_kwargs.get("num_frames") or 8),
            sampling="uniform",
            test_scale=int(256 / 224 * size),
            crop_size=int(size),
            mean=IMAGENET_MEAN_255,
            std=IMAGENET_STD_255,
            pixel_range=255.0,
            input_layout="BTCHW",
            family="ila",
            source="ILA (Francis-Rings/ILA) checkpoint",
        )
    data = _get(official, "DATA") or {}
    changes: dict[str, Any] = {
        "input_layout": "BCTHW",
        "source": "TAdaConv (alibaba-mmai-research/TAdaConv) checkpoint",
    }
    if data.get("NUM_INPUT_FRAMES"):
        changes["num_frames"] = int(data["NUM_INPUT_FRAMES"])
    mode = data.get("SAMPLING_MODE")
    if mode == "interval_based":
        changes.update(sampling="interval", sampling_rate=data.get("SAMPLING_RATE"), target_fps=data.get("TARGET_FPS"))
    elif mode == "segment_based":
        changes["sampling"] = "segment"
    for field_name, key in (("test_scale", "TEST_SCALE"), ("crop_size", "TEST_CROP_SIZE")):
        if data.get(key):
            changes[field_name] = int(data[key])
    for field_name, key in (("mean", "MEAN"), ("std", "STD")):
        if isinstance(data.get(key), list) and len(data[key]) == 3:
            changes[field_name] = tuple(float(v) for v in data[key])
    return cfg.replace(**changes)


def _plain(value: Any) -> Any:
    """Tuples as lists (what JSON gives back), so (16, 32) and [16, 32] compare equal."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_is_checkpoint_file(path: Path) -> None:
    """Refuse files that are not torch.save archives before torch does (its message suggests unsafe loading)."""
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}")
    if path.suffix == ".safetensors":
        return
    with path.open("rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # zip (torch >= 1.6) or a legacy pickle
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint (neither a torch.save archive nor a pickle)")


def _official_num_classes(official: dict[str, Any] | None) -> int | None:
    """Class count recorded in an official training config (ILA's K400 text head has no weight that says it)."""
    value = _get(official, "DATA", "NUM_CLASSES") or _get(official, "VIDEO", "HEAD", "NUM_CLASSES")
    return int(value) if isinstance(value, (int, float, str)) and str(value).isdigit() else None


def _check_variant_shapes(
    src_name: str, vcfg: PretrainedCfg, overrides: dict[str, Any], state_dict: dict[str, torch.Tensor]
) -> None:
    """Fail when the variant's own architecture (on the meta device: no memory) has other keys/shapes.

    This catches, e.g., a reduced or differently sized checkpoint converted with a full-size variant's name.
    """
    try:
        with torch.device("meta"):
            reference = build_model_with_cfg(vcfg.replace(model_kwargs={**vcfg.model_kwargs, **overrides}))
    except Exception:  # noqa: BLE001 - a builder that cannot run on meta: the strict load still checks
        return
    own = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [(k, tuple(v.shape), own[k]) for k, v in state_dict.items() if k in own and tuple(v.shape) != own[k]]
    parts = []
    if mismatched:
        shown = ", ".join(f"{k} {list(a)} vs {list(b)}" for k, a, b in mismatched[:3])
        parts.append(f"{len(mismatched)} shapes differ (checkpoint vs variant), e.g. {shown}")
    for what, keys in (("only in the variant", missing), ("only in the checkpoint", unexpected)):
        if keys:
            parts.append(f"{len(keys)} keys {what}, e.g. {', '.join(keys[:3])}")
    if parts:
        raise ConversionError(f"{src_name} does not match variant {vcfg.name}: {'; '.join(parts)}")


def convert_checkpoint(
    src: str | Path,
    out_dir: str | Path,
    variant: str | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
) -> Path:
    """Convert an official checkpoint (TAdaConv ``.pyth``, ILA ``.pth``) into a model folder.

    The architecture is inferred from the checkpoint itself; ``variant`` only attaches a registered
    variant's label set, preprocessing and provenance (and must agree with the checkpoint);
    ``overrides`` set construction parameters the checkpoint does not record.

    Returns:
        ``out_dir``.

    Raises:
        FileNotFoundError, CheckpointError: ``src`` is missing or not a checkpoint.
        ConversionError: the variant disagrees with the checkpoint, or an override is not a parameter.
        CheckpointMismatchError: the built model's keys/shapes differ from the checkpoint (named).
    """
    src, out_dir = Path(src).expanduser(), Path(out_dir).expanduser()
    overrides = parse_overrides(overrides)
    _check_is_checkpoint_file(src)
    ckpt = read_checkpoint(src)
    try:
        architecture, inferred = infer_architecture(ckpt.state_dict, ckpt.config)
    except ValueError as exc:
        raise ConversionError(f"{src.name}: {exc}") from exc
    inferred = dict(inferred)
    check_overrides(architecture, overrides)

    if variant is not None:
        vcfg = get_pretrained_cfg(variant)
        if not vcfg.tag:
            raise ConversionError(
                f"{quote(variant)} names an architecture, not a released variant; see `python -m tada list`"
            )
        if vcfg.architecture != architecture:
            raise ConversionError(
                f"{src.name} holds a {architecture} model, but variant {vcfg.name} is a {vcfg.architecture}"
            )
        kwargs = dict(vcfg.model_kwargs)
        conflicts = [
            f"{k}={quote(inferred[k])} in the checkpoint vs {quote(kwargs[k])} in {vcfg.name}"
            for k in inferred
            if k in kwargs and k not in overrides and _plain(kwargs[k]) != _plain(inferred[k]) and k != "num_classes"
        ]
        if conflicts:
            raise ConversionError(f"{src.name} does not match variant {vcfg.name}: {'; '.join(conflicts)}")
        kwargs.update(inferred)
        kwargs.update(overrides)
        num_classes = int(kwargs.pop("num_classes", vcfg.num_classes))
        if num_classes != vcfg.num_classes:
            raise ConversionError(
                f"{src.name} has {num_classes} classes, but variant {vcfg.name} has {vcfg.num_classes} "
                f"({vcfg.label_set})"
            )
        _check_variant_shapes(src.name, vcfg, overrides, ckpt.state_dict)
        cfg = vcfg.replace(model_kwargs=kwargs, local_dir=None)
    else:
        kwargs = {**inferred, **overrides}
        num_classes = int(
            kwargs.pop("num_classes", 0) or _official_num_classes(ckpt.config) or PretrainedCfg("").num_classes
        )
        cfg = cfg_from_official(architecture, num_classes, kwargs, ckpt.format, ckpt.config)

    try:
        model = build_model_with_cfg(cfg)
    except (TypeError, ValueError) as exc:  # a refused argument, or one out of tada.limits' bounds
        raise ConversionError(
            f"cannot build {architecture} from {src.name}: {str(exc)[:300]} (parameters the checkpoint does not record "
            "are set with --override KEY=VALUE)"
        ) from exc
    load_state_dict_strict(model, ckpt.state_dict)
    cfg = model.pretrained_cfg  # with the family filled in
    sha = _sha256(src)
    provenance = {
        "source_file": src.name,
        "source_sha256": sha,
        "source_format": ckpt.format,
        "source_metadata": json.loads(json.dumps(ckpt.metadata, default=str)),
        "overrides": overrides,
        "converted_with": f"tada {tada.__version__}",
    }
    metadata = {"architecture": architecture, "source_file": src.name, "source_sha256": sha}
    if cfg.tag:
        metadata["variant"] = cfg.name
    return write_model_folder(
        out_dir,
        model.state_dict(),
        folder_config(cfg, provenance=provenance),
        model_card(cfg, provenance=provenance),
        metadata=metadata,
        official_config=ckpt.config,
    )
