"""Per-frame 2-D baseline: a small ConvNeXt (timm) applied to every frame, features averaged over time.

It has no temporal modelling at all: the logits of a clip are those of the mean per-frame feature, so
they do not change when the frames are shuffled or reversed.  It is the control for the bundled
temporal models on the motion task (it cannot tell ``moving left`` from ``moving right``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from timm.models.convnext import ConvNeXt
from torch import nn

from tada._pretrained import PretrainedCfg
from tada._registry import register_model
from tada.models.base import VideoClassifier

__all__ = ["Frame2D", "frame2d"]


class Frame2D(VideoClassifier):
    """``forward(x (B, 3, T, H, W)) -> logits (B, K)``: 2-D ConvNeXt per frame, mean over T, linear head."""

    family = "frame2d"

    def __init__(
        self,
        num_classes: int = 11,
        num_frames: int = 8,
        dims: Sequence[int] = (24, 48, 96, 192),
        depths: Sequence[int] = (1, 1, 2, 1),
        drop_path_rate: float = 0.0,
        layer_scale_init: float = 1e-6,
        head_dropout: float = 0.0,
        in_channels: int = 3,
    ):
        super().__init__()
        self.num_classes, self.num_frames = num_classes, num_frames
        # num_classes=0: timm returns the pooled, normalised feature (B*T, C).
        self.backbone = ConvNeXt(
            in_chans=in_channels,
            num_classes=0,
            depths=tuple(depths),
            dims=tuple(dims),
            drop_path_rate=drop_path_rate,
            ls_init_value=layer_scale_init,
        )
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(self.backbone.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame features averaged over time, ``(B, C)``."""
        if x.dim() != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return self.backbone(frames).reshape(b, t, -1).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.forward_features(x)))

    def default_pretrained_cfg(self) -> PretrainedCfg:
        """Small frames (64 px) by default, as the motion-task baseline."""
        return super().default_pretrained_cfg().replace(test_scale=64, crop_size=64)


@register_model
def frame2d(**kwargs: Any) -> Frame2D:
    """Per-frame 2-D ConvNeXt baseline (``dims``, ``depths``, ``num_classes``, ``num_frames``)."""
    return Frame2D(**kwargs)
