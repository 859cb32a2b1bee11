"""Names of models, timm style: architectures, their variants and the checkpoint inferrers.

A leaf: it imports nothing of the models (they import it to register themselves).  Query it through
``tada.list_models`` / ``tada.get_pretrained_cfg`` (:mod:`tada._factory`), which make sure every
model file has been imported first.

An *architecture* is a builder function registered with :func:`register_model` (e.g.
``tadaconvnextv2_tiny``).  A *variant* is an architecture plus a tag naming one released (or bundled)
checkpoint, ``architecture.tag`` (e.g. ``tadaconvnextv2_tiny.k400_16f_in1k``); its
:class:`~tada._pretrained.PretrainedCfg` is declared beside the builder in the model file's
``default_cfgs`` dict, which :func:`register_model` reads (as timm does).
"""

from __future__ import annotations

import difflib
import fnmatch
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tada._pretrained import PretrainedCfg
from tada.errors import ModelNotFoundError, quote

__all__ = [
    "register_model",
    "register_pretrained",
    "register_arch_inferrer",
    "deregister_model",
    "deregister_pretrained",
    "deregister_arch_inferrer",
    "is_model",
    "model_entrypoint",
    "list_models",
    "list_architectures",
    "get_pretrained_cfg",
    "infer_architecture",
]

ArchInferrer = Callable[[dict[str, torch.Tensor], dict[str, Any] | None], tuple[str, dict[str, Any]] | None]

_model_entrypoints: dict[str, Callable[..., nn.Module]] = {}
_model_pretrained_cfgs: dict[str, dict[str, PretrainedCfg]] = {}  # architecture -> tag -> cfg (insertion order)
_arch_inferrers: list[ArchInferrer] = []


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator registering an architecture builder under its function name.

    The variants of that architecture in the ``default_cfgs`` dict of the builder's module (declared
    before the builders) are registered with it.
    """
    arch = fn.__name__
    _model_entrypoints[arch] = fn
    _model_pretrained_cfgs.setdefault(arch, {})
    module = sys.modules.get(fn.__module__)
    for cfg in getattr(module, "default_cfgs", {}).values():
        if cfg.architecture == arch:
            register_pretrained(cfg)
    return fn


def register_pretrained(cfg: PretrainedCfg) -> PretrainedCfg:
    """Register one variant (tagged) or the description of an architecture (untagged)."""
    _model_pretrained_cfgs.setdefault(cfg.architecture, {})[cfg.tag] = cfg
    return cfg


def deregister_model(architecture: str) -> None:
    """Forget an architecture and its variants (tests register throw-away ones)."""
    _model_entrypoints.pop(architecture, None)
    _model_pretrained_cfgs.pop(architecture, None)


def deregister_pretrained(name: str) -> None:
    """Forget one variant ``architecture.tag``."""
    arch, _, tag = name.partition(".")
    _model_pretrained_cfgs.get(arch, {}).pop(tag, None)


def register_arch_inferrer(fn: ArchInferrer) -> ArchInferrer:
    """Register ``fn(state_dict, official_cfg) -> (architecture, model_kwargs) | None``.

    Each model family registers one; :func:`infer_architecture` asks them in turn.  This is how
    ``python -m tada convert`` rebuilds a model from an official checkpoint.
    """
    _arch_inferrers.append(fn)
    return fn


def deregister_arch_inferrer(fn: ArchInferrer) -> None:
    """Forget an inferrer registered with :func:`register_arch_inferrer`."""
    if fn in _arch_inferrers:
        _arch_inferrers.remove(fn)


def is_model(architecture: str) -> bool:
    """Whether ``architecture`` is a registered builder."""
    return architecture in _model_entrypoints


def model_entrypoint(architecture: str) -> Callable[..., nn.Module]:
    """The registered builder of an architecture."""
    if architecture not in _model_entrypoints:
        raise ModelNotFoundError(f"Unknown architecture {quote(architecture)}.{_close_matches(architecture)}")
    return _model_entrypoints[architecture]


def list_architectures(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell-style pattern."""
    return sorted(n for n in _model_entrypoints if fnmatch.fnmatch(n, pattern))


def list_models(pattern: str = "*", pretrained: bool = True) -> list[str]:
    """Registered variants (``architecture.tag``) matching a shell-style pattern.

    With ``pretrained=False`` the architecture names are listed instead (timm's default).
    """
    if not pretrained:
        return list_architectures(pattern)
    names = [cfg.name for tags in _model_pretrained_cfgs.values() for cfg in tags.values() if cfg.tag]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def _close_matches(name: str) -> str:
    if len(name) > 100:  # no model name is that long (and difflib's cost grows with it)
        return " See tada.list_models()."
    pool = list_models() + list_architectures()
    hits = difflib.get_close_matches(name, pool, n=5, cutoff=0.5)
    return f" Did you mean: {', '.join(hits)}?" if hits else " See tada.list_models()."


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """A copy of the config of a variant (changing it changes nothing registered).

    Accepts ``architecture.tag``, an architecture alone (its first registered tag, else its untagged
    description, else a bare config), or ``architecture.<unique tag prefix>``.
    """
    arch, _, tag = name.partition(".")
    if arch not in _model_entrypoints:
        raise ModelNotFoundError(f"Unknown model {quote(name)}.{_close_matches(name)}")
    cfgs = _model_pretrained_cfgs.get(arch, {})
    tags = {t: c for t, c in cfgs.items() if t}
    if not tag:
        first = next(iter(tags.values()), None) or cfgs.get("")
        return first.copy() if first is not None else PretrainedCfg(architecture=arch)
    if tag in tags:
        return tags[tag].copy()
    prefixed = [t for t in tags if t.startswith(tag)]
    if len(prefixed) == 1:
        return tags[prefixed[0]].copy()
    if prefixed:
        raise ModelNotFoundError(
            f"{quote(name)} is ambiguous: {', '.join(f'{arch}.{t}' for t in prefixed)}. Give the full name."
        )
    raise ModelNotFoundError(f"Unknown tag {quote(tag)} for {arch}.{_close_matches(name)}")


def infer_architecture(
    state_dict: dict[str, torch.Tensor], official_cfg: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Ask every model family which architecture (and construction arguments) a state dict is."""
    for fn in _arch_inferrers:
        found = fn(state_dict, official_cfg)
        if found is not None:
            return found
    sample = ", ".join(k if len(k) <= 80 else f"{k[:80]}…" for k in list(state_dict)[:5])
    raise ValueError(f"Cannot tell which architecture this checkpoint is (first keys: {sample}).")
