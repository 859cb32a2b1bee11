"""Downloads: converted model folders from the Hugging Face Hub, official checkpoints from Google Drive.

Both fail fast offline (``HF_HUB_OFFLINE=1`` or an unreachable host) with a
:class:`~tada.errors.WeightsUnavailableError`; :mod:`tada.hub` decides which source is tried when.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.parse
import warnings
from collections.abc import Sequence
from pathlib import Path

from tada._model_folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, read_model_config
from tada.errors import WeightsUnavailableError, quote

__all__ = [
    "DEFAULT_DOWNLOAD_URL",
    "DOWNLOAD_TIMEOUT",
    "HUB_PROBE_TIMEOUT",
    "is_offline",
    "download_url",
    "gdrive_view_url",
    "hub_cached_files",
    "download_model_dir",
    "fetch_from_hub",
    "push_to_hub",
    "download_official",
]

#: Template of the official download URL; ``$TADA_DOWNLOAD_URL`` replaces it (tests serve files from
#: a loopback server this way, a mirror can be used the same way).
DEFAULT_DOWNLOAD_URL = "https://drive.google.com/uc?id={id}"
#: (connect, read) timeouts of the official download, in seconds: a dead network fails fast.
DOWNLOAD_TIMEOUT = (5.0, 60.0)
#: Seconds to wait for a TCP connection to the Hub before calling it unreachable.
HUB_PROBE_TIMEOUT = 3.0

_TRUE = {"1", "on", "yes", "true"}


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


def hub_cached_files(repo_id: str) -> tuple[Path, Path] | None:
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(repo_id, f) for f in (WEIGHTS_NAME, CONFIG_NAME)]
    if all(isinstance(p, str) for p in found):
        return Path(found[0]), Path(found[1])
    return None


def download_model_dir(repo_id: str) -> Path:
    """Local folder of a Hub repo holding a converted model (``org/repo`` or ``org/repo@revision``).

    The Hub cache is looked at first; offline (``HF_HUB_OFFLINE=1`` or an unreachable Hub) a repo
    that is not cached fails at once with :class:`WeightsUnavailableError`.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if len(repo_id) > 200:  # Hub ids are at most 96 characters a part: refuse before quoting it thrice
        raise WeightsUnavailableError(f"{quote(repo_id)} is not a Hugging Face Hub repo id (org/name).")
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


def fetch_from_hub(repo_id: str, problems: list[str]) -> Path | None:
    cached = hub_cached_files(repo_id)
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


def download_official(
    cfg_name: str, file_id: str, downloads: Path, instructions: str, problems: Sequence[str] = ()
) -> Path:
    """The official checkpoint ``file_id`` of variant ``cfg_name``, downloaded once into ``downloads``.

    Raises:
        WeightsUnavailableError: offline, or the download failed; the message ends with ``instructions``.
    """
    if is_offline():
        raise WeightsUnavailableError(
            f"Weights for '{cfg_name}' are not available offline (HF_HUB_OFFLINE=1"
            + (f"; {'; '.join(problems)}" if problems else "")
            + "). "
            + instructions
        )
    import gdown

    downloads.mkdir(parents=True, exist_ok=True)
    raw = downloads / f"{file_id}.pyth"
    url = download_url(file_id)
    if not raw.is_file():
        part = raw.with_name(raw.name + ".part")
        try:
            # a progress bar only for a person watching (official files are up to a few GB)
            gdown.download(url, str(part), quiet=not sys.stderr.isatty(), use_cookies=False, timeout=DOWNLOAD_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - requests/gdown errors: connection refused, 404, quota ...
            part.unlink(missing_ok=True)
            raise WeightsUnavailableError(
                f"Could not download the weights of '{cfg_name}' from {url} ({type(exc).__name__}: {exc}). "
                + instructions
            ) from exc
        part.replace(raw)
    return raw
