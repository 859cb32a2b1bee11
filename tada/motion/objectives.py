"""Training objectives beside the classification loss: the auxiliary object-mask (and motion) head.

The lab notes behind each choice (what failed without it, the weights tried) are in the model cards
``assets/models/*/README.md``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AUX_FLOW_DEFAULT",
    "AUX_MASK_DEFAULT",
    "AUX_POINTS_DEFAULT",
    "ObjectMaskAux",
    "PointAux",
    "early_layer",
]


class ObjectMaskAux(nn.Module):
    """Training-only auxiliary loss: a 1x1 conv on early features (the first stage of a ConvNeXt, the
    first block of ILA's vision transformer) predicts, per cell, the fraction of the cell covered by the
    moving object (BCE against the generator's masks, pooled to the feature grid) and, with ``flow > 0``,
    the object's mean motion in the cell (smooth L1 against :func:`tada.motion.generator.object_flow`,
    weighted by the cell's coverage, added with weight ``flow``).  Not part of the model and never saved.

    Why the mask: with global average pooling the small moving object is a few percent of a ConvNeXt's
    pooled feature, and from random init both ConvNeXts (tiny TAdaConvNeXtV2 and the 2-D baseline)
    collapsed to input-independent features and stayed at chance (ln 11 loss) for thousands of steps at
    every learning rate and layer-scale init tried; with this loss they leave chance within a few hundred
    steps.  The tiny ILA stayed at chance for 4000 steps without it.  Why the flow: the TAdaConvNeXtV2
    learnt every class but the direction of rotation (clockwise vs anticlockwise near 50 %), which needs
    the local motion around the object, not only where the object is.
    """

    def __init__(self, model: nn.Module, num_frames: int, flow: float = 0.0):
        super().__init__()
        layer = early_layer(model)
        channels = [m for m in layer.modules() if isinstance(m, nn.LayerNorm)][-1].normalized_shape[0]
        self.num_frames = num_frames
        self.flow = flow
        self.head = nn.Conv3d(channels, 3 if flow else 1, 1)
        self._features: torch.Tensor | None = None
        self._hook = layer.register_forward_hook(lambda _m, _i, out: setattr(self, "_features", out))

    def loss(self, masks: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of the last forward's early features against ``masks`` (N, T, H, W) and ``flow``
        (N, T, H, W, 2), the latter required when the module was built with ``flow > 0``."""
        f = self._features
        if f is None:
            raise RuntimeError("run the model forward before ObjectMaskAux.loss")
        if f.dim() == 4:  # per-frame 2-D backbone: (N*T, C, h, w) -> (N, C, T, h, w)
            f = f.reshape(-1, self.num_frames, *f.shape[1:]).transpose(1, 2)
        elif f.dim() == 3:  # transformer tokens (1 + h*w, N*T, C), class token first -> (N, C, T, h, w)
            side = math.isqrt(f.shape[0] - 1)
            f = f[1:].permute(1, 2, 0).reshape(-1, self.num_frames, f.shape[2], side, side).transpose(1, 2)
        self._features = None
        grid = tuple(f.shape[2:])
        cover = F.adaptive_avg_pool3d(masks[:, None], grid)  # (N, 1, t, h, w)
        out = self.head(f)
        loss = F.binary_cross_entropy_with_logits(out[:, :1], cover)
        if self.flow:
            if flow is None:
                raise ValueError("this ObjectMaskAux predicts motion: pass the batch's flow")
            # Mean motion of the object's pixels in each cell, in units of 1/16 of the frame side.
            moved = F.adaptive_avg_pool3d(flow.permute(0, 4, 1, 2, 3) * (16.0 / masks.shape[-1]), grid)
            target = moved / cover.clamp_min(1e-3)
            err = F.smooth_l1_loss(out[:, 1:], target, reduction="none").sum(1, keepdim=True)
            loss = loss + self.flow * (err * cover).sum() / cover.sum().clamp_min(1e-3)
        return loss

    def remove(self) -> None:
        self._hook.remove()


def early_layer(model: nn.Module) -> nn.Module:
    """The layer :class:`ObjectMaskAux` reads: a ConvNeXt's first stage or ILA's first vision block."""
    backbone = getattr(model, "backbone", None)
    if backbone is not None and hasattr(backbone, "stages"):  # TAdaConvNeXtV2 and timm's ConvNeXt
        return backbone.stages[0]
    visual = getattr(model, "visual", None)
    if visual is not None and hasattr(visual, "transformer"):  # ILA (CLIP ViT)
        return visual.transformer.resblocks[0]
    raise ValueError(f"no early feature map known for {type(model).__name__}; train it with --aux-mask 0")


class PointAux:
    """Training-only loss on ILA's interactive points: every ILA module's two points of each adjacent-frame
    pair (p, p+1) are pulled towards the moving object's true centre in frame p and p+1 (mean Euclidean
    distance in normalised grid units, smoothed at 0; targets clipped to the points' reachable range
    ``POINT_SCALE``).  Not part of the model: it reads the point heads' outputs through forward hooks on
    their final ``tanh`` and is never saved; the model's forward code is the released one.

    Why: ILA's own alignment loss only asks the two masked frames to look alike, which two points parked
    on the same background satisfy; with it alone the tiny ILA's points stayed farther from the object than
    a point fixed at the frame centre (see the model card's lab notes).
    """

    def __init__(self, model: nn.Module):
        from tada.layers.ila_align import ILAAlign

        self.aligns = [m for m in model.modules() if isinstance(m, ILAAlign)]
        if not self.aligns:
            raise ValueError(f"{type(model).__name__} has no ILA modules; train it with --aux-points 0")
        self._outputs: dict[int, torch.Tensor] = {}
        self._hooks = [
            m.prediction_block[-1].register_forward_hook(lambda _m, _i, out, k=k: self._outputs.__setitem__(k, out))
            for k, m in enumerate(self.aligns)
        ]

    def loss(self, centers: torch.Tensor) -> torch.Tensor:
        """Mean distance of the last forward's points to ``centers`` (N, T, 2), x, y in input pixels."""
        from tada.layers.ila_align import POINT_SCALE

        if len(self._outputs) != len(self.aligns):
            raise RuntimeError("run the model forward before PointAux.loss")
        outputs, self._outputs = self._outputs, {}
        losses = []
        for k, m in enumerate(self.aligns):
            size = m.grid * m.patch_size
            # Input pixels -> the points' grid units (-1/+1: centres of the first/last patch), as tada.trace.
            target = (centers - size / 2) * (2.0 / (size - m.patch_size))
            target = target.clamp(-0.98 * POINT_SCALE, 0.98 * POINT_SCALE)
            target = torch.stack([target[:, :-1], target[:, 1:]], dim=2)  # (N, T-1, 2 points, 2)
            points = (outputs[k].transpose(1, 2) * POINT_SCALE).reshape(target.shape)  # head output (N, 4, T-1)
            losses.append(((points - target).pow(2).sum(-1) + 1e-4).sqrt().mean())
        return torch.stack(losses).mean()

    def discard(self) -> None:
        """Drop the last forward's points unused (a step without the loss; frees their graph)."""
        self._outputs = {}

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()


#: Auxiliary mask-loss weight per bundled architecture (``--aux-mask`` overrides); see :class:`ObjectMaskAux`.
AUX_MASK_DEFAULT = {"tadaconvnextv2_motion": 1.0, "frame2d_motion": 1.0, "ila_motion": 1.0}
#: Weight of its motion term (``--aux-flow`` overrides); the per-frame 2-D baseline cannot see motion.
AUX_FLOW_DEFAULT = {"tadaconvnextv2_motion": 1.0, "ila_motion": 1.0}
#: Weight of the interactive-point loss (``--aux-points`` overrides; see :class:`PointAux`): ILA only.
AUX_POINTS_DEFAULT = {"ila_motion": 1.0}
