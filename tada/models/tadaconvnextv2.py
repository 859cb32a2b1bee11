"""TAdaConvNeXtV2: ConvNeXt whose depthwise convolutions are TAdaConv V2 (Huang et al., 2023).

Faithful to the official ``ConvNeXt`` backbone + ``TAdaConvNeXtV2Block`` (NOTES.md §3): a stem that
halves time (kernel 3, stride 2), routing by temporal self-attention on the block input with weight
and bias calibration (``+1``), the ``norm(y) + norm_avgpool(avgpool_t(y))`` temporal aggregation,
QuickGELU in the MLP, layer scale, and mean-pool then LayerNorm before the head.

Speed: activations stay channels-last (``(B, T, H, W, C)`` in memory) from the stem to the pooling,
so depthwise convs run in the fast channels-last kernels and LayerNorm/Linear need no permutes.
Modules still exchange official ``(B, C, T, H, W)`` shapes (as zero-copy views), so hooks and the
fixtures see what the official code produces.  QuickGELU is computed as ``silu(1.702 x) / 1.702``
with both constants folded into neighbouring affine parameters (one fused pass instead of three).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from tada._pretrained import PretrainedCfg, generate_default_cfgs
from tada._registry import register_arch_inferrer, register_model
from tada.layers.tadaconv import (
    QUICK_GELU_K,
    BaseHead,
    LayerNormCF,
    RouteFuncwTransformer,
    TAdaConv2dV2,
    set_calibration_impl,
    temporal_sum3,
)
from tada.models._tadaconv_release import release
from tada.models.base import VideoClassifier, cfg_get, conv_temporal_positions, route_kernels_from, route_ratio_from

__all__ = [
    "TAdaConvNeXtV2",
    "tadaconvnextv2_tiny",
    "tadaconvnextv2_small",
    "tadaconvnextv2_base",
    "infer_tadaconvnextv2",
]


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> contiguous ``(B, T, H, W, C)`` (free when ``x`` is a channels-last view)."""
    xc = x.permute(0, 2, 3, 4, 1)
    return xc if xc.is_contiguous() else xc.contiguous()


def from_channels_last(xc: torch.Tensor) -> torch.Tensor:
    """Contiguous ``(B, T, H, W, C)`` -> an official-shaped ``(B, C, T, H, W)`` view (no copy)."""
    return xc.permute(0, 4, 1, 2, 3)


