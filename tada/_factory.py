"""``create_model`` and friends (timm's ``_factory``, open_clip's model-plus-preprocessing).

The one module of the model layer that imports the models (registering every one of them), so
everything asked through it (``tada.list_models``, ``tada.get_pretrained_cfg`` ...) sees them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

import tada.models  # noqa: F401  (registers every architecture and its variants)
from tada import hub
from tada._builder import build_model_with_cfg
from tada._pretrained import PretrainedCfg
from tada._registry import get_pretrained_cfg, infer_architecture, list_architectures, list_models
from tada.checkpoints import load_checkpoint, load_state_dict_strict

__all__ = [
    "LOCAL_DIR_PREFIX",
    "HF_HUB_PREFIX",
    "create_model",
    "create_model_and_transforms",
    "create_transform",
    "get_pretrained_cfg",
    "infer_architecture",
    "list_architectures",
    "list_models",
    "load_model_dir",
]

LOCAL_DIR_PREFIX = "local-dir:"
HF_HUB_PREFIX = "hf-hub:"


def load_model_dir(path: str | Path, **kwargs: Any) -> nn.Module:
    """Build the model described by a model folder's ``config.json`` and load its weights strictly.

    ``kwargs`` are construction overrides for the builder; one that changes a weight shape makes the
    strict load fail and name the keys.
    """
    path = Path(path).expanduser()
    cfg = hub.read_model_cfg(path)
    model = build_model_with_cfg(cfg, **kwargs)
    load_state_dict_strict(model, hub.read_weights(path))
    return model.eval()


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
    if name.startswith(LOCAL_DIR_PREFIX):
        model = load_model_dir(name[len(LOCAL_DIR_PREFIX) :], **kwargs)
    elif name.startswith(HF_HUB_PREFIX):
        model = load_model_dir(hub.download_model_dir(name[len(HF_HUB_PREFIX) :]), **kwargs)
    else:
        cfg = get_pretrained_cfg(name)
        if pretrained and checkpoint is None:
            hub.fetch_pretrained(cfg)  # resolve (or fail offline) before spending time building a large model
        model = build_model_with_cfg(cfg, **kwargs)
        if checkpoint is not None:
            load_checkpoint(model, checkpoint)
        elif pretrained:
            hub.load_pretrained(model, cfg)
    model.eval()
    if device is not None:
        model.to(device)
    return model


def create_transform(model_or_cfg: nn.Module | PretrainedCfg, views: str = "single"):
    """The preprocessing that matches a model (open_clip style): uint8 frames -> model tensor.

    ``views="official"`` gives the official multi-view test protocol (clips x crops).
    """
    from tada.video import VideoTransform

    cfg = getattr(model_or_cfg, "pretrained_cfg", model_or_cfg)
    return VideoTransform(cfg, views=views)


def create_model_and_transforms(name: str, pretrained: bool = False, views: str = "single", **kwargs: Any):
    """``(model, transform)`` travelling together, like ``open_clip.create_model_and_transforms``."""
    model = create_model(name, pretrained=pretrained, **kwargs)
    return model, create_transform(model, views=views)
