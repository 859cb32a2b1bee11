"""Where pretrained weights come from, and how official checkpoints become model folders.

A *model folder* is what ``python -m tada convert`` writes and what ``huggingface_hub`` can push as is::

    <dir>/model.safetensors      the weights (official key names)
    <dir>/config.json            {"format_version": 1, "architecture", "model_kwargs", "pretrained_cfg", ...}
    <dir>/official_config.json   the training config stored in the official file (when it had one)
    <dir>/README.md              a model card (Hugging Face front matter + provenance)

``tada.create_model("local-dir:<dir>")`` and ``tada.create_model("hf-hub:<org>/<repo>")`` read it back.

``pretrained=True`` resolves a variant's weights in this order (first hit wins):

1. ``cfg.local_dir`` (bundled models, relative to the repository root);
2. the local cache, ``$TADA_CACHE/<variant>/`` (default ``~/.cache/tada``);
3. ``cfg.hf_hub_id`` through ``huggingface_hub`` (the Hub cache is looked at first, so offline never waits);
4. the official Google Drive file through ``gdown``, converted once into the local cache.

Offline (``HF_HUB_OFFLINE=1``, or no network) it fails within seconds with a
:class:`WeightsUnavailableError` saying which file to fetch and where to put it.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import shutil
import socket
import sys
import tempfile
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tada import registry
from tada.checkpoints import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    save_safetensors,
)
from tada.errors import ConversionError, WeightsUnavailableError
from tada.registry import PretrainedCfg

__all__ = [
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "CONFIG_NAME",
    "WeightsUnavailableError",
    "ConversionError",
    "cache_dir",
    "cached_model_dir",
    "download_url",
    "gdrive_view_url",
    "is_offline",
    "weights_status",
    "load_model_dir",
    "download_model_dir",
    "push_to_hub",
    "load_pretrained",
    "fetch_pretrained",
    "convert_checkpoint",
    "parse_overrides",
]

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
OFFICIAL_CONFIG_NAME = "official_config.json"
CARD_NAME = "README.md"

#: Template of the official download URL; ``$TADA_DOWNLOAD_URL`` replaces it (tests serve files from
#: a loopback server this way, a mirror can be used the same way).
DEFAULT_DOWNLOAD_URL = "https://drive.google.com/uc?id={id}"
#: (connect, read) timeouts of the official download, in seconds: a dead network fails fast.
DOWNLOAD_TIMEOUT = (5.0, 60.0)
#: Seconds to wait for a TCP connection to the Hub before calling it unreachable.
HUB_PROBE_TIMEOUT = 3.0

_REPO_ROOT = Path(__file__).resolve().parents[1]
_TRUE = {"1", "on", "yes", "true"}


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


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (read at call time, unlike ``huggingface_hub.constants``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def download_url(file_id: str) -> str:
    """URL the official file ``file_id`` is downloaded from (``$TADA_DOWNLOAD_URL`` with ``{id}``)."""
    template = os.environ.get("TADA_DOWNLOAD_URL") or DEFAULT_DOWNLOAD_URL
    return template.replace("{id}", file_id)


def gdrive_view_url(file_id: str) -> str:
    """The Google Drive page of an official file, what a person opens in a browser."""
    return f"https://drive.google.com/file/d/{file_id}"


def _is_model_dir(path: Path) -> bool:
    return (path / WEIGHTS_NAME).is_file() and (path / CONFIG_NAME).is_file()


def _local_dir(cfg: PretrainedCfg) -> Path | None:
    if not cfg.local_dir:
        return None
    path = Path(cfg.local_dir).expanduser()
    return path if path.is_absolute() else _REPO_ROOT / path


def _hub_cached_files(repo_id: str) -> tuple[Path, Path] | None:
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(repo_id, f) for f in (WEIGHTS_NAME, CONFIG_NAME)]
    if all(isinstance(p, str) for p in found):
        return Path(found[0]), Path(found[1])
    return None


def weights_status(cfg: PretrainedCfg) -> str:
    """Where ``pretrained=True`` would find the weights without a download.

    ``"bundled"``, ``"cached"``, ``"hub-cached"``, or where they would come from:
    ``"hub"``, ``"gdrive"``, ``"none"`` (nothing released).
    """
    local = _local_dir(cfg)
    if local is not None and _is_model_dir(local):
        return "bundled"
    if cfg.tag and _is_model_dir(cached_model_dir(cfg.name)):
        return "cached"
    if cfg.hf_hub_id and _hub_cached_files(cfg.hf_hub_id) is not None:
        return "hub-cached"
    if cfg.hf_hub_id:
        return "hub"
    return "gdrive" if cfg.gdrive_id else "none"


# --- reading model folders ------------------------------------------------------------------------


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a model folder, checked for the fields :func:`load_model_dir` needs."""
    path = Path(path)
    file = path / CONFIG_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a model folder: no {CONFIG_NAME}")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or "architecture" not in config:
        raise ValueError(f"{file} has no 'architecture' field; was it written by `python -m tada convert`?")
    version = config.get("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ValueError(f"{file} has format_version {version}; this tada reads up to {FORMAT_VERSION}. Upgrade tada.")
    return config


def load_model_dir(path: str | Path, **kwargs: Any) -> nn.Module:
    """Build the model described by a model folder's ``config.json`` and load its weights strictly.

    ``kwargs`` are construction overrides for the builder; one that changes a weight shape makes the
    strict load fail and name the keys.
    """
    path = Path(path).expanduser()
    config = read_model_config(path)
    if not (path / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{path} is not a model folder: no {WEIGHTS_NAME}")
    cfg_dict = dict(config.get("pretrained_cfg") or {})
    cfg_dict["architecture"] = config["architecture"]
    if "model_kwargs" in config:
        cfg_dict["model_kwargs"] = dict(config["model_kwargs"])
    if "num_classes" in config:
        cfg_dict["num_classes"] = config["num_classes"]
    cfg = PretrainedCfg.from_dict(cfg_dict)
    cfg.model_kwargs.pop("num_classes", None)  # carried by cfg.num_classes
    cfg = cfg.replace(local_dir=str(path.resolve()))
    model = registry.build_model(cfg, **kwargs)
    load_state_dict_strict(model, _read_weights(path / WEIGHTS_NAME))
    return model.eval()


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(file))


def download_model_dir(repo_id: str) -> Path:
    """Local folder of a Hub repo holding a converted model (``org/repo`` or ``org/repo@revision``).

    The Hub cache is looked at first; offline (``HF_HUB_OFFLINE=1`` or an unreachable Hub) a repo
    that is not cached fails at once with :class:`WeightsUnavailableError`.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id, _, revision = repo_id.partition("@")
    patterns = [WEIGHTS_NAME, "*.json", CARD_NAME]
    try:
        local = snapshot_download(repo_id, revision=revision or None, allow_patterns=patterns, local_files_only=True)
        return Path(local)
    except LocalEntryNotFoundError:
        pass
    reason = _hub_unreachable()
    if reason is None:
        try:
            return Path(snapshot_download(repo_id, revision=revision or None, allow_patterns=patterns))
        except Exception as exc:  # noqa: BLE001 - network, auth and missing-repo errors all end here
            reason = f"{type(exc).__name__}: {exc}"
    raise WeightsUnavailableError(
        f"Hugging Face Hub repo '{repo_id}' is not in the local Hub cache and cannot be downloaded ({reason}). "
        f"Download it where you have network access (`hf download {repo_id}`) and copy the Hub cache over, "
        f"or load a local copy with tada.create_model('local-dir:<folder>')."
    )


def _hub_unreachable() -> str | None:
    """Why the Hub cannot be used now, or None when it can."""
    if is_offline():
        return "HF_HUB_OFFLINE=1"
    from huggingface_hub import constants

    return _unreachable(constants.ENDPOINT, HUB_PROBE_TIMEOUT)


def _unreachable(url: str, timeout: float) -> str | None:
    """None when a TCP connection to the host of ``url`` opens within ``timeout`` s, else the reason.

    huggingface_hub retries a failing request for ~23 s (and up to minutes on a silent network), so
    one short connection attempt first keeps "no network" fast.  Behind a proxy we cannot tell: go on.
    """
    import requests

    if requests.utils.get_environ_proxies(url):
        return None
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot reach {parts.hostname}: {exc}"


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str = "Upload converted TAda Lab model",
) -> str:
    """Upload a model folder (as written by :func:`convert_checkpoint`) to a Hub model repo; returns the commit URL.

    Afterwards ``tada.create_model("hf-hub:<repo_id>")`` loads it anywhere.
    """
    from huggingface_hub import HfApi

    folder = Path(folder).expanduser()
    read_model_config(folder)
    if not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{folder} is not a model folder: no {WEIGHTS_NAME}")
    if is_offline():
        raise WeightsUnavailableError(f"Cannot push {folder} to {repo_id}: HF_HUB_OFFLINE=1")
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        allow_patterns=[WEIGHTS_NAME, "*.json", CARD_NAME],
        commit_message=commit_message,
    )
    return str(info.commit_url)


# --- pretrained=True -----------------------------------------------------------------------------


def fetch_pretrained(cfg: PretrainedCfg) -> Path:
    """A local file (``model.safetensors``) holding ``cfg``'s weights, downloading/converting if needed.

    Raises:
        WeightsUnavailableError: offline, nothing cached, or the download failed.
    """
    local = _local_dir(cfg)
    if local is not None and _is_model_dir(local):
        return local / WEIGHTS_NAME
    if cfg.tag and _is_model_dir(cached_model_dir(cfg.name)):
        return cached_model_dir(cfg.name) / WEIGHTS_NAME

    problems: list[str] = []
    if local is not None:
        problems.append(f"bundled folder {local} is missing")
    if cfg.hf_hub_id:
        hub_file = _fetch_from_hub(cfg.hf_hub_id, problems)
        if hub_file is not None:
            return hub_file
    if cfg.gdrive_id and cfg.tag:
        return _fetch_official(cfg, problems)
    raise WeightsUnavailableError(
        f"No released weights for '{cfg.name}'" + (f" ({'; '.join(problems)})" if problems else "") + "."
    )


def load_pretrained(model: nn.Module, cfg: PretrainedCfg) -> nn.Module:
    """Load ``cfg``'s released weights into ``model`` strictly (see :func:`fetch_pretrained` for the order)."""
    load_state_dict_strict(model, _read_weights(fetch_pretrained(cfg)))
    return model


def _fetch_from_hub(repo_id: str, problems: list[str]) -> Path | None:
    cached = _hub_cached_files(repo_id)
    if cached is not None:
        return cached[0]
    reason = _hub_unreachable()
    if reason is not None:
        problems.append(f"Hub repo {repo_id} not cached ({reason})")
        return None
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(repo_id, CONFIG_NAME)
        return Path(hf_hub_download(repo_id, WEIGHTS_NAME))
    except Exception as exc:  # noqa: BLE001 - fall back to the official file
        problems.append(f"Hub repo {repo_id}: {type(exc).__name__}: {exc}")
        warnings.warn(f"Could not download {repo_id} from the Hub ({exc}); trying the official file.", stacklevel=3)
        return None


def _instructions(cfg: PretrainedCfg) -> str:
    target = cached_model_dir(cfg.name)
    return (
        f"Fetch the official checkpoint {gdrive_view_url(cfg.gdrive_id or '?')} and either convert it into "
        f"the cache with `python -m tada convert <downloaded file> {target} --variant {cfg.name}`, or load it "
        f"directly with tada.create_model('{cfg.name}', checkpoint='<downloaded file>')."
    )


def _fetch_official(cfg: PretrainedCfg, problems: list[str]) -> Path:
    assert cfg.gdrive_id is not None
    if is_offline():
        raise WeightsUnavailableError(
            f"Weights for '{cfg.name}' are not available offline (HF_HUB_OFFLINE=1"
            + (f"; {'; '.join(problems)}" if problems else "")
            + "). "
            + _instructions(cfg)
        )
    import gdown

    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    raw = downloads / f"{cfg.gdrive_id}.pyth"
    url = download_url(cfg.gdrive_id)
    if not raw.is_file():
        part = raw.with_name(raw.name + ".part")
        try:
            # a progress bar only for a person watching (official files are up to a few GB)
            gdown.download(url, str(part), quiet=not sys.stderr.isatty(), use_cookies=False, timeout=DOWNLOAD_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - requests/gdown errors: connection refused, 404, quota ...
            part.unlink(missing_ok=True)
            raise WeightsUnavailableError(
                f"Could not download the weights of '{cfg.name}' from {url} ({type(exc).__name__}: {exc}). "
                + _instructions(cfg)
            ) from exc
        part.replace(raw)
    try:
        out = convert_checkpoint(raw, cached_model_dir(cfg.name), variant=cfg.name)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"The file downloaded for '{cfg.name}' ({raw}) could not be converted: {exc}"
        ) from exc
    raw.unlink()  # the converted folder holds every weight; the official file also carries optimiser state
    return out / WEIGHTS_NAME


# --- conversion ------------------------------------------------------------------------------------


def parse_overrides(items: list[str] | tuple[str, ...] | dict[str, Any] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are JSON/Python literals when they parse, else strings.

    ``route_head_dim=48`` -> 48, ``dims=[16,32]`` -> [16, 32], ``temp_enhance=true`` -> True.
    """
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConversionError(f"override '{item}' is not of the form key=value")
        out[key] = _parse_value(text.strip())
    return out


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError):
            continue
    return text


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_overrides(architecture: str, overrides: dict[str, Any]) -> None:
    builder = registry._MODEL_BUILDERS[architecture]
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in overrides if k not in params]
    if unknown:
        raise ConversionError(
            f"override {', '.join(unknown)} is not a parameter of {architecture} "
            f"(parameters: {', '.join(p for p in params if p != 'kwargs')})"
        )


def _get(cfg: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(cfg, dict) or key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


_LABEL_SETS = {400: "kinetics400", 174: "ssv2"}
_ILA_MEAN, _ILA_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _cfg_from_official(
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
            mean=_ILA_MEAN,
            std=_ILA_STD,
            pixel_range=255.0,
            input_layout="BTCHW",
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
            reference = registry.build_model(vcfg.replace(model_kwargs={**vcfg.model_kwargs, **overrides}))
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
        architecture, inferred = registry.infer_architecture(ckpt.state_dict, ckpt.config)
    except ValueError as exc:
        raise ConversionError(f"{src.name}: {exc}") from exc
    inferred = dict(inferred)
    _check_overrides(architecture, overrides)

    if variant is not None:
        vcfg = registry.get_pretrained_cfg(variant)
        if not vcfg.tag:
            raise ConversionError(
                f"'{variant}' names an architecture, not a released variant; see `python -m tada list`"
            )
        if vcfg.architecture != architecture:
            raise ConversionError(
                f"{src.name} holds a {architecture} model, but variant {vcfg.name} is a {vcfg.architecture}"
            )
        kwargs = dict(vcfg.model_kwargs)
        conflicts = [
            f"{k}={inferred[k]!r} in the checkpoint vs {kwargs[k]!r} in {vcfg.name}"
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
        cfg = _cfg_from_official(architecture, num_classes, kwargs, ckpt.format, ckpt.config)

    try:
        model = registry.build_model(cfg)
    except (TypeError, ValueError) as exc:  # an argument the builder does not take, or a value it refuses
        raise ConversionError(
            f"cannot build {architecture} from {src.name}: {exc} (parameters the checkpoint does not record "
            "are set with --override KEY=VALUE)"
        ) from exc
    load_state_dict_strict(model, ckpt.state_dict)
    sha = _sha256(src)
    provenance = {
        "source_file": src.name,
        "source_sha256": sha,
        "source_format": ckpt.format,
        "source_metadata": json.loads(json.dumps(ckpt.metadata, default=str)),
        "overrides": overrides,
        "converted_with": f"tada {_version()}",
    }
    config = {
        "format_version": FORMAT_VERSION,
        "library": "tada",
        "architecture": architecture,
        "num_classes": cfg.num_classes,
        "model_kwargs": json.loads(json.dumps(cfg.model_kwargs)),
        "pretrained_cfg": cfg.to_dict(),
        "provenance": provenance,
    }

    # Write into a sibling temp folder and swap it in, so a crash never leaves a half-written model folder
    # that later looks complete (the cache trusts any folder with both files).
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        metadata = {"format": "pt", "architecture": architecture, "source_file": src.name, "source_sha256": sha}
        if cfg.tag:
            metadata["variant"] = cfg.name
        save_safetensors(model.state_dict(), tmp / WEIGHTS_NAME, metadata=metadata)
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if ckpt.config is not None:
            (tmp / OFFICIAL_CONFIG_NAME).write_text(json.dumps(ckpt.config, indent=2) + "\n", encoding="utf-8")
        (tmp / CARD_NAME).write_text(model_card(cfg, provenance), encoding="utf-8")
        out_dir.mkdir(parents=True, exist_ok=True)
        for file in tmp.iterdir():
            file.replace(out_dir / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _version() -> str:
    import tada

    return getattr(tada, "__version__", "?")


_DATASET_NAMES = {"kinetics400": "Kinetics-400", "ssv2": "Something-Something-v2"}


def model_card(cfg: PretrainedCfg, provenance: dict[str, Any]) -> str:
    """A Hugging Face model card (YAML front matter + provenance + how to load) for a converted folder."""
    family = "ila" if cfg.input_layout == "BTCHW" else "tadaconv"
    lines = ["---", "library_name: tada"]
    if cfg.license:
        lines.append(f"license: {cfg.license}")
    lines += ["pipeline_tag: video-classification", "tags:"]
    lines += [f"- {t}" for t in ("video-classification", "action-recognition", family, "safetensors")]
    if cfg.label_set in _DATASET_NAMES:
        lines += ["datasets:", f"- {_DATASET_NAMES[cfg.label_set]}"]
    lines.append("---")
    title = cfg.name
    lines += ["", f"# {title}", ""]
    what = f"`{cfg.architecture}` video classifier, {cfg.num_classes} classes"
    if cfg.label_set:
        what += f" (label set `{cfg.label_set}`)"
    lines += [what + ", converted from the official checkpoint to safetensors by TAda Lab.", ""]
    lines += ["## Provenance", ""]
    lines.append(f"- source file: `{provenance['source_file']}` ({provenance['source_format']})")
    lines.append(f"- source sha256: `{provenance['source_sha256']}`")
    if cfg.gdrive_id:
        lines.append(f"- official download: {gdrive_view_url(cfg.gdrive_id)}")
    if cfg.source:
        lines.append(f"- source: {cfg.source}")
    if cfg.reported_top1 is not None:
        views = f" ({cfg.reported_views} views)" if cfg.reported_views else ""
        lines.append(f"- reported top-1: {cfg.reported_top1}%{views}")
    if provenance.get("overrides"):
        lines.append(f"- construction overrides: `{json.dumps(provenance['overrides'])}`")
    lines.append(f"- converted with {provenance['converted_with']}")
    lines += ["", "## Input", ""]
    rate = f", rate {cfg.sampling_rate} at {cfg.target_fps} fps" if cfg.sampling_rate else ""
    lines.append(f"- {cfg.num_frames} frames, `{cfg.sampling}` sampling{rate}, layout `{cfg.input_layout}`")
    lines.append(f"- resize short side to {cfg.test_scale}, centre crop {cfg.crop_size}")
    lines.append(f"- normalise pixels in [0, {cfg.pixel_range:g}] with mean {list(cfg.mean)} and std {list(cfg.std)}")
    if cfg.notes:
        lines += ["", cfg.notes]
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "import tada",
        "",
        'model = tada.create_model("hf-hub:<org>/<repo>")  # or "local-dir:<this folder>"',
        "probs = tada.probabilities(model(clip))",
        "```",
        "",
    ]
    return "\n".join(lines)
