"""``VideoError``: one exception for every way a user's file can fail (defined in :mod:`tada.errors`).

Kept free of heavy imports: it is loaded inside the decoder worker process too.
"""

from __future__ import annotations

from tada.errors import ERROR_CODES, VideoError

__all__ = ["VideoError", "ERROR_CODES"]
