"""Model registry in the style of timm: architectures, pretrained configs, ``create_model``.

An *architecture* is a builder function registered with :func:`register_model` (e.g.
``tadaconvnextv2_tiny``).  A *variant* is an architecture plus a tag naming one released (or bundled)
checkpoint, ``architecture.tag`` (e.g. ``tadaconvnextv2_tiny.k400_16f_in1k``), described by a
:class:`PretrainedCfg` that carries everything needed to feed the model the way it was tested.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tada.errors import ModelNotFoundError

__all__ = [
    "PretrainedCfg",
    "register_model",
    "register_pretrained",
    "register_arch_inferrer",
    "list_models",
    "list_architectures",
    "get_pretrained_cfg",
    "create_model",
    "build_model",
    "infer_architecture",
    "ModelNotFoundError",
]

LOCAL_DIR_PREFIX = "local-dir:"
HF_HUB_PREFIX = "hf-hub:"


@dataclass
class PretrainedCfg:
    """Everything that travels with one checkpoint: how to build it, feed it and credit it.

    Attributes:
        architecture: registered builder name, e.g. ``"tadaconvnextv2_tiny"``.
        tag: checkpoint tag, e.g. ``"k400_16f_in1k"``; the variant name is ``architecture.tag``.
        num_classes: width of the classifier (or number of class texts for ILA).
        label_set: name of the label list in :mod:`tada.labels` (``kinetics400``, ``ssv2``, ``motion`` ...).
        num_frames: frames the model takes per clip.
        sampling: test-time frame sampling protocol: ``"interval"`` (rate at a target fps),
            ``"segment"`` (TSN-style segment centres) or ``"uniform"`` (ILA's deterministic single view).
        sampling_rate: frame interval for ``"interval"`` sampling, at ``target_fps``.
        target_fps: fps the sampling rate refers to (30 in the official TAdaConv loaders).
        test_scale: short side after resizing, in pixels.
        crop_size: side of the square crop fed to the model.
        mean, std: per-channel normalisation, applied on values in ``[0, pixel_range]``.
        pixel_range: 1.0 when mean/std refer to [0, 1] pixels, 255.0 when they refer to 0..255 (ILA).
        input_layout: ``"BCTHW"`` (TAdaConv family, bundled models) or ``"BTCHW"`` (ILA).
        num_clips, num_crops: the official multi-view test protocol (clips x crops).
        model_kwargs: construction arguments for the builder (e.g. ``num_frames``, ``temp_enhance``).
        gdrive_id: Google Drive file id of the official checkpoint.
        hf_hub_id: optional Hugging Face Hub repo holding converted weights.
        local_dir: optional directory (``config.json`` + ``model.safetensors``) holding the weights,
            relative paths are relative to the repository root (used by the bundled models).
        reported_top1: top-1 accuracy reported by the authors (with ``reported_views``).
        reported_views: the views behind ``reported_top1``, e.g. ``"4x3"``.
        source: where the checkpoint comes from (paper / repository / training command).
        license: licence of the weights, when known.
        notes: free text shown to users (quirks, provenance).
    """

    architecture: str
    tag: str = ""
    num_classes: int = 400
    label_set: str = "kinetics400"
    num_frames: int = 16
    sampling: str = "segment"
    sampling_rate: int | None = None
    target_fps: float | None = None
    test_scale: int = 224
    crop_size: int = 224
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    pixel_range: float = 1.0
    input_layout: str = "BCTHW"
    num_clips: int = 1
    num_crops: int = 1
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    gdrive_id: str | None = None
    hf_hub_id: str | None = None
    local_dir: str | None = None
    reported_top1: float | None = None
    reported_views: str | None = None
    source: str = ""
    license: str | None = None
    notes: str = ""

    @property
    def name(self) -> str:
        """The variant name, ``architecture.tag`` (just the architecture for an untagged config)."""
        return f"{self.architecture}.{self.tag}" if self.tag else self.architecture

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainedCfg:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so older/newer files still load."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for key in ("mean", "std"):
            if key in kwargs and kwargs[key] is not None:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> PretrainedCfg:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


_MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_PRETRAINED: dict[str, dict[str, PretrainedCfg]] = {}  # architecture -> tag -> cfg (insertion ordered)
_ARCH_INFERRERS: list[Callable[[dict[str, torch.Tensor], dict[str, Any] | None], Any]] = []


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator registering an architecture builder under its function name."""
    _MODEL_BUILDERS[fn.__name__] = fn
    _PRETRAINED.setdefault(fn.__name__, {})
    return fn


def register_pretrained(cfg: PretrainedCfg) -> PretrainedCfg:
    """Register one checkpoint (variant) of an architecture."""
    _PRETRAINED.setdefault(cfg.architecture, {})[cfg.tag] = cfg
    return cfg


def register_arch_inferrer(
    fn: Callable[[dict[str, torch.Tensor], dict[str, Any] | None], tuple[str, dict[str, Any]] | None],
) -> Callable:
    """Register ``fn(state_dict, official_cfg) -> (architecture, model_kwargs) | None``.

    Each model family registers one; :func:`infer_architecture` asks them in turn.  This is how
    ``python -m tada convert`` rebuilds a model from an official checkpoint alone.
    """
    _ARCH_INFERRERS.append(fn)
    return fn


def _ensure_models_imported() -> None:
    # Importing the models package registers every architecture (side effect by design, as in timm).
    import tada.models  # noqa: F401


def list_architectures(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell-style pattern."""
    _ensure_models_imported()
    return sorted(n for n in _MODEL_BUILDERS if fnmatch.fnmatch(n, pattern))


def list_models(pattern: str = "*", pretrained: bool = True) -> list[str]:
    """Registered variants (``architecture.tag``) matching a shell-style pattern.

    With ``pretrained=False`` the architecture names are listed instead (timm's default).
    """
    if not pretrained:
        return list_architectures(pattern)
    _ensure_models_imported()
    names = [cfg.name for tags in _PRETRAINED.values() for cfg in tags.values() if cfg.tag]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def _close_matches(name: str) -> str:
    import difflib

    pool = list_models() + list_architectures()
    hits = difflib.get_close_matches(name, pool, n=5, cutoff=0.5)
    return f" Did you mean: {', '.join(hits)}?" if hits else " See tada.list_models()."


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """Resolve a variant name to its config.

    Accepts ``architecture.tag``, an architecture alone (its first registered tag, or a bare config
    when it has none), or ``architecture.<unique tag prefix>``.
    """
    _ensure_models_imported()
    arch, _, tag = name.partition(".")
    if arch not in _MODEL_BUILDERS:
        raise ModelNotFoundError(f"Unknown model '{name}'.{_close_matches(name)}")
    tags = _PRETRAINED.get(arch, {})
    if not tag:
        return next(iter(tags.values())) if tags else PretrainedCfg(architecture=arch)
    if tag in tags:
        return tags[tag]
    prefixed = [t for t in tags if t.startswith(tag)]
    if len(prefixed) == 1:
        return tags[prefixed[0]]
    if prefixed:
        raise ModelNotFoundError(
            f"'{name}' is ambiguous: {', '.join(f'{arch}.{t}' for t in prefixed)}. Give the full name."
        )
    raise ModelNotFoundError(f"Unknown tag '{tag}' for {arch}.{_close_matches(name)}")


def build_model(cfg: PretrainedCfg, **kwargs: Any) -> nn.Module:
    """Instantiate the architecture of ``cfg`` (random weights) and attach the config."""
    _ensure_models_imported()
    if cfg.architecture not in _MODEL_BUILDERS:
        raise ModelNotFoundError(f"Unknown architecture '{cfg.architecture}'.{_close_matches(cfg.architecture)}")
    model_kwargs = {"num_classes": cfg.num_classes, **cfg.model_kwargs, **kwargs}
    model = _MODEL_BUILDERS[cfg.architecture](**model_kwargs)
    if "num_classes" in kwargs and kwargs["num_classes"] != cfg.num_classes:
        cfg = cfg.replace(num_classes=kwargs["num_classes"])
    model.pretrained_cfg = cfg
    return model


def infer_architecture(
    state_dict: dict[str, torch.Tensor], official_cfg: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Ask every model family which architecture (and construction arguments) a state dict is."""
    _ensure_models_imported()
    for fn in _ARCH_INFERRERS:
        found = fn(state_dict, official_cfg)
        if found is not None:
            return found
    sample = ", ".join(list(state_dict)[:5])
    raise ValueError(f"Cannot tell which architecture this checkpoint is (first keys: {sample}).")


def create_model(
    name: str,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Create a model by variant name, timm style, in eval mode.

    Args:
        name: ``architecture``, ``architecture.tag``, ``local-dir:<dir>`` (a converted model folder
            with ``config.json`` + ``model.safetensors``) or ``hf-hub:<org>/<repo>``.
        pretrained: load the variant's released weights (local cache, then the Hub, then the official
            download; fails fast with instructions when offline).
        checkpoint: load weights from this file instead (official ``.pyth``/``.pth`` or ``.safetensors``).
        device: where to put the model.
        **kwargs: construction overrides passed to the builder (e.g. ``num_classes``).
    """
    from tada import checkpoints, hub

    if name.startswith(LOCAL_DIR_PREFIX):
        model = hub.load_model_dir(name[len(LOCAL_DIR_PREFIX) :], **kwargs)
    elif name.startswith(HF_HUB_PREFIX):
        model = hub.load_model_dir(hub.download_model_dir(name[len(HF_HUB_PREFIX) :]), **kwargs)
    else:
        cfg = get_pretrained_cfg(name)
        if pretrained and checkpoint is None:
            hub.fetch_pretrained(cfg)  # resolve (or fail offline) before spending time building a large model
        model = build_model(cfg, **kwargs)
        if checkpoint is not None:
            checkpoints.load_checkpoint(model, checkpoint)
        elif pretrained:
            hub.load_pretrained(model, cfg)
    model.eval()
    if device is not None:
        model.to(device)
    return model
