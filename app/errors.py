"""What the user reads when something fails: :class:`AppError` for the app's own checks, and
:func:`user_message`, the one mapping of any exception to a sentence (never a traceback).

Errors are told apart by type (:mod:`tada.errors`): a :class:`~tada.errors.UserError` shows its own
message; anything else is "something went wrong" and its traceback goes to the server log.
"""

from __future__ import annotations

import torch

from tada.errors import Cancelled, UserError

__all__ = ["AppError", "Cancelled", "MAX_MESSAGE_CHARS", "is_unexpected", "user_message"]

#: Longest message shown; messages quote user input through :func:`tada.errors.quote`, and this is
#: the last guard against one that does not (a page must never carry a 200 kB error).
MAX_MESSAGE_CHARS = 1000


class AppError(UserError):
    """A problem the user can fix (bad input, model that needs weights); the message says how."""


def user_message(exc: BaseException) -> str:
    """The sentence shown to the user for ``exc`` (never a traceback)."""
    if isinstance(exc, UserError):
        text = str(exc).strip() or type(exc).__name__
        if len(text) > MAX_MESSAGE_CHARS:
            text = f"{text[:MAX_MESSAGE_CHARS]}… (message shortened from {len(text):,} characters)"
        return text
    if isinstance(exc, Cancelled):
        return "Stopped."
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "The GPU ran out of memory for this request. Try a single view or fewer frames."
    if isinstance(exc, MemoryError):
        return "The server ran out of memory for this request. Try a single view or fewer frames."
    return f"Something went wrong on the server ({type(exc).__name__}). The details are in the server log."


def is_unexpected(exc: BaseException) -> bool:
    """True when ``exc`` is a bug or an environment problem (its traceback belongs in the log)."""
    return user_message(exc).startswith("Something went wrong")
