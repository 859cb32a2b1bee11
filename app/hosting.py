"""What a hosted app (a Hugging Face Space) needs beyond prediction: adding a model from the page, and a
preview of uploads the browser cannot play.

Adding a model.  A visitor of a Space cannot "convert a local file and restart".  The page therefore
lets the host (and, where the host allows it, any visitor) either name a Hub repo holding a converted
model, or upload an official checkpoint, which is converted with :func:`tada.convert.convert_checkpoint`
(its safe reader never unpickles code) into the weights cache and registered at once, without a
restart.  A checkpoint converted for a registered variant simply fills that variant's cache folder;
one converted without a variant becomes a new variant ``<architecture>.added-<name>``, found again in
the cache at the next start.

Who may add.  ``$TADA_MODEL_UPLOADS``: ``1`` lets everyone add models, ``0`` nobody; unset, adding is
on where the person at the page is the host (a local run) and off on a Space (``$SPACE_ID`` set).
``$TADA_MAX_CHECKPOINT_MB`` caps the upload size (default 1024).

Previews.  Chromium plays H.264/VP8/VP9/AV1 in mp4/webm/mov; an iPhone's HEVC .mov or an MJPEG .avi
shows "Video not playable" although the server decodes it.  :func:`browser_preview` writes a short,
small H.264 copy to show instead; the prediction still reads the original file.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np

import tada
from tada import convert, hub
from tada._pretrained import PretrainedCfg
from tada.errors import UserError

__all__ = [
    "ADDED_TAG_PREFIX",
    "HostingError",
    "add_checkpoint",
    "add_hub_repo",
    "browser_playable",
    "browser_preview",
    "max_checkpoint_bytes",
    "model_uploads_allowed",
    "register_added_models",
    "remove_added_model",
]

log = logging.getLogger("tada.app")

MODEL_UPLOADS_ENV = "TADA_MODEL_UPLOADS"
MAX_CHECKPOINT_ENV = "TADA_MAX_CHECKPOINT_MB"
DEFAULT_MAX_CHECKPOINT_MB = 1024
#: Tag prefix of variants made from checkpoints converted without a registered variant.
ADDED_TAG_PREFIX = "added-"
#: Tag prefix of variants read from a Hub repo.
HUB_TAG_PREFIX = "hub-"
CHECKPOINT_SUFFIXES = (".pyth", ".pth", ".pt", ".safetensors")

#: Codecs Chromium plays (in the containers below).
PLAYABLE_CODECS = {"h264", "vp8", "vp9", "av1"}
PLAYABLE_SUFFIXES = {".mp4", ".m4v", ".webm", ".mov"}
PREVIEW_SECONDS = 20.0
PREVIEW_SHORT_SIDE = 360

_lock = threading.Lock()


class HostingError(UserError, ValueError):
    """A model could not be added from the page; the message says why and what to do."""


# --- adding models ------------------------------------------------------------------------------------


def model_uploads_allowed() -> bool:
    """Whether the page offers adding models (see the module docstring)."""
    value = os.environ.get(MODEL_UPLOADS_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return not os.environ.get("SPACE_ID")


def max_checkpoint_bytes() -> int:
    """Largest checkpoint accepted from the page, in bytes."""
    try:
        mb = float(os.environ.get(MAX_CHECKPOINT_ENV, DEFAULT_MAX_CHECKPOINT_MB))
    except ValueError:
        mb = DEFAULT_MAX_CHECKPOINT_MB
    return int(mb * 1024 * 1024)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:48] or "model"


def _cfg_from_folder(folder: Path, tag: str, **changes: object) -> PretrainedCfg:
    """The registry entry of a converted model folder (what ``local-dir:`` would build), under ``tag``."""
    cfg = hub.read_model_cfg(folder)
    return cfg.replace(**{"tag": tag, "local_dir": None, "gdrive_id": None, "hf_hub_id": None, **changes})


def _register(cfg: PretrainedCfg) -> str:
    with _lock:
        tada.register_pretrained(cfg)
    log.info("model added: %s", cfg.name)
    return cfg.name


def add_checkpoint(path: str | os.PathLike, variant: str | None = None) -> str:
    """Convert an uploaded official checkpoint into the weights cache and register it; returns the name.

    With ``variant`` (a registered variant that needs weights) the checkpoint must be that variant's
    and fills its cache folder.  Without, the architecture is read from the checkpoint and a new variant
    ``<architecture>.added-<file name>`` is registered.
    """
    src = Path(path)
    if not src.is_file():
        raise HostingError("Upload a checkpoint file first.")
    size, cap = src.stat().st_size, max_checkpoint_bytes()
    if size > cap:
        raise HostingError(
            f"The checkpoint is {size / 2**20:.0f} MB; this server accepts up to {cap / 2**20:.0f} MB "
            f"(the host can raise ${MAX_CHECKPOINT_ENV})."
        )
    if src.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise HostingError(
            f"{src.name} is not a checkpoint: expected an official {', '.join(CHECKPOINT_SUFFIXES)} file."
        )
    if variant:
        cfg = tada.get_pretrained_cfg(variant)
        out = convert.convert_checkpoint(src, hub.cached_model_dir(cfg.name), variant=cfg.name)
        log.info("checkpoint %s converted into %s", src.name, out)
        return cfg.name
    # Convert next to the cache first: the architecture (and so the final folder name) is known only after.
    hub.cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=hub.cache_dir()))
    try:
        convert.convert_checkpoint(src, tmp / "model")
        stem = _slug(re.sub(r"^\d+_", "", src.stem))
        cfg = _cfg_from_folder(tmp / "model", ADDED_TAG_PREFIX + stem, notes=f"Added from the page ({src.name}).")
        target = hub.cached_model_dir(cfg.name)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        (tmp / "model").replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _register(cfg)


def add_hub_repo(repo_id: str) -> str:
    """Register the converted model of a Hub repo (``org/name``, from the Hub cache when offline)."""
    repo_id = (repo_id or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?", repo_id):
        raise HostingError(f"'{repo_id}' is not a Hub repo id; write it as org/name.")
    folder = hub.download_model_dir(repo_id)  # WeightsUnavailableError (a UserError) says why not
    try:
        cfg = _cfg_from_folder(
            folder,
            HUB_TAG_PREFIX + _slug(repo_id.replace("/", "_")),
            hf_hub_id=repo_id,
            notes=f"Added from the page (Hub repo {repo_id}).",
        )
    except (FileNotFoundError, ValueError) as exc:
        raise HostingError(f"Hub repo {repo_id} holds no model converted by tada: {exc}") from None
    if hub.weights_status(cfg) != "hub-cached":  # e.g. a revision after '@': read it as a local folder
        cfg = cfg.replace(hf_hub_id=None, local_dir=str(folder))
    return _register(cfg)


def remove_added_model(name: str) -> None:
    """Forget a variant added from the page (its cache folder stays; the next start registers it again)."""
    cfg = tada.get_pretrained_cfg(name)
    if not cfg.tag.startswith((ADDED_TAG_PREFIX, HUB_TAG_PREFIX)):
        raise HostingError(f"{name} was not added from the page.")
    with _lock:
        tada.deregister_pretrained(cfg.name)


def register_added_models() -> list[str]:
    """Register the variants added from the page in earlier runs (found in the weights cache)."""
    root = hub.cache_dir()
    names: list[str] = []
    if not root.is_dir():
        return names
    for folder in sorted(root.iterdir()):
        arch, _, tag = folder.name.partition(".")
        if not tag.startswith(ADDED_TAG_PREFIX) or not (folder / hub.WEIGHTS_NAME).is_file():
            continue
        try:
            tada.get_pretrained_cfg(folder.name)
            continue  # already registered
        except Exception:  # noqa: BLE001 - not registered yet: do it below
            pass
        try:
            names.append(_register(_cfg_from_folder(folder, tag)))
        except Exception as exc:  # noqa: BLE001 - a broken folder must not stop the app
            log.warning("cannot register %s: %s", folder, exc)
    return names


# --- previews -----------------------------------------------------------------------------------------


def browser_playable(path: str | os.PathLike, codec: str | None) -> bool:
    """Whether Chromium shows this upload itself (codec and container it plays)."""
    return (codec or "").lower() in PLAYABLE_CODECS and Path(path).suffix.lower() in PLAYABLE_SUFFIXES


def browser_preview(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """A short, small H.264 mp4 of ``path`` for the page (first :data:`PREVIEW_SECONDS` seconds, short side
    at most :data:`PREVIEW_SHORT_SIDE`), written with PyAV.  The name starts with ``preview-`` and a
    random token, so it cannot be guessed."""
    import av

    out_dir = Path(out_dir or tempfile.gettempdir())
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"preview-{uuid.uuid4().hex}.mp4"
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        fps = Fraction(rate).limit_denominator(1000)
        if not 1 <= fps <= 120:
            fps = Fraction(25)
        frames = src.decode(stream)
        first = next(frames, None)
        if first is None:
            raise HostingError("The clip has no frame to preview.")
        # PyAV reports the display rotation (counter-clockwise) without applying it: turn the frames upright.
        k = int(round((getattr(first, "rotation", 0) or 0) / 90.0)) % 4
        w, h = (first.height, first.width) if k % 2 else (first.width, first.height)
        scale = min(1.0, PREVIEW_SHORT_SIDE / max(1, min(w, h)))
        ow, oh = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
        with av.open(str(out), "w") as dst:
            vs = dst.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = ow, oh, "yuv420p"
            vs.options = {"preset": "veryfast", "crf": "28", "movflags": "+faststart"}
            limit = int(PREVIEW_SECONDS * fps)
            for i, frame in enumerate(itertools.chain([first], frames)):
                if i >= limit:
                    break
                sw, sh = (oh, ow) if k % 2 else (ow, oh)
                img = frame.to_ndarray(format="rgb24", width=sw, height=sh)
                img = np.rot90(img, k) if k else img
                for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    dst.mux(packet)
            for packet in vs.encode():
                dst.mux(packet)
    return out
