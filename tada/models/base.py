"""Behaviour shared by every video classifier in the library."""

from __future__ import annotations

from torch import nn

from tada.labels import get_labels
from tada.registry import PretrainedCfg

__all__ = ["VideoClassifier", "cfg_get", "conv_temporal_positions"]


def cfg_get(cfg: dict | None, *path: str):
    """A value deep inside an official config dict (``cfg_get(cfg, "VIDEO", "HEAD", "NUM_CLASSES")``), or None."""
    node = cfg
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def conv_temporal_positions(num_frames: int, kernel: int, stride: int, padding: int) -> list[list[int]]:
    """Input frames covered by each output position of a temporal conv (kernel, stride, padding)."""
    out = (num_frames + 2 * padding - kernel) // stride + 1
    return [
        [f for f in range(t * stride - padding, t * stride - padding + kernel) if 0 <= f < num_frames]
        for t in range(out)
    ]


class VideoClassifier(nn.Module):
    """Base class: ``forward(x) -> logits``, plus a pretrained config and the temporal mapping.

    Subclasses override :meth:`temporal_positions` when their stem changes the temporal resolution.
    """

    pretrained_cfg: PretrainedCfg

    def temporal_positions(self, num_input_frames: int) -> list[list[int]]:
        """For each temporal position inside the network, the input frame indices it covers."""
        return [[t] for t in range(num_input_frames)]

    @property
    def labels(self) -> list[str]:
        """Class names of the attached label set (index = class id)."""
        cfg = getattr(self, "pretrained_cfg", None)
        if cfg is None:
            raise AttributeError("model has no pretrained_cfg; build it with tada.create_model")
        return get_labels(cfg.label_set)
