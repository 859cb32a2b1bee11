"""One exception hierarchy for TAda Lab.

``TadaError`` is the base of every error the library raises on purpose. ``UserError`` marks the
ones whose message is written for an end user (what went wrong and how to fix it): the app shows
it as it is and the CLI prints it as one ``error:`` line. Anything else is a bug or an environment
problem and is reported as "something went wrong" with the details in the log. Callers decide by
type (``isinstance(exc, UserError)``), never by class name.

Each class keeps the built-in base it always had (``KeyError``, ``ValueError`` ...), so code that
catches those still works. Kept free of heavy imports: the decoder worker process loads it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = [
    "TadaError",
    "UserError",
    "Cancelled",
    "stoppable",
    "check_stopped",
    "quote",
    "ModelNotFoundError",
    "WeightsUnavailableError",
    "ConversionError",
    "CheckpointError",
    "UnsafeCheckpointError",
    "CheckpointMismatchError",
    "CheckpointTooLargeError",
    "ModelConfigError",
    "TextTooLongError",
    "OutOfVocabularyError",
    "TooManyPhrasesError",
    "OpenVocabularyUnavailableError",
    "FrameCountError",
    "SettingsError",
    "VideoError",
    "ERROR_CODES",
    "is_user_error",
]


class TadaError(Exception):
    """Base of every error TAda Lab raises on purpose."""


class UserError(TadaError):
    """Marker: the message is written for the end user and says how to fix the problem."""


class Cancelled(TadaError):
    """The user pressed Stop; raised from progress callbacks so long work ends early."""


# The Stop of the job running in this context (app.jobs sets it); long loops deep in the library
# (text encoding) call check_stopped() between chunks, so Stop ends them without a progress callback.
_stop_event: ContextVar[threading.Event | None] = ContextVar("tada_stop_event", default=None)


@contextlib.contextmanager
def stoppable(event: threading.Event) -> Iterator[None]:
    """Within this block, :func:`check_stopped` raises :class:`Cancelled` once ``event`` is set."""
    token = _stop_event.set(event)
    try:
        yield
    finally:
        _stop_event.reset(token)


def check_stopped() -> None:
    """Raise :class:`Cancelled` when the job running in this context was stopped (no-op outside a job)."""
    event = _stop_event.get()
    if event is not None and event.is_set():
        raise Cancelled()


def quote(value: object, limit: int = 80) -> str:
    """``value`` as messages quote user input: ``repr`` of at most ``limit`` characters.

    A longer value is cut and its length given (``'xxxx…' (10000 chars)``), so a 10 kB model name or
    a pasted essay never makes a 10 kB error message; ``repr`` keeps newlines from breaking the line.
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}…({len(text)} chars)"


def is_user_error(exc: BaseException) -> bool:
    """True when ``str(exc)`` is meant to be shown to a person as it is."""
    return isinstance(exc, UserError)


# --- models and weights --------------------------------------------------------------------------


class ModelNotFoundError(UserError, KeyError):
    """An unknown architecture or variant name (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0]) if self.args else ""


class WeightsUnavailableError(UserError, RuntimeError):
    """Pretrained weights cannot be obtained (offline, download failed); the message says what to do."""


class ConversionError(UserError, ValueError):
    """An official checkpoint cannot be converted as asked (wrong variant, bad override ...)."""


class CheckpointError(TadaError, RuntimeError):
    """A checkpoint file cannot be read or used."""


class UnsafeCheckpointError(CheckpointError):
    """The file's pickle references something other than tensors, containers and numbers."""


class CheckpointTooLargeError(UserError, CheckpointError):
    """A checkpoint's tensors are larger than :data:`tada.limits.MAX_MODEL_BYTES` or have an absurd dimension."""


class ModelConfigError(UserError, ValueError):
    """A model's construction arguments are invalid or out of bounds (``tada.limits``); the message
    names the argument, its bound and what to change."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's keys or shapes do not match the model; the message names them."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[tuple[str, tuple, tuple]]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_preview(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_preview(unexpected)}")
        if mismatched:
            shown = [f"{k} (checkpoint {list(a)} vs model {list(b)})" for k, a, b in mismatched]
            parts.append(f"{len(mismatched)} shape mismatches: {_preview(shown)}")
        super().__init__("Checkpoint does not match the model: " + "; ".join(parts))


def _preview(items: list[str], n: int = 8) -> str:
    shown = [i if len(i) <= 120 else i[:120] + f"…({len(i)} chars)" for i in items[:n]]  # crafted key names
    return ", ".join(shown) + (f", ... (+{len(items) - n} more)" if len(items) > n else "")


class FrameCountError(TadaError, ValueError):
    """A clip's frame count differs from the one a TAdaFormer was built (and trained) for."""


class SettingsError(UserError, ValueError):
    """A setting a user chose is out of range (a stride, a frame count ...); the message gives the range."""


# --- text (ILA class phrases) ----------------------------------------------------------------------


class TextTooLongError(UserError, ValueError):
    """A text needs more tokens than the text encoder's context holds."""


class OutOfVocabularyError(UserError, ValueError):
    """A phrase uses words the bundled tiny ILA has no embedding for."""


class TooManyPhrasesError(UserError, ValueError):
    """More class phrases than :data:`tada.limits.MAX_CLASS_PHRASES` in one request."""


class OpenVocabularyUnavailableError(UserError, RuntimeError):
    """The model has no text side (ILA's SSv2 form classifies with a linear head)."""


# --- video input -----------------------------------------------------------------------------------

# Machine code -> what it means (for UIs that want to branch, e.g. to show an upload hint).
ERROR_CODES: dict[str, str] = {
    "not_found": "the path does not exist or is not a file",
    "empty": "the file is 0 bytes long",
    "too_large": "the file is larger than VideoLimits.max_bytes",
    "image": "the file is a still image, not a video",
    "not_video": "the file is not a media file that can be read (text, unknown format, damaged header)",
    "no_video_stream": "the file holds no video stream (e.g. audio only)",
    "no_frames": "the video stream holds no frame that can be decoded",
    "truncated": "the file is cut off and nothing in it can be recovered",
    "unsupported_codec": "no decoder is available for the video codec",
    "decode_failed": "the frames are damaged beyond repair",
    "too_long": "the clip is longer than VideoLimits.max_duration_s",
    "too_high_resolution": "the picture is larger than VideoLimits.max_pixels",
    "decoder_crashed": "the decoder process died on this file",
    "timeout": "decoding took longer than VideoLimits.decode_timeout_s",
}


class VideoError(UserError):
    """A video cannot be used. ``str(err)`` is meant for the end user; ``code`` is for programs.

    Args:
        message: a sentence a non-expert understands ("This file has no video stream.").
        code: short machine code, one of :data:`ERROR_CODES`.
        detail: optional technical detail (decoder message) for logs, not shown by ``str``.
    """

    def __init__(self, message: str, code: str = "not_video", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = f", detail={self.detail!r}" if self.detail else ""
        return f"VideoError({self.message!r}, code={self.code!r}{extra})"

    def __reduce__(self):  # crosses the worker-process boundary intact
        return (type(self), (self.message, self.code, self.detail))