class Stem(nn.Sequential):
    """``downsample_layers.0``: Conv3d (k_t, 4, 4) stride (s_t, 4, 4) with bias -> channels-first LN."""

    def __init__(self, in_channels: int, dim: int, t_kernel: int, t_stride: int, eps: float = 1e-6):
        super().__init__(
            nn.Conv3d(in_channels, dim, (t_kernel, 4, 4), stride=(t_stride, 4, 4), padding=(t_kernel // 2, 0, 0)),
            LayerNormCF(dim, eps),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, norm = self[0], self[1]
        y = conv(x).permute(0, 2, 3, 4, 1)  # layer_norm makes it contiguous channels-last
        y = F.layer_norm(y, (norm.num_channels,), norm.weight, norm.bias, norm.eps)
        return from_channels_last(y)


class Downsample(nn.Sequential):
    """``downsample_layers.i``: channels-first LN -> Conv3d (1, 2, 2) stride (1, 2, 2) with bias."""

    def __init__(self, dim_in: int, dim_out: int, eps: float = 1e-6):
        super().__init__(LayerNormCF(dim_in, eps), nn.Conv3d(dim_in, dim_out, (1, 2, 2), stride=(1, 2, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm, conv = self[0], self[1]
        xc = to_channels_last(x)
        B, T, H, W, C = xc.shape
        xc = F.layer_norm(xc, (C,), norm.weight, norm.bias, norm.eps)
        y = F.conv2d(xc.view(B * T, H, W, C).permute(0, 3, 1, 2), conv.weight[:, :, 0], conv.bias, stride=2)
        y = y.permute(0, 2, 3, 1).reshape(B, T, y.shape[2], y.shape[3], y.shape[1])
        return from_channels_last(y)


class TAdaConvNeXtV2Block(nn.Module):
    """``x + gamma * MLP(norm(y) + norm_avgpool(avgpool_t(y)))`` with ``y = TAdaConv7x7(x)``."""

    def __init__(
        self,
        dim: int,
        route_ratio: int = 2,
        route_kernels: Sequence[int] = (3, 3),
        route_head_dim: int = 48,
        drop_path: float = 0.0,
        layer_scale_init: float = 1e-6,
        calibration: str = "scale",
        eps: float = 1e-6,
    ):
        super().__init__()
        self.gamma = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.dwconv = TAdaConv2dV2(
            dim,
            dim,
            kernel_size=(1, 7, 7),
            padding=(0, 3, 3),
            groups=dim,
            bias=True,
            cal_dim="cout",
            internal_rf_func=False,
            internal_temp_aggr=False,
            calibration=calibration,
        )
        self.dwconv_rf = RouteFuncwTransformer(
            c_in=dim,
            ratio=route_ratio,
            kernels=route_kernels,
            with_bias_cal=True,
            zero_init_cal=True,
            head_dim=route_head_dim,
        )
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.norm_avgpool = nn.LayerNorm(dim, eps=eps)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        nn.init.zeros_(self.norm_avgpool.weight)
        nn.init.zeros_(self.norm_avgpool.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C, T, H, W)`` (a channels-last view) -> same."""
        xc = to_channels_last(x)
        y = self.dwconv.forward_cl(xc, self.dwconv_rf.route_cl(xc))
        C = y.shape[-1]
        k = QUICK_GELU_K
        inplace = not torch.is_grad_enabled()
        n1, n2 = self.norm, self.norm_avgpool
        # k * (norm(y) + norm_avgpool(sum3(y) / 3)); LN(s / 3, eps) == LN(s, 9 eps) exactly.
        z = F.layer_norm(y, (C,), n1.weight * k, (n1.bias + n2.bias) * k, n1.eps)
        z2 = F.layer_norm(temporal_sum3(y, dim=1), (C,), n2.weight * k, None, n2.eps * 9)
        z = z.add_(z2) if inplace else z + z2
        h = F.silu(F.linear(z, self.pwconv1.weight, self.pwconv1.bias * k), inplace=inplace)  # = k * QuickGELU
        out = F.linear(h, self.pwconv2.weight, self.pwconv2.bias * k)
        g = self.gamma / k
        if self.training and not isinstance(self.drop_path, nn.Identity):
            out = xc + self.drop_path(out * g)
        elif inplace:
            out = torch.addcmul(xc, out, g, out=out)  # writes into the fresh buffer, never into x
        else:
            out = torch.addcmul(xc, out, g)
        return from_channels_last(out)


class ConvNeXt(nn.Module):
    """The official ``ConvNeXt`` video backbone with TAdaConvNeXtV2 blocks."""

    def __init__(
        self,
        dims: Sequence[int] = (96, 192, 384, 768),
        depths: Sequence[int] = (3, 3, 9, 3),
        route_head_dim: int = 48,
        route_ratio: int = 2,
        route_kernels: Sequence[int] = (3, 3),
        stem_t_kernel: int = 3,
        stem_t_stride: int = 2,
        drop_path_rate: float = 0.0,
        layer_scale_init: float = 1e-6,
        calibration: str = "scale",
        in_channels: int = 3,
    ):
        super().__init__()
        self.downsample_layers = nn.ModuleList([Stem(in_channels, dims[0], stem_t_kernel, stem_t_stride)])
        for i in range(1, len(dims)):
            self.downsample_layers.append(Downsample(dims[i - 1], dims[i]))
        n = sum(depths)
        rates = [drop_path_rate * i / max(n - 1, 1) for i in range(n)]  # python, so meta-device builds work
        self.stages = nn.ModuleList()
        start = 0
        for dim, depth in zip(dims, depths, strict=True):
            blocks = [
                TAdaConvNeXtV2Block(
                    dim,
                    route_ratio,
                    route_kernels,
                    route_head_dim,
                    rates[start + j],
                    layer_scale_init,
                    calibration,
                )
                for j in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))
            start += depth
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.num_features = dims[-1]

    def forward_stages(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> last stage ``(B, C, T', H', W')`` (a channels-last view)."""
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled, normalised features ``(B, C)`` (mean over T, H, W, then LayerNorm)."""
        return self.norm(to_channels_last(self.forward_stages(x)).mean(dim=(1, 2, 3)))


class TAdaConvNeXtV2(VideoClassifier):
    """TAdaConvNeXtV2 classifier: ``forward(x (B, 3, T, H, W)) -> logits (B, K)``; any T, any H = W % 32."""

    def __init__(
        self,
        num_classes: int = 400,
        num_frames: int = 16,
        dims: Sequence[int] = (96, 192, 384, 768),
        depths: Sequence[int] = (3, 3, 9, 3),
        route_head_dim: int = 48,
        route_ratio: int = 2,
        route_kernels: Sequence[int] = (3, 3),
        stem_t_kernel: int = 3,
        stem_t_stride: int = 2,
        drop_path_rate: float = 0.0,
        layer_scale_init: float = 1e-6,
        head_dropout: float = 0.5,
        calibration: str = "scale",
        in_channels: int = 3,
    ):
        super().__init__()
        self.num_frames, self.num_classes = num_frames, num_classes
        self.stem_t_kernel, self.stem_t_stride = stem_t_kernel, stem_t_stride
        self.backbone = ConvNeXt(
            dims,
            depths,
            route_head_dim,
            route_ratio,
            route_kernels,
            stem_t_kernel,
            stem_t_stride,
            drop_path_rate,
            layer_scale_init,
            calibration,
            in_channels,
        )
        self.head = BaseHead(self.backbone.num_features, num_classes, head_dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        # Official init: truncated normal (std 0.02) for convs and linears, zero biases; the routing
        # functions keep their zero-initialised output convs (factors start at 1).
        for name, m in self.named_modules():
            if "_rf" in name:
                continue
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, C)`` fed to the head."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def temporal_positions(self, num_input_frames: int) -> list[list[int]]:
        k = self.stem_t_kernel
        return conv_temporal_positions(num_input_frames, k, self.stem_t_stride, k // 2)

    def set_calibration_impl(self, impl: str) -> TAdaConvNeXtV2:
        """``"scale"`` (default) or ``"grouped"`` (the official per-frame grouped conv)."""
        return set_calibration_impl(self, impl)

    def default_pretrained_cfg(self) -> PretrainedCfg:
        """Kinetics statistics, tested at 256 px as the released models."""
        return super().default_pretrained_cfg().replace(test_scale=256, crop_size=256)


_SIZES = {
    "tadaconvnextv2_tiny": ((96, 192, 384, 768), (3, 3, 9, 3), 48),
    "tadaconvnextv2_small": ((96, 192, 384, 768), (3, 3, 27, 3), 48),
    "tadaconvnextv2_base": ((128, 256, 512, 1024), (3, 3, 27, 3), 64),
}


# Released checkpoints (official model zoo rows, see tada.models._tadaconv_release).
default_cfgs = generate_default_cfgs({
    "tadaconvnextv2_tiny.k400_16f_in1k": release("k400", "IN1K", 16, 400, "interval", 5, "4x3", 79.6,
        "1_jkIOP8kYeMzgEGyVznDKXNRG2tSEOkV", "tadaconvnextv2/tadaconvnextv2_tiny_k400_16f.yaml"),
    "tadaconvnextv2_tiny.k400_32f_in1k": release("k400", "IN1K", 32, 400, "interval", 5, "4x3", 80.8,
        "1FSpmNgDETQ0WchABBUgpTLG9q3N9xBHN", "tadaconvnextv2/tadaconvnextv2_tiny_k400_16f.yaml", "32f"),
    "tadaconvnextv2_small.k400_16f_in1k": release("k400", "IN1K", 16, 400, "interval", 5, "4x3", 80.8,
        "12R74tV2-VRRUxrH0Tubki5voRSCbR3F1", "tadaconvnextv2/tadaconvnextv2_small_k400_16f.yaml"),
    "tadaconvnextv2_small.k400_32f_in1k": release("k400", "IN1K", 32, 400, "interval", 5, "4x3", 81.9,
        "15GDqJZSgy5fQ8gHgq3mEru_rWghelzP3", "tadaconvnextv2/tadaconvnextv2_small_k400_16f.yaml", "32f"),
    "tadaconvnextv2_small.k400_32f_in21k": release("k400", "IN21K", 32, 400, "interval", 5, "4x3", 82.9,
        "1yM-OHpzNOu0180vogZxiMDk9x45SlFFF", "tadaconvnextv2/tadaconvnextv2_small_k400_16f.yaml", "32f"),
    "tadaconvnextv2_base.k400_16f_in1k": release("k400", "IN1K", 16, 400, "interval", 5, "4x3", 81.4,
        "1rtapp_GzQHe6CBrhcNfe4wuBAS106uIk", "tadaconvnextv2/tadaconvnextv2_base_k400_16f.yaml"),
    "tadaconvnextv2_base.k400_32f_in1k": release("k400", "IN1K", 32, 400, "interval", 5, "4x3", 82.3,
        "1_VcPSEa4xd1npk1HMVihmXwzRsjk5xGd", "tadaconvnextv2/tadaconvnextv2_base_k400_16f.yaml", "32f"),
    "tadaconvnextv2_base.k400_32f_in21k": release("k400", "IN21K", 32, 400, "interval", 5, "4x3", 83.7,
        "1yyCKDa144iL1TsibNDFHaNW0dap2Xjpz", "tadaconvnextv2/tadaconvnextv2_base_k400_16f.yaml", "32f"),
    "tadaconvnextv2_tiny.ssv2_16f_in1k": release("ssv2", "IN1K+K400", 16, 174, "segment", None, "2x3", 67.2,
        "1IZaJ4EDrniK4ZxVYnl_2Y6qpx1F6UjqY", "tadaconvnextv2/tadaconvnextv2_tiny_ssv2_16f.yaml"),
    "tadaconvnextv2_tiny.ssv2_32f_in1k": release("ssv2", "IN1K+K400", 32, 174, "segment", None, "2x3", 69.8,
        "1WDJ5iMyR9VTkfeIoZwICtiJ8BSQ8u4gp", "tadaconvnextv2/tadaconvnextv2_tiny_ssv2_16f.yaml", "32f"),
    "tadaconvnextv2_small.ssv2_16f_in1k": release("ssv2", "IN1K+K400", 16, 174, "segment", None, "2x3", 68.4,
        "1X94evPniWrjJfs38-SKPWehVZtYD3Xu7", "tadaconvnextv2/tadaconvnextv2_small_ssv2_16f.yaml"),
    "tadaconvnextv2_small.ssv2_32f_in1k": release("ssv2", "IN1K+K400", 32, 174, "segment", None, "2x3", 70.0,
        "17TP1v1el5hNBoyNPmTa5Zi_6ZrVJ7oi5", "tadaconvnextv2/tadaconvnextv2_small_ssv2_16f.yaml", "32f"),
    "tadaconvnextv2_small.ssv2_32f_in21k": release("ssv2", "IN21K+K400", 32, 174, "segment", None, "2x3", 70.6,
        "1plKqnNGnDD5JpPZ_c8K8TZKTvynbrEg8", "tadaconvnextv2/tadaconvnextv2_small_ssv2_16f.yaml", "32f"),
    "tadaconvnextv2_base.ssv2_32f_in21k": release("ssv2", "IN21K+K400", 32, 174, "segment", None, "2x3", 71.1,
        "1IIVxJlstPIVA9xunThZrp9RztBzsPyd6", "tadaconvnextv2/tadaconvnextv2_base_ssv2_16f.yaml", "32f"),
})  # fmt: skip


def _build(arch: str, **kwargs: Any) -> TAdaConvNeXtV2:
    dims, depths, head_dim = _SIZES[arch]
    kwargs.setdefault("dims", dims)
    kwargs.setdefault("depths", depths)
    kwargs.setdefault("route_head_dim", head_dim)
    return TAdaConvNeXtV2(**kwargs)


@register_model
def tadaconvnextv2_tiny(**kwargs: Any) -> TAdaConvNeXtV2:
    """TAdaConvNeXtV2-T: dims 96..768, depths (3, 3, 9, 3), routing head dim 48.

    Keyword arguments of :class:`TAdaConvNeXtV2` override anything (``dims``, ``depths``,
    ``route_head_dim``, ``num_classes``, ``num_frames``, ``calibration`` ...).
    """
    return _build("tadaconvnextv2_tiny", **kwargs)


@register_model
def tadaconvnextv2_small(**kwargs: Any) -> TAdaConvNeXtV2:
    """TAdaConvNeXtV2-S: dims 96..768, depths (3, 3, 27, 3), routing head dim 48."""
    return _build("tadaconvnextv2_small", **kwargs)


@register_model
def tadaconvnextv2_base(**kwargs: Any) -> TAdaConvNeXtV2:
    """TAdaConvNeXtV2-B: dims 128..1024, depths (3, 3, 27, 3), routing head dim 64."""
    return _build("tadaconvnextv2_base", **kwargs)


# --------------------------------------------------------------------------------------------------
# Architecture inference from an official state dict


def _routes(state_dict: dict[str, torch.Tensor], suffix: str) -> list[tuple[int, int]]:
    """(channels in, routing width) of every routing function whose first conv key ends with ``suffix``."""
    return [(int(v.shape[1]), int(v.shape[0])) for k, v in state_dict.items() if k.endswith(suffix)]


@register_arch_inferrer
def infer_tadaconvnextv2(
    state_dict: dict[str, torch.Tensor], official_cfg: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """``(architecture, kwargs)`` for a TAdaConvNeXtV2 state dict, else None.

    The routing head dim is not visible in the weights: it comes from the official config
    (``VIDEO.BACKBONE.BRANCH.HEAD_DIM``) when present, else the release default of the size.
    """
    if "backbone.downsample_layers.0.0.weight" not in state_dict or "backbone.stages.0.0.dwconv_rf.a.weight" not in (
        state_dict
    ):
        return None
    dims, depths = [], []
    i = 0
    while f"backbone.stages.{i}.0.gamma" in state_dict:
        dims.append(int(state_dict[f"backbone.stages.{i}.0.gamma"].shape[0]))
        j = 0
        while f"backbone.stages.{i}.{j}.gamma" in state_dict:
            j += 1
        depths.append(j)
        i += 1
    stem = state_dict["backbone.downsample_layers.0.0.weight"]
    rf_a = state_dict["backbone.stages.0.0.dwconv_rf.a.weight"]
    rf_b = state_dict["backbone.stages.0.0.dwconv_rf.b.weight"]
    arch = "tadaconvnextv2_tiny"
    for name, (d, dp, _) in _SIZES.items():
        if tuple(dims) == d and tuple(depths) == dp:
            arch = name
            break
    kwargs: dict[str, Any] = {
        "num_classes": int(state_dict["head.out.weight"].shape[0]),
        "dims": tuple(dims),
        "depths": tuple(depths),
        "route_ratio": route_ratio_from(official_cfg, _routes(state_dict, ".dwconv_rf.a.weight")),
        "route_kernels": route_kernels_from(official_cfg, (int(rf_a.shape[2]), int(rf_b.shape[2]))),
        "stem_t_kernel": int(stem.shape[2]),
        "in_channels": int(stem.shape[1]),
    }
    t_stride = cfg_get(official_cfg, "VIDEO", "BACKBONE", "STEM", "T_STRIDE")
    if t_stride:
        kwargs["stem_t_stride"] = int(t_stride)
    head_dim = cfg_get(official_cfg, "VIDEO", "BACKBONE", "BRANCH", "HEAD_DIM")
    kwargs["route_head_dim"] = int(head_dim) if head_dim else _SIZES[arch][2]
    frames = cfg_get(official_cfg, "DATA", "NUM_INPUT_FRAMES")
    if frames:
        kwargs["num_frames"] = int(frames)
    return arch, kwargs
