"""Uploads that do not pile up: how long Gradio keeps them, a per-client quota, readable refusals.

Gradio stores every upload under its cache directory and, unless told otherwise, keeps it until the
server stops; its upload route also takes any number of files up to ``max_file_size`` each.  Here:

* :func:`cache_sweep` is Gradio's own ``delete_cache=(frequency, age)`` (``gr.Blocks``): every
  ``frequency`` seconds the files this app was sent or made more than ``age`` seconds ago are deleted
  (``$TADA_CACHE_SWEEP="frequency,age"``, default ``600,3600``; ``0`` keeps them).
* :class:`UploadGuard`, an ASGI middleware given to ``launch(app_kwargs={"middleware": ...})``,
  refuses a multipart upload (HTTP 429, with a sentence saying when to retry) once a client has sent
  ``$TADA_UPLOAD_QUOTA_MB`` (default 1024) within the last ``age`` seconds: files older than that
  are gone, so no client holds more than its quota on disk.  A body without a declared length gets
  411 (its size could not be counted first), and a form with a file part but no file name (which
  Gradio's route answers with a bare HTTP 500) gets 400 with a message.

A client is its IP address; behind the proxy of a Hugging Face Space (``$SPACE_ID`` set) or with
``$TADA_TRUST_PROXY=1`` it is the last address of ``X-Forwarded-For``, the one the proxy itself
added (earlier ones are the client's to write).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["UploadGuard", "cache_sweep", "sweep_folder", "upload_quota_bytes"]

log = logging.getLogger("tada.app")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

DEFAULT_SWEEP = (600, 3600)
DEFAULT_QUOTA_MB = 1024


def cache_sweep() -> tuple[int, int] | None:
    """Gradio's ``delete_cache`` pair ``(frequency, age)`` in seconds from ``$TADA_CACHE_SWEEP``
    (``"frequency,age"``; default 600,3600); None (keep everything) for ``0`` or a bad value."""
    text = os.environ.get("TADA_CACHE_SWEEP", "").strip()
    if not text:
        return DEFAULT_SWEEP
    try:
        parts = [int(float(p)) for p in text.split(",")]
    except ValueError:
        log.warning("TADA_CACHE_SWEEP=%r is not 'frequency,age' in seconds; uploads are kept", text)
        return None
    if len(parts) == 1:
        parts = [min(parts[0], DEFAULT_SWEEP[0]), parts[0]]
    frequency, age = parts[:2]
    return (frequency, age) if frequency > 0 and age > 0 else None


def sweep_folder(folder: str | os.PathLike, age: float | None = None) -> int:
    """Delete the files directly in ``folder`` older than ``age`` seconds (default: the sweep age;
    nothing when sweeping is off): for files the app writes outside Gradio's cache, such as
    browser previews.  Returns how many were deleted."""
    if age is None:
        sweep = cache_sweep()
        if sweep is None:
            return 0
        age = sweep[1]
    cutoff = time.time() - age
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.remove(entry.path)
                removed += 1
        except OSError:  # gone already, or in use elsewhere: the next sweep tries again
            continue
    return removed


def upload_quota_bytes() -> int:
    """Bytes one client may upload per sweep age (``$TADA_UPLOAD_QUOTA_MB``; 0 = no quota)."""
    try:
        return int(float(os.environ.get("TADA_UPLOAD_QUOTA_MB", DEFAULT_QUOTA_MB)) * 2**20)
    except ValueError:
        return DEFAULT_QUOTA_MB * 2**20


def _trust_proxy() -> bool:
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("TADA_TRUST_PROXY", "") == "1"


class UploadGuard:
    """ASGI middleware: a per-client upload quota over a sliding window, and readable 4xx answers for
    malformed uploads (see the module docstring).

    Args:
        app: the wrapped ASGI app (Starlette passes it).
        quota: bytes per client per ``window`` (default :func:`upload_quota_bytes`; 0 = no quota).
        window: seconds (default: the sweep age of :func:`cache_sweep`, else one hour).
    """

    def __init__(self, app: ASGIApp, quota: int | None = None, window: float | None = None) -> None:
        self.app = app
        self.quota = upload_quota_bytes() if quota is None else quota
        sweep = cache_sweep()
        self.window = float(window if window is not None else (sweep[1] if sweep else 3600))
        self._sent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not _is_multipart(scope):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is None:
            await _plain(send, 411, "Uploads must declare their size (a Content-Length header).")
            return
        refusal = self._admit(_client(scope), length)
        if refusal:
            await _plain(send, 429, refusal)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except TypeError:
            # Gradio's upload route raises TypeError ("File is not an instance of GradioUploadFile")
            # for a "files" part without a file name; that is the sender's mistake, not a server fault.
            if started or not scope.get("path", "").endswith("/upload"):
                raise
            log.info("refused an upload without a file name", exc_info=True)
            await _plain(send, 400, "Each uploaded file needs a file name (a 'files' form part with filename=...).")

    def _admit(self, client: str, length: int) -> str:
        """Record ``length`` bytes for ``client``, or say why not (empty string: admitted)."""
        if self.quota <= 0:
            return ""
        now = time.monotonic()
        with self._lock:
            sent = self._sent[client]
            while sent and sent[0][0] <= now - self.window:
                sent.popleft()
            used = sum(n for _, n in sent)
            if used + length > self.quota:
                wait = (sent[0][0] + self.window - now) if sent else self.window
                log.info("upload quota: refused %d bytes from %s (%d used)", length, client, used)
                return (
                    f"Upload limit reached: {self.quota / 2**20:.0f} MB per {_span(self.window)} per client "
                    f"({used / 2**20:.0f} MB used, this file is {length / 2**20:.1f} MB). "
                    f"Try again in {_span(max(1.0, wait))}."
                )
            sent.append((now, length))
            for other in [k for k, v in self._sent.items() if not v]:  # forget clients with nothing left
                del self._sent[other]
            return ""


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            return v
    return None


def _is_multipart(scope: Scope) -> bool:
    return (_header(scope, b"content-type") or b"").lower().startswith(b"multipart/form-data")


def _content_length(scope: Scope) -> int | None:
    try:
        value = _header(scope, b"content-length")
        return int(value) if value is not None else None
    except ValueError:
        return None


def _client(scope: Scope) -> str:
    if _trust_proxy():
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            return forwarded.decode("latin-1").split(",")[-1].strip()
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _plain(send: Callable, status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
