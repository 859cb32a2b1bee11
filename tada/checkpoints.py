"""Reading and writing checkpoints safely and strictly.

* Official TAdaConv ``.pyth`` files are ``torch.save`` dicts (``model_state``, ``optimizer_state``,
  ``cfg`` as a JSON string) and load with ``torch.load(weights_only=True)``.
* Official ILA ``.pth`` files also hold a pickled yacs ``CfgNode``, which ``weights_only=True``
  refuses.  They are read with a restricted unpickler that admits only tensors/storages, plain
  containers and numbers, and a harmless stand-in for the config class; anything else (a crafted
  pickle that would run code) is refused.  Never a full unpickle.
* Our own format is ``model.safetensors`` (+ ``config.json``, see :mod:`tada.hub`).

Sizes are checked before data is read (:func:`tada.limits.check_tensor_shapes`): safetensors shapes
come from the file header, and ``torch.save`` archives are memory-mapped, so a crafted file cannot
make a read allocate more than :data:`tada.limits.MAX_MODEL_BYTES`.

Loading is strict: missing, unexpected or mis-shaped keys raise :class:`CheckpointMismatchError`
naming them (the official loaders use ``strict=False`` and silently ignore mismatches).
"""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as _load_safetensors
from safetensors.torch import save_file as _save_safetensors
from torch import nn

from tada.errors import CheckpointError, CheckpointMismatchError, UnsafeCheckpointError
from tada.limits import check_tensor_shapes

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "UnsafeCheckpointError",
    "OfficialCheckpoint",
    "read_checkpoint",
    "read_safetensors",
    "load_state_dict_strict",
    "load_checkpoint",
    "save_safetensors",
]


@dataclass
class OfficialCheckpoint:
    """A checkpoint read from disk: the model weights plus whatever training metadata came with it."""

    state_dict: dict[str, torch.Tensor]
    format: str  # "tadaconv-pyth" | "ila-pth" | "safetensors" | "state-dict"
    config: dict[str, Any] | None = None  # the official training config, when stored
    metadata: dict[str, Any] = field(default_factory=dict)


# --- restricted unpickling (ILA .pth) ---------------------------------------------------------------


class _ConfigStandIn(dict):
    """Stands in for ``yacs.config.CfgNode``: a plain dict that accepts the pickled state."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("yacs.config", "CfgNode"): _ConfigStandIn,
}
for _name in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"):
    _ALLOWED_GLOBALS[("torch", f"{_name}Storage")] = getattr(torch, f"{_name}Storage")
for _dt in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"):
    _ALLOWED_GLOBALS[("torch", _dt)] = getattr(torch, _dt)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"Refusing to load this checkpoint: its pickle references '{module}.{name}', "
                "which is not a tensor, container or number (only weights are read, never code)."
            ) from None


class _RestrictedPickleModule:
    """A ``pickle_module`` for :func:`torch.load` that only knows :class:`_RestrictedUnpickler`."""

    Unpickler = _RestrictedUnpickler
    __name__ = "tada_restricted_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


# --- reading -------------------------------------------------------------------------------------


def _strip_prefix(sd: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    if sd and all(k.startswith(prefix) for k in sd):
        return OrderedDict((k[len(prefix) :], v) for k, v in sd.items())
    return sd


def _parse_cfg(cfg: Any) -> dict[str, Any] | None:
    if cfg is None:
        return None
    if isinstance(cfg, str):
        try:
            return json.loads(cfg)
        except json.JSONDecodeError:
            return {"raw": cfg}
    if isinstance(cfg, dict):
        return json.loads(json.dumps(cfg, default=str))
    return None


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a ``.safetensors`` file, its shapes checked from the header first.

    Raises:
        CheckpointTooLargeError: a tensor with an absurd dimension, or more than the size cap in all.
    """
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata() or {})
        shapes = []
        for key in f.keys():
            part = f.get_slice(key)
            shapes.append((key, part.get_shape(), _DTYPE_BYTES.get(part.get_dtype(), 8)))
    check_tensor_shapes(shapes, path.name)
    return _load_safetensors(str(path)), meta


# Bytes per element of safetensors dtype names (unknown ones counted as 8: the cap errs on the safe side).
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2}
_DTYPE_BYTES.update({"I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8})


def _is_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _check_loaded(sd: dict[str, Any], name: str) -> None:
    """Shapes of the tensors of a (memory-mapped) state dict, before any of their data is touched."""
    check_tensor_shapes(
        ((str(k), tuple(v.shape), v.element_size()) for k, v in sd.items() if isinstance(v, torch.Tensor)), name
    )


def read_checkpoint(path: str | Path) -> OfficialCheckpoint:
    """Read model weights from an official ``.pyth``/``.pth``, a ``.safetensors`` file or a bare state dict.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the pickle would need more than tensors/containers/numbers.
        CheckpointError: the file is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}")
    if path.suffix == ".safetensors":
        sd, meta = read_safetensors(path)
        return OfficialCheckpoint(sd, "safetensors", metadata=meta)
    # A torch.save archive is memory-mapped: tensors are read when used, after their shapes are checked
    # (and an official file's optimizer state is never read at all).
    mmap = _is_zip(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as first_error:
        # weights_only refuses the yacs CfgNode in ILA files: retry with the restricted unpickler,
        # which refuses everything that is not weights, containers, numbers or the config stand-in.
        try:
            obj = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule, mmap=mmap
            )
        except UnsafeCheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here means "not a checkpoint"
            raise CheckpointError(f"Cannot read {path.name} as a checkpoint: {first_error}") from exc
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"Cannot read {path.name} as a checkpoint: {exc}") from exc

    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name} holds a {type(obj).__name__}, not a checkpoint dict")
    found: OfficialCheckpoint | None = None
    if "model_state" in obj or "model_ema_state" in obj:
        sd = obj.get("model_state") or obj["model_ema_state"]
        meta = {k: obj[k] for k in ("epoch",) if k in obj}
        found = OfficialCheckpoint(_strip_prefix(dict(sd)), "tadaconv-pyth", _parse_cfg(obj.get("cfg")), meta)
    elif "model" in obj and isinstance(obj["model"], dict):
        meta = {k: obj[k] for k in ("epoch", "max_accuracy") if k in obj}
        found = OfficialCheckpoint(_strip_prefix(dict(obj["model"])), "ila-pth", _parse_cfg(obj.get("config")), meta)
    elif "state_dict" in obj and isinstance(obj["state_dict"], dict):
        found = OfficialCheckpoint(_strip_prefix(dict(obj["state_dict"])), "state-dict")
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = OfficialCheckpoint(_strip_prefix(dict(obj)), "state-dict")
    if found is not None:
        _check_loaded(found.state_dict, path.name)
        return found
    raise CheckpointError(f"{path.name} has no model weights (keys: {', '.join(list(obj)[:6])})")


# --- loading into a model ----------------------------------------------------------------------------


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load ``state_dict`` into ``model``, failing loudly on any missing/unexpected/mis-shaped key."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched)
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint(model: nn.Module, path: str | Path) -> OfficialCheckpoint:
    """Read ``path`` (any supported format) and load it strictly into ``model``."""
    ckpt = read_checkpoint(path)
    load_state_dict_strict(model, ckpt.state_dict)
    return ckpt


def save_safetensors(
    state_dict: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write a state dict as safetensors (contiguous CPU copies; shared storage is split)."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _save_safetensors(tensors, str(path), metadata=metadata or {})
