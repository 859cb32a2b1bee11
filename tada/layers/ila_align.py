"""ILA's implicit learnable alignment module (``message_attn`` in every visual block).

For each pair of adjacent frames (p, p+1) the module predicts one *interactive point* per frame,
builds a soft spatial mask around each point and re-weights the frames' patch tokens with it (the
"aligned frames"), and, from the same pair features, a temporally convolved "interactive feature".
Both go back into the block as residuals.  Conventions (see the reference NOTES §3-§4):

* points are ``[x1, y1, x2, y2]`` per pair: ``(x1, y1)`` in frame p, ``(x2, y2)`` in frame p+1;
  x = column, y = row (downwards); normalised grid coordinates where -1/+1 are the centres of the
  first/last patch (align-corners), in ``(-0.75, 0.75)`` after the ``0.75 * tanh`` head;
* in train mode each point is jittered by 9 fixed offsets and the 9 masks are averaged; in eval mode
  (what the official validation intends) one mask per point is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tada.trace import active_trace

__all__ = [
    "ALIGN_HIDDEN",
    "ILAAlign",
    "aligned_mask",
    "alignment_loss",
    "merge_pairs",
    "DISTURBANCE_OFFSETS",
    "POINT_SCALE",
]

# Interactive-block and point-head widths of every released ILA, whatever its ViT width.
ALIGN_HIDDEN = 256
_POINT_HIDDEN = 64

POINT_SCALE = 0.75
# Training-time jitter of each point, (dx, dy) in grid units, in the official order.
DISTURBANCE_OFFSETS = 0.2 * torch.tensor(
    [[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0], [1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=torch.float32
)
# Mask profile: flat plateau of radius 0.25 (grid units), then a linear fall-off of slope 1.5.
_PLATEAU = 0.25
_SLOPE = 1.5


def _profile(d: torch.Tensor) -> torch.Tensor:
    d = d.abs()
    return torch.where(d <= _PLATEAU, torch.ones_like(d), (1 - _SLOPE * (d - _PLATEAU)).clamp(min=0))


def aligned_mask(points: torch.Tensor, grid: int, offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Soft alignment masks for points ``(..., 2)`` = ``(x, y)`` on a ``grid x grid`` patch grid.

    ``mask[..., row, col] = w(g_row - y) * w(g_col - x)`` with ``g_i = 2i/(G-1) - 1``.  With ``offsets``
    ``(K, 2)`` every point is shifted by each offset and the K masks are averaged (training mode).
    Returns ``(..., grid, grid)`` in ``[0, 1]``.
    """
    if offsets is not None:
        points = points.unsqueeze(-2) + offsets.to(points)
    coords = torch.linspace(-1.0, 1.0, grid, device=points.device, dtype=points.dtype)
    wx = _profile(coords - points[..., 0:1])  # (..., G) over columns
    wy = _profile(coords - points[..., 1:2])  # (..., G) over rows
    mask = wy.unsqueeze(-1) * wx.unsqueeze(-2)
    return mask.mean(dim=-3) if offsets is not None else mask


