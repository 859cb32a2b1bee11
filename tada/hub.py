"""Where pretrained weights come from: the local cache, the Hugging Face Hub, the official download.

``pretrained=True`` resolves a variant's weights in this order (first hit wins):

1. ``cfg.local_dir`` (bundled models, relative to the repository root);
2. the local cache, ``$TADA_CACHE/<variant>/`` (default ``~/.cache/tada``);
3. ``cfg.hf_hub_id`` through ``huggingface_hub`` (the Hub cache is looked at first, so offline never waits);
4. the official Google Drive file through ``gdown``, converted once into the local cache.

Offline (``HF_HUB_OFFLINE=1``, or no network) it fails within seconds with a
:class:`WeightsUnavailableError` saying which file to fetch and where to put it
(:func:`how_to_get_weights`, the one text for that).  The downloads themselves are in
:mod:`tada._download`, the folder format in :mod:`tada._model_folder`, conversion in :mod:`tada.convert`.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from tada._download import (
    download_model_dir,
    download_official,
    download_url,
    fetch_from_hub,
    gdrive_view_url,
    hub_cached_files,
    is_offline,
    push_to_hub,
)
from tada._model_folder import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    is_model_dir,
    read_model_cfg,
    read_model_config,
    read_weights,
)
from tada._pretrained import PretrainedCfg
from tada.checkpoints import load_state_dict_strict
from tada.convert import convert_checkpoint
from tada.errors import WeightsUnavailableError

__all__ = [
    "WeightsUnavailableError",
    "cache_dir",
    "cached_model_dir",
    "local_dir",
    "weights_status",
    "fetch_pretrained",
    "load_pretrained",
    "how_to_get_weights",
    # re-exported: the download side and the folder format, what callers of the hub use
    "download_model_dir",
    "download_url",
    "gdrive_view_url",
    "is_offline",
    "push_to_hub",
    "read_model_cfg",
    "read_model_config",
    "read_weights",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
]

_REPO_ROOT = Path(__file__).resolve().parents[1]


# --- places --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Root of the converted-weights cache: ``$TADA_CACHE``, else ``$XDG_CACHE_HOME/tada`` (``~/.cache/tada``)."""
    if os.environ.get("TADA_CACHE"):
        return Path(os.environ["TADA_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "tada"


def cached_model_dir(name: str) -> Path:
    """Cache folder of one variant (it may not exist yet)."""
    return cache_dir() / name


def local_dir(cfg: PretrainedCfg) -> Path | None:
    """The folder named by ``cfg.local_dir`` (relative to the repository root), or None."""
    if not cfg.local_dir:
        return None
    path = Path(cfg.local_dir).expanduser()
    return path if path.is_absolute() else _REPO_ROOT / path


def weights_status(cfg: PretrainedCfg) -> str:
    """Where ``pretrained=True`` would find the weights without a download.

    ``"bundled"``, ``"cached"``, ``"hub-cached"``, or where they would come from:
    ``"hub"``, ``"gdrive"``, ``"none"`` (nothing released).
    """
    local = local_dir(cfg)
    if local is not None and is_model_dir(local):
        return "bundled"
    if cfg.tag and is_model_dir(cached_model_dir(cfg.name)):
        return "cached"
    if cfg.hf_hub_id and hub_cached_files(cfg.hf_hub_id) is not None:
        return "hub-cached"
    if cfg.hf_hub_id:
        return "hub"
    return "gdrive" if cfg.gdrive_id else "none"


# --- pretrained=True -----------------------------------------------------------------------------


def fetch_pretrained(cfg: PretrainedCfg) -> Path:
    """A local file (``model.safetensors``) holding ``cfg``'s weights, downloading/converting if needed.

    Raises:
        WeightsUnavailableError: offline, nothing cached, or the download failed.
    """
    local = local_dir(cfg)
    if local is not None and is_model_dir(local):
        return local / WEIGHTS_NAME
    if cfg.tag and is_model_dir(cached_model_dir(cfg.name)):
        return cached_model_dir(cfg.name) / WEIGHTS_NAME

    problems: list[str] = []
    if local is not None:
        problems.append(f"bundled folder {local} is missing")
    if cfg.hf_hub_id:
        hub_file = fetch_from_hub(cfg.hf_hub_id, problems)
        if hub_file is not None:
            return hub_file
    if cfg.gdrive_id and cfg.tag:
        return _fetch_official(cfg, problems)
    raise WeightsUnavailableError(
        f"No released weights for '{cfg.name}'" + (f" ({'; '.join(problems)})" if problems else "") + "."
    )


def load_pretrained(model: nn.Module, cfg: PretrainedCfg) -> nn.Module:
    """Load ``cfg``'s released weights into ``model`` strictly (see :func:`fetch_pretrained` for the order)."""
    load_state_dict_strict(model, read_weights(fetch_pretrained(cfg)))
    return model


def how_to_get_weights(cfg: PretrainedCfg, markdown: bool = False) -> str:
    """Plain instructions for a variant whose weights are not on this machine (a Markdown list when asked).

    The one text for it: the offline errors here, the CLI and the app all say this.
    """
    target = cached_model_dir(cfg.name)
    code = (lambda t: f"`{t}`") if markdown else (lambda t: t)
    if cfg.local_dir and not cfg.gdrive_id and not cfg.hf_hub_id:
        return (
            f"The bundled weights of {cfg.name} are missing (expected in {cfg.local_dir}). Restore that folder "
            f"from the repository, or train them again with {code('python -m tada train')}."
        )
    ways = [
        f"local file: download the official checkpoint, then run "
        f"{code(f'python -m tada convert <file> {target} --variant {cfg.name}')}, or load the file directly "
        f"with {code(f'tada.create_model({cfg.name!r}, checkpoint=<file>)')}",
    ]
    if cfg.hf_hub_id:
        ways.append(f"Hugging Face Hub: {code(f'hf download {cfg.hf_hub_id}')} (fills the Hub cache tada reads)")
    else:
        hub_call = "tada.create_model('hf-hub:<org>/<repo>')"
        ways.append(f"Hugging Face Hub: a converted copy pushed to the Hub loads with {code(hub_call)}")
    if cfg.gdrive_id:
        ways.append(
            f"official download ({gdrive_view_url(cfg.gdrive_id)}): with network access "
            f"{code(f'python -m tada download {cfg.name}')} fetches and converts it"
        )
    head = f"{cfg.name} needs its pretrained weights, which are not on this machine."
    if markdown:
        return head + " Any of these works:\n" + "\n".join(f"- {w}" for w in ways)
    return head + " Get them with one of: " + "; ".join(f"({i}) {w}" for i, w in enumerate(ways, 1)) + "."


def _fetch_official(cfg: PretrainedCfg, problems: list[str]) -> Path:
    """Download the official file and convert it once into the cache (the file is deleted afterwards)."""
    assert cfg.gdrive_id is not None
    raw = download_official(cfg.name, cfg.gdrive_id, cache_dir() / "downloads", how_to_get_weights(cfg), problems)
    try:
        out = convert_checkpoint(raw, cached_model_dir(cfg.name), variant=cfg.name)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"The file downloaded for '{cfg.name}' ({raw}) could not be converted: {exc}"
        ) from exc
    raw.unlink()  # the converted folder holds every weight; the official file also carries optimiser state
    return out / WEIGHTS_NAME
