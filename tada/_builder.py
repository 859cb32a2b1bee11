"""Building a registered architecture and attaching its pretrained config: the one place that does it.

Before a model is built its construction arguments are checked against :mod:`tada.limits` (bounds per
argument, then the size of the model built on the ``meta`` device, which allocates nothing), so a
``config.json``, an override or an inferred checkpoint shape cannot make one call allocate gigabytes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tada import limits
from tada._pretrained import PretrainedCfg
from tada._registry import _model_pretrained_cfgs, model_entrypoint
from tada.errors import ModelConfigError

__all__ = ["build_model_with_cfg", "attach_pretrained_cfg", "check_build_args"]

log = logging.getLogger(__name__)

# Construction arguments already measured on meta (json key -> bytes); a few, least recently used dropped.
_measured: OrderedDict[str, int] = OrderedDict()
_measured_lock = threading.Lock()


def attach_pretrained_cfg(model: nn.Module, cfg: PretrainedCfg) -> nn.Module:
    """Set ``model.pretrained_cfg``; a config that does not name its family takes the model's own."""
    if cfg.family is None:
        own = getattr(model, "default_pretrained_cfg", None)
        cfg = cfg.replace(family=own().family if callable(own) else "tadaconv")
    model.pretrained_cfg = cfg
    return model


def _key(architecture: str, args: dict[str, Any]) -> str:
    return json.dumps([architecture, args], sort_keys=True, default=repr)


def _is_registered(architecture: str, key: str) -> bool:
    """Whether these are exactly the arguments of a registered variant (code, not user input)."""
    for cfg in _model_pretrained_cfgs.get(architecture, {}).values():
        if _key(architecture, {"num_classes": cfg.num_classes, **cfg.model_kwargs}) == key:
            return True
    return False


def _on_meta() -> bool:
    return torch.empty(0).device.type == "meta"


def check_build_args(architecture: str, builder: Callable[..., nn.Module], args: dict[str, Any]) -> None:
    """Refuse arguments out of :mod:`tada.limits` bounds, then a model whose weights would exceed
    ``limits.MAX_MODEL_BYTES`` (measured by building it on ``meta``; registered variants are trusted).

    Raises:
        tada.errors.ModelConfigError: the message names the value, the bound and what to change.
    """
    limits.check_model_args(architecture, args)
    key = _key(architecture, args)  # JSON writes tuples as lists, as config.json gives them back
    if _on_meta() or _is_registered(architecture, key):
        return
    with _measured_lock:
        size = _measured.get(key)
    if size is None:
        try:
            with torch.device("meta"):
                size = limits.model_bytes(builder(**args))
        except Exception as exc:  # noqa: BLE001 - a builder that cannot run on meta: the real build decides
            log.debug("cannot measure %s on meta (%s); bounds checked only", architecture, exc)
            return
        with _measured_lock:
            _measured[key] = size
            while len(_measured) > 64:
                _measured.popitem(last=False)
    limits.check_model_bytes(architecture, size)


def build_model_with_cfg(cfg: PretrainedCfg, **kwargs: Any) -> nn.Module:
    """Instantiate the architecture of ``cfg`` (random weights) and attach ``cfg``.

    Construction arguments: the config's class count and ``model_kwargs``, then ``kwargs`` (overrides;
    a different ``num_classes`` is carried into the attached config).  They are checked first
    (:func:`check_build_args`).

    Raises:
        tada.errors.ModelConfigError: an argument out of bounds, a model above the size cap, or arguments
            the builder refuses (its ``TypeError``/``ValueError``, message kept).
    """
    builder = model_entrypoint(cfg.architecture)
    args = {"num_classes": cfg.num_classes, **cfg.model_kwargs, **kwargs}
    check_build_args(cfg.architecture, builder, args)
    try:
        model = builder(**args)
    except (TypeError, ValueError) as exc:  # an argument the builder does not take, or a value it refuses
        if isinstance(exc, ModelConfigError):
            raise
        raise ModelConfigError(f"cannot build {cfg.architecture} with these arguments: {str(exc)[:300]}") from exc
    if _on_meta():  # built on meta by the caller (a shape check): its size is known for free
        limits.check_model_bytes(cfg.architecture, limits.model_bytes(model))
    if "num_classes" in kwargs and kwargs["num_classes"] != cfg.num_classes:
        cfg = cfg.replace(num_classes=kwargs["num_classes"])
    return attach_pretrained_cfg(model, cfg)
