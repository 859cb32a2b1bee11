"""Building a registered architecture and attaching its pretrained config: the one place that does it."""

from __future__ import annotations

from typing import Any

from torch import nn

from tada._pretrained import PretrainedCfg
from tada._registry import model_entrypoint

__all__ = ["build_model_with_cfg", "attach_pretrained_cfg"]


def attach_pretrained_cfg(model: nn.Module, cfg: PretrainedCfg) -> nn.Module:
    """Set ``model.pretrained_cfg``; a config that does not name its family takes the model's own."""
    if cfg.family is None:
        own = getattr(model, "default_pretrained_cfg", None)
        cfg = cfg.replace(family=own().family if callable(own) else "tadaconv")
    model.pretrained_cfg = cfg
    return model


def build_model_with_cfg(cfg: PretrainedCfg, **kwargs: Any) -> nn.Module:
    """Instantiate the architecture of ``cfg`` (random weights) and attach ``cfg``.

    Construction arguments: the config's class count and ``model_kwargs``, then ``kwargs`` (overrides;
    a different ``num_classes`` is carried into the attached config).
    """
    builder = model_entrypoint(cfg.architecture)
    model = builder(**{"num_classes": cfg.num_classes, **cfg.model_kwargs, **kwargs})
    if "num_classes" in kwargs and kwargs["num_classes"] != cfg.num_classes:
        cfg = cfg.replace(num_classes=kwargs["num_classes"])
    return attach_pretrained_cfg(model, cfg)