def merge_pairs(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per-pair tensors ``(B, T-1, ...)`` of frame p (``first``) and p+1 (``second``) -> per frame ``(B, T, ...)``.

    Frame 0 only appears as the earlier frame of pair 0 and frame T-1 only as the later frame of the last
    pair; every middle frame is the mean of its two occurrences.
    """
    middle = (first[:, 1:] + second[:, :-1]) / 2
    return torch.cat([first[:, :1], middle, second[:, -1:]], dim=1)


def alignment_loss(pair: torch.Tensor) -> torch.Tensor:
    """ILA's training-only alignment loss of one module: mean over frame pairs of 1 - cos(pooled aligned
    tokens of the earlier frame, of the later frame), from its ``pair`` output ``(1, B, T-1, 2D)``.

    The official training adds this (a cosine-embedding loss with target +1) for every layer, weight 1,
    to the classification loss: it pulls each pair's two interactive points onto matching content.
    """
    width = pair.shape[-1] // 2
    pre, cur = pair[..., :width].reshape(-1, width), pair[..., width:].reshape(-1, width)
    return (1.0 - F.cosine_similarity(pre, cur, dim=-1, eps=1e-12)).mean()


class _DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 conv, each with BN and ReLU (K400 interactive block stem)."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.depthwise_conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.pointwise_conv = nn.Sequential(
            nn.Conv2d(channels, out_channels, 1), nn.BatchNorm2d(out_channels), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class ILAAlign(nn.Module):
    """One ILA module: interactive block, point prediction, masks, aligned frames, interactive feature.

    Args:
        width: ViT width D of the tokens it receives.
        grid: patch grid side G (tokens per frame = G*G + 1).
        patch_size: ViT patch size P (only used to report points in input pixels to a trace).
        ssv2: the SSV2-branch interactive block (two plain 3x3 convs) instead of the K400 one.
        hidden: channels of the interactive block (256 in every released model; its second half,
            ``hidden // 2``, feeds the point head and the interactive feature).  Smaller values are for
            tiny models trained here, where the fixed 256 would cost most of the compute.
    """

    def __init__(self, width: int, grid: int, patch_size: int, ssv2: bool = False, hidden: int = ALIGN_HIDDEN):
        super().__init__()
        if grid < 4:
            raise ValueError(f"ILA needs a patch grid of at least 4x4 (two 2x max-pools), got {grid}x{grid}")
        if hidden < 4 or hidden % 4:
            raise ValueError(
                f"ILA's interactive block needs a width divisible by 4 (its half feeds 2-group convs), got {hidden}"
            )
        self.width, self.grid, self.patch_size, self.ssv2 = width, grid, patch_size, ssv2
        self.hidden = hidden
        half = hidden // 2
        pair_channels = 2 * width
        if ssv2:
            self.interactive_block = nn.Sequential(
                nn.Conv2d(pair_channels, hidden, 3, padding=1),
                nn.BatchNorm2d(hidden),
                nn.ReLU(),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.BatchNorm2d(hidden),
                nn.ReLU(),
            )
        else:
            self.interactive_block = nn.Sequential(
                _DepthwiseSeparable(pair_channels, hidden),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                nn.BatchNorm2d(hidden),
                nn.ReLU(),
            )
        # (The SSV2 branch registers conv before fc; only the state_dict order differs.)
        if ssv2:
            self.conv = nn.Conv3d(half, half, kernel_size=(3, 1, 1), padding=(1, 0, 0))
            self.fc = nn.Linear(half, width)
        else:
            self.fc = nn.Linear(half, width)
            self.conv = nn.Conv3d(half, half, kernel_size=(3, 1, 1), padding=(1, 0, 0))
        # Indices follow the official Sequential so the state-dict keys match (9 is the reshape step).
        self.prediction_block = nn.Sequential(
            nn.Conv2d(hidden, half, 3, padding=1),
            nn.BatchNorm2d(half),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(half, half, 3, padding=1),
            nn.BatchNorm2d(half),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),
            nn.Identity(),
            nn.Conv1d(half, _POINT_HIDDEN, 1, groups=2),
            nn.ReLU(),
            nn.Conv1d(_POINT_HIDDEN, 4, 1, groups=2),
            nn.Tanh(),
        )
        # Not part of checkpoints (a plain attribute in the official code), but moves with .to().
        self.register_buffer("disturbance_offsets", DISTURBANCE_OFFSETS.clone(), persistent=False)
        # None: jitter the points in train mode only (the intended behaviour).  True/False forces it,
        # e.g. True in eval mode reproduces the official model when validate() is bypassed.
        self.disturb_points: bool | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero point head: every point starts at the grid centre, as in the official initialisation."""
        nn.init.zeros_(self.prediction_block[12].weight)
        nn.init.zeros_(self.prediction_block[12].bias)

    def _points(self, feat: torch.Tensor, batch: int, pairs: int) -> torch.Tensor:
        h = feat
        for layer in self.prediction_block[:9]:
            h = layer(h)  # (B*P, hidden/2, 1, 1) after the global max-pool
        h = h.reshape(batch, pairs, self.hidden // 2).transpose(1, 2)  # (B, hidden/2, P): the 1x1 convs act per pair
        for layer in self.prediction_block[10:]:
            h = layer(h)
        return h.transpose(1, 2) * POINT_SCALE  # (B, P, 4)

    def _interactive_feature(self, feat: torch.Tensor, batch: int, pairs: int, cls: torch.Tensor) -> torch.Tensor:
        g, half = self.grid, self.hidden // 2
        feat = feat.reshape(batch, pairs, self.hidden, g, g)
        # First half of the channels describes the earlier frame of the pair, second half the later one.
        per_frame = merge_pairs(feat[:, :, :half], feat[:, :, half:])  # (B, T, hidden/2, G, G)
        per_frame = self.conv(per_frame.transpose(1, 2))  # temporal conv over T: (B, hidden/2, T, G, G)
        frames = per_frame.shape[2]
        tokens = per_frame.permute(3, 4, 0, 2, 1).reshape(g * g, batch, frames, half)  # (N, B, T, hidden/2)
        tokens = torch.cat([cls, self.fc(tokens)], dim=0)  # (L, B, T, D)
        return tokens.reshape(tokens.shape[0], batch * frames, self.width)

    def forward(
        self, pre: torch.Tensor, cur: torch.Tensor, cls: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Align frame pairs.

        Args:
            pre: tokens of frames 0..T-2, ``(B, T-1, L, D)``.
            cur: tokens of frames 1..T-1, ``(B, T-1, L, D)``.
            cls: class tokens of every frame, ``(1, B, T, D)``.

        Returns:
            ``pair`` ``(1, B, T-1, 2D)`` pooled masked tokens (training loss only), ``aligned``
            ``(B, T, L, D)`` masked per-frame tokens, ``interactive`` ``(L, B*T, D)``.
        """
        batch, pairs, length, width = pre.shape
        g = self.grid
        if length != g * g + 1:
            raise ValueError(f"ILA module built for a {g}x{g} grid ({g * g + 1} tokens), got {length} tokens")
        pre_patches, cur_patches = pre[:, :, 1:], cur[:, :, 1:]  # (B, P, N, D)

        def to_grid(t: torch.Tensor) -> torch.Tensor:  # (B, P, N, D) -> (B*P, D, G, G), b outer, p inner
            return t.permute(0, 1, 3, 2).reshape(batch * pairs, width, g, g)

        feat = self.interactive_block(torch.cat([to_grid(pre_patches), to_grid(cur_patches)], dim=1))
        points = self._points(feat, batch, pairs)
        interactive = self._interactive_feature(feat, batch, pairs, cls)

        disturb = self.training if self.disturb_points is None else self.disturb_points
        offsets = self.disturbance_offsets if disturb else None
        mask_pre = aligned_mask(points[..., 0:2], g, offsets)  # (B, P, G, G)
        mask_cur = aligned_mask(points[..., 2:4], g, offsets)
        pre_masked = pre_patches * mask_pre.reshape(batch, pairs, g * g, 1)
        cur_masked = cur_patches * mask_cur.reshape(batch, pairs, g * g, 1)
        aligned = torch.cat([cls[0].unsqueeze(2), merge_pairs(pre_masked, cur_masked)], dim=2)  # (B, T, L, D)
        pair = torch.cat([pre_masked.sum(dim=2), cur_masked.sum(dim=2)], dim=-1).unsqueeze(0)

        tr = active_trace()
        if tr is not None:
            tr.record_points(
                self, points, mask_pre, mask_cur, input_size=g * self.patch_size, patch_size=self.patch_size
            )
        return pair, aligned, interactive
