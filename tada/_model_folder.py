"""The model folder: what ``convert``, ``train`` and ``evaluate --record`` write and ``local-dir:`` reads.

::

    <dir>/model.safetensors      the weights (official key names)
    <dir>/config.json            {"format_version", "library", "architecture", "num_classes", "model_kwargs",
                                  "pretrained_cfg", and per writer "provenance" / "training" / "evaluation"}
    <dir>/official_config.json   the training config stored in the official file (when it had one)
    <dir>/README.md              the model card (:mod:`tada._model_card`)

One writer (:func:`write_model_folder`) and one reader (:func:`read_model_cfg`); ``huggingface_hub``
can push the folder as is.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from tada._pretrained import PretrainedCfg
from tada.checkpoints import read_safetensors, save_safetensors
from tada.errors import ModelConfigError, quote

__all__ = [
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "OFFICIAL_CONFIG_NAME",
    "CARD_NAME",
    "is_model_dir",
    "read_model_config",
    "read_model_cfg",
    "read_weights",
    "folder_config",
    "write_model_folder",
]

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
OFFICIAL_CONFIG_NAME = "official_config.json"
CARD_NAME = "README.md"
#: A config.json larger than this is not one we wrote (ours are a few kB; official configs included).
MAX_CONFIG_BYTES = 1 << 20


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` holds both the weights and the config."""
    return (path / WEIGHTS_NAME).is_file() and (path / CONFIG_NAME).is_file()


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a model folder, checked for the fields :func:`read_model_cfg` needs."""
    path = Path(path)
    file = path / CONFIG_NAME
    shown = quote(str(file), 200)
    if not file.is_file():
        raise FileNotFoundError(f"{quote(str(path), 200)} is not a model folder: no {CONFIG_NAME}")
    if file.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelConfigError(f"{shown} is {file.stat().st_size:,} bytes long; a model config.json is a few kB.")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{shown} is not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(config, dict) or "architecture" not in config:
        raise ValueError(f"{shown} has no 'architecture' field; was it written by `python -m tada convert`?")
    version = config.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelConfigError(f"{shown}: format_version must be a whole number, got {quote(version)}.")
    if version > FORMAT_VERSION:
        raise ValueError(f"{shown} has format_version {version}; this tada reads up to {FORMAT_VERSION}. Upgrade tada.")
    kinds = {"architecture": (str, "a text"), "num_classes": (int, "a whole number")}
    kinds.update(model_kwargs=(dict, "a mapping"), pretrained_cfg=(dict, "a mapping"))
    for key, (kind, what) in kinds.items():
        value = config.get(key)
        if key in config and value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ModelConfigError(f"{shown}: {key} must be {what}, got {quote(value)}.")
    return config


def read_model_cfg(path: str | Path) -> PretrainedCfg:
    """The :class:`PretrainedCfg` a model folder describes (``config.json``), with ``local_dir`` set to it."""
    path = Path(path).expanduser()
    config = read_model_config(path)
    if not (path / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{quote(str(path), 200)} is not a model folder: no {WEIGHTS_NAME}")
    cfg_dict = dict(config.get("pretrained_cfg") or {})
    cfg_dict["architecture"] = config["architecture"]
    if "model_kwargs" in config:
        cfg_dict["model_kwargs"] = dict(config["model_kwargs"])
    if "num_classes" in config:
        cfg_dict["num_classes"] = config["num_classes"]
    cfg = PretrainedCfg.from_dict(cfg_dict)
    cfg.model_kwargs.pop("num_classes", None)  # carried by cfg.num_classes
    return cfg.replace(local_dir=str(path.resolve()))


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a model folder (or of a ``.safetensors`` file); shapes checked before reading."""
    path = Path(path)
    return read_safetensors(path / WEIGHTS_NAME if path.is_dir() else path)[0]


def folder_config(cfg: PretrainedCfg, **sections: Any) -> dict[str, Any]:
    """The ``config.json`` content for ``cfg``, the same core for every writer, plus named sections
    (``provenance`` for converted checkpoints, ``training``/``evaluation`` for trained ones)."""
    pcfg = cfg.replace(local_dir=None).to_dict()
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "library": "tada",
        "architecture": cfg.architecture,
        "num_classes": cfg.num_classes,
        "model_kwargs": pcfg["model_kwargs"],
        "pretrained_cfg": pcfg,
    }
    config.update(sections)
    return config


def write_model_folder(
    out_dir: str | Path,
    state_dict: dict[str, torch.Tensor],
    config: dict[str, Any],
    card: str,
    *,
    metadata: dict[str, str] | None = None,
    official_config: dict[str, Any] | None = None,
) -> Path:
    """Write a model folder atomically and return it.

    Everything goes into a sibling temp folder that is then swapped in file by file, so a crash never
    leaves a half-written folder that later looks complete (the cache trusts any folder with both files).
    """
    out_dir = Path(out_dir).expanduser()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        save_safetensors(state_dict, tmp / WEIGHTS_NAME, metadata={"format": "pt", **(metadata or {})})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        if official_config is not None:
            (tmp / OFFICIAL_CONFIG_NAME).write_text(json.dumps(official_config, indent=2) + "\n", encoding="utf-8")
        (tmp / CARD_NAME).write_text(card, encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        for file in tmp.iterdir():
            file.replace(out_dir / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def write_config(out_dir: str | Path, config: dict[str, Any], card: str) -> None:
    """Rewrite the config and card of an existing folder (``evaluate --record``), weights untouched."""
    out_dir = Path(out_dir)
    (out_dir / CONFIG_NAME).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    (out_dir / CARD_NAME).write_text(card, encoding="utf-8")
