"""``VideoError``: one exception for every way a user's file can fail, with a message a person understands.

Kept free of heavy imports: it is loaded inside the decoder worker process too.
"""

from __future__ import annotations

__all__ = ["VideoError", "ERROR_CODES"]

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


class VideoError(Exception):
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
