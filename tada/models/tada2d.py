"""TAda2D: ResNet-50 whose 3x3 convolutions are TAdaConv V1 (Huang et al., ICLR 2022).

Faithful to the official ``ResNet3D`` + ``TAda2DBlock`` (NOTES.md §2): no stem max-pool (the first
block of every stage, conv2 included, strides by 2), routing on the output of the 1x1 reduction,
``cin`` calibration, and the ``b_bn(o) + b_avgpool_bn(avgpool_t(o))`` temporal aggregation with
zero-padded average pooling.  State-dict keys are the official ones (``backbone.conv2.res_1...``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tada._pretrained import generate_default_cfgs
from tada._registry import register_arch_inferrer, register_model
from tada.layers.tadaconv import BaseHead, RouteFuncMLP, TAdaConv2d, set_calibration_impl
from tada.models._tadaconv_release import release
from tada.models.base import VideoClassifier, cfg_get, route_kernels_from, route_ratio_from

__all__ = ["TAda2D", "tada2d_r50", "infer_tada2d"]


def _bn(channels: int, eps: float, momentum: float) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=eps, momentum=momentum)


class TAda2DBranch(nn.Module):
    """Bottleneck branch: 1x1 -> TAdaConv 3x3 (+ temporal avg-pool branch) -> 1x1."""

    def __init__(
        self,
        dim_in: int,
        width: int,
        dim_out: int,
        stride: int,
        route_ratio: int,
        route_kernels: Sequence[int],
        pool_k: Sequence[int],
        bn_eps: float,
        bn_mmt: float,
        calibration: str,
    ):
        super().__init__()
        self.a = nn.Conv3d(dim_in, width, kernel_size=1, bias=False)
        self.a_bn = _bn(width, bn_eps, bn_mmt)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = TAdaConv2d(
            width,
            width,
            kernel_size=(1, 3, 3),
            stride=(1, stride, stride),
            padding=(0, 1, 1),
            bias=False,
            cal_dim="cin",
            calibration=calibration,
        )
        self.b_rf = RouteFuncMLP(width, ratio=route_ratio, kernels=route_kernels, bn_eps=bn_eps, bn_mmt=bn_mmt)
        self.b_bn = _bn(width, bn_eps, bn_mmt)
        pool_k = tuple(int(k) for k in pool_k)
        # count_include_pad=True: boundary frames are averaged with a zero frame (official behaviour).
        self.b_avgpool = nn.AvgPool3d(pool_k, stride=1, padding=tuple(k // 2 for k in pool_k), count_include_pad=True)
        self.b_avgpool_bn = _bn(width, bn_eps, bn_mmt)
        self.b_relu = nn.ReLU(inplace=True)
        self.c = nn.Conv3d(width, dim_out, kernel_size=1, bias=False)
        self.c_bn = _bn(dim_out, bn_eps, bn_mmt)
        nn.init.zeros_(self.b_avgpool_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a_relu(self.a_bn(self.a(x)))
        o = self.b(x, self.b_rf(x))
        x = self.b_relu(self.b_bn(o) + self.b_avgpool_bn(self.b_avgpool(o)))
        return self.c_bn(self.c(x))


class TAda2DBlock(nn.Module):
    """Residual block: ``ReLU(shortcut(x) + conv_branch(x))``."""

    def __init__(self, dim_in: int, width: int, dim_out: int, stride: int, **branch_kwargs: Any):
        super().__init__()
        bn_eps, bn_mmt = branch_kwargs["bn_eps"], branch_kwargs["bn_mmt"]
        if dim_in != dim_out or stride > 1:
            self.short_cut = nn.Conv3d(dim_in, dim_out, kernel_size=1, stride=(1, stride, stride), bias=False)
            self.short_cut_bn = _bn(dim_out, bn_eps, bn_mmt)
        else:
            self.short_cut = None
        self.conv_branch = TAda2DBranch(dim_in, width, dim_out, stride, **branch_kwargs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.short_cut_bn(self.short_cut(x)) if self.short_cut is not None else x
        return self.relu(shortcut + self.conv_branch(x))


class Base2DStem(nn.Module):
    """Conv (1, 7, 7) stride (1, 2, 2) -> BN -> ReLU; no max-pool."""

    def __init__(self, dim_out: int, bn_eps: float, bn_mmt: float, in_channels: int = 3):
        super().__init__()
        self.a = nn.Conv3d(in_channels, dim_out, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False)
        self.a_bn = _bn(dim_out, bn_eps, bn_mmt)
        self.a_relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a_relu(self.a_bn(self.a(x)))


class ResNet3D(nn.Module):
    """The official ``ResNet3D`` backbone with TAda2D blocks (``conv1`` stem, stages ``conv2..conv5``)."""

    def __init__(
        self,
        depths: Sequence[int] = (3, 4, 6, 3),
        num_filters: Sequence[int] = (64, 256, 512, 1024, 2048),
        expansion: int = 4,
        route_ratio: int = 4,
        route_kernels: Sequence[int] = (3, 3),
        pool_k: Sequence[int] = (3, 1, 1),
        bn_eps: float = 1e-5,
        bn_mmt: float = 0.1,
        calibration: str = "scale",
    ):
        super().__init__()
        if len(num_filters) != len(depths) + 1:
            raise ValueError("num_filters lists the stem width then one width per stage")
        self.conv1 = Base2DStem(num_filters[0], bn_eps, bn_mmt)
        branch_kwargs = dict(
            route_ratio=route_ratio,
            route_kernels=route_kernels,
            pool_k=pool_k,
            bn_eps=bn_eps,
            bn_mmt=bn_mmt,
            calibration=calibration,
        )
        dim_in = num_filters[0]
        for i, depth in enumerate(depths):
            dim_out = num_filters[i + 1]
            width = dim_out // expansion
            blocks = OrderedDict()
            for j in range(depth):
                # DOWNSAMPLING is True for every stage: the first block strides by 2 (replaces the max-pool).
                blocks[f"res_{j + 1}"] = TAda2DBlock(dim_in, width, dim_out, 2 if j == 0 else 1, **branch_kwargs)
                dim_in = dim_out
            self.add_module(f"conv{i + 2}", nn.Sequential(blocks))
        self.num_stages = len(depths)
        self.num_features = num_filters[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for i in range(self.num_stages):
            x = getattr(self, f"conv{i + 2}")(x)
        return x


class TAda2D(VideoClassifier):
    """TAda2D video classifier: ``forward(x (B, 3, T, H, W)) -> logits (B, K)``."""

    def __init__(
        self,
        num_classes: int = 400,
        num_frames: int = 8,
        depths: Sequence[int] = (3, 4, 6, 3),
        num_filters: Sequence[int] = (64, 256, 512, 1024, 2048),
        expansion: int = 4,
        route_ratio: int = 4,
        route_kernels: Sequence[int] = (3, 3),
        pool_k: Sequence[int] = (3, 1, 1),
        bn_eps: float = 1e-5,
        head_dropout: float = 0.5,
        calibration: str = "scale",
    ):
        super().__init__()
        self.num_frames = num_frames  # informative: TAda2D runs any frame count
        self.num_classes = num_classes
        self.backbone = ResNet3D(
            depths, num_filters, expansion, route_ratio, route_kernels, pool_k, bn_eps, calibration=calibration
        )
        self.head = BaseHead(self.backbone.num_features, num_classes, head_dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # Kaiming for the backbone convs ("INITIALIZATION: kaiming"); routing functions keep their own.
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv3d) and ".b_rf." not in name:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, C)`` fed to the head (global average over T, H, W)."""
        return self.backbone(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def set_calibration_impl(self, impl: str) -> TAda2D:
        """``"scale"`` (default) or ``"grouped"`` (the official per-frame grouped conv)."""
        return set_calibration_impl(self, impl)


# Released checkpoints (official model zoo rows, see tada.models._tadaconv_release).
default_cfgs = generate_default_cfgs({
    "tada2d_r50.k400_8x8": release("k400", "IN-1K", 8, 400, "interval", 8, "10x3", 76.7,
        "1YsbTKLoDwxtStAsP5oxUMbIsw85NvY0O", "tada/k400/tada2d_8x8.yaml"),
    "tada2d_r50.k400_16x5": release("k400", "IN-1K", 16, 400, "interval", 5, "10x3", 77.4,
        "1UQDurxakmnDxa5D2tBuTqTH60BVyW3XM", "tada/k400/tada2d_16x5.yaml"),
    "tada2d_r50.ssv2_8f": release("ssv2", "IN-1K", 8, 174, "segment", None, "2x3", 64.2,
        "16y6dDf-hcMmJ2jDCV9tRla8aRJZKJXSk", "tada/ssv2/tada2d_8f.yaml"),
    "tada2d_r50.ssv2_16f": release("ssv2", "IN-1K", 16, 174, "segment", None, "2x3", 65.6,
        "1xwCxuFW6DZ0xpEsp_tFJYQRGuHPJe4uS", "tada/ssv2/tada2d_16f.yaml"),
})  # fmt: skip


@register_model
def tada2d_r50(
    num_classes: int = 400,
    num_frames: int = 8,
    depths: Sequence[int] = (3, 4, 6, 3),
    num_filters: Sequence[int] = (64, 256, 512, 1024, 2048),
    route_ratio: int = 4,
    route_kernels: Sequence[int] = (3, 3),
    pool_k: Sequence[int] = (3, 1, 1),
    head_dropout: float = 0.5,
    calibration: str = "scale",
    **kwargs: Any,
) -> TAda2D:
    """TAda2D with a ResNet-50 layout (widths/depths overridable for reduced models)."""
    return TAda2D(
        num_classes=num_classes,
        num_frames=num_frames,
        depths=depths,
        num_filters=num_filters,
        route_ratio=route_ratio,
        route_kernels=route_kernels,
        pool_k=pool_k,
        head_dropout=head_dropout,
        calibration=calibration,
        **kwargs,
    )


# --------------------------------------------------------------------------------------------------
# Architecture inference from an official state dict (used by ``python -m tada convert``)


@register_arch_inferrer
def infer_tada2d(
    state_dict: dict[str, torch.Tensor], official_cfg: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """``("tada2d_r50", kwargs)`` for a TAda2D state dict, else None."""
    if "backbone.conv1.a.weight" not in state_dict or not any(".conv_branch.b_rf." in k for k in state_dict):
        return None
    depths = []
    num_filters = [int(state_dict["backbone.conv1.a.weight"].shape[0])]
    stage = 2
    while f"backbone.conv{stage}.res_1.conv_branch.a.weight" in state_dict:
        n = 0
        while f"backbone.conv{stage}.res_{n + 1}.conv_branch.a.weight" in state_dict:
            n += 1
        depths.append(n)
        num_filters.append(int(state_dict[f"backbone.conv{stage}.res_1.conv_branch.c.weight"].shape[0]))
        stage += 1
    # (bottleneck width, routing width) of every routing function: the config's ROUTE_FUNC_R must give them all
    routes = [
        (int(state_dict[k].shape[1]), int(state_dict[k].shape[0]))
        for k in state_dict
        if k.startswith("backbone.") and k.endswith(".conv_branch.b_rf.a.weight")
    ]
    rf_a = state_dict["backbone.conv2.res_1.conv_branch.b_rf.a.weight"]
    rf_b = state_dict["backbone.conv2.res_1.conv_branch.b_rf.b.weight"]
    kwargs: dict[str, Any] = {
        "num_classes": int(state_dict["head.out.weight"].shape[0]),
        "depths": tuple(depths),
        "num_filters": tuple(num_filters),
        "route_ratio": route_ratio_from(official_cfg, routes),
        "route_kernels": route_kernels_from(official_cfg, (int(rf_a.shape[2]), int(rf_b.shape[2]))),
    }
    pool_k = cfg_get(official_cfg, "VIDEO", "BACKBONE", "BRANCH", "POOL_K")
    if pool_k:
        kwargs["pool_k"] = tuple(int(k) for k in pool_k)
    frames = cfg_get(official_cfg, "DATA", "NUM_INPUT_FRAMES")
    if frames:
        kwargs["num_frames"] = int(frames)
    return "tada2d_r50", kwargs
