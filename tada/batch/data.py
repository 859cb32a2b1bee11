"""Decoding for batch runs: a map-style dataset over list entries, read by DataLoader workers.

Each item is read with :func:`tada.video.load_clip` (the app's reader: probe, official sampling,
decode in the isolated decoder process, :class:`~tada.video.VideoTransform`), so a batch row and the
app see the same tensor for the same file.  A file that cannot be used becomes an item with the video
layer's message in ``error``; nothing a file does raises out of a worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from tada.errors import UserError
from tada.video import VideoLimits, load_clip

__all__ = ["Item", "VideoDataset", "collate", "make_loader"]

#: ``load_clip`` keeps display frames no larger than this; at this size it keeps the decoded frames
#: as they are (no resize work), and :class:`VideoDataset` drops them before they cross processes.
_NO_DISPLAY_RESIZE = 1 << 30


@dataclass
class Item:
    """One decoded video (or why it could not be decoded)."""

    index: int  # position in the list
    tensor: torch.Tensor | None = None  # (V, *layout) float32 model input
    views: list[tuple[int, str]] = field(default_factory=list)
    indices: list[list[int]] = field(default_factory=list)  # (num_clips, T) source frame indices
    decode_s: float = 0.0
    error: str | None = None
    error_code: str | None = None
    warnings: tuple[str, ...] = ()


class VideoDataset(torch.utils.data.Dataset):
    """``dataset[k]`` reads video ``indices[k]`` of ``paths`` as the model was tested.

    Args:
        paths: every path of the list (position = list index).
        indices: the list positions this dataset reads (a rank's shard, minus finished ones).
        cfg: the model's pretrained config.
        views: ``"single"`` or ``"official"`` (clips x crops of ``cfg``).
        limits: the video layer's limits (size, duration, decode time).
    """

    def __init__(
        self,
        paths: list[str],
        indices: list[int],
        cfg: Any,
        views: str = "single",
        limits: VideoLimits | None = None,
    ) -> None:
        self.paths, self.indices, self.cfg, self.views = paths, list(indices), cfg, views
        self.limits = limits or VideoLimits()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Item:
        index = self.indices[k]
        t0 = time.perf_counter()
        try:
            clip = load_clip(self.paths[index], self.cfg, self.views, self.limits, display_size=_NO_DISPLAY_RESIZE)
        except UserError as exc:  # VideoError: the file, not the run, has a problem
            code = getattr(exc, "code", None)
            return Item(index, decode_s=time.perf_counter() - t0, error=str(exc), error_code=code)
        except Exception as exc:  # noqa: BLE001 - one bad file never ends a rank
            message = f"The video could not be read ({type(exc).__name__}: {exc})."
            return Item(index, decode_s=time.perf_counter() - t0, error=message, error_code="decode_failed")
        return Item(
            index,
            tensor=clip.tensor,
            views=[(int(c), str(name)) for c, name in clip.views],
            indices=clip.indices.astype(int).tolist(),
            decode_s=time.perf_counter() - t0,
            warnings=tuple(clip.warnings),
        )


def collate(items: list[Item]) -> list[Item]:
    """Keep items as they are: their view counts differ (errors have none)."""
    return items


def make_loader(dataset: VideoDataset, batch_size: int, workers: int, prefetch: int = 4) -> torch.utils.data.DataLoader:
    """A DataLoader decoding in ``workers`` processes, ``prefetch`` batches ahead per worker, in order."""
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(prefetch_factor=prefetch, persistent_workers=False)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate, **kwargs
    )
