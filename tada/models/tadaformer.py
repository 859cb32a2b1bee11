"""TAdaFormer: a CLIP ViT with TAdaConv V2 blocks in every layer (Huang et al., 2023).

Faithful to the official ``VisionTransformer`` + ``TAdaFormerBlock`` (NOTES.md §4): a 3-frame,
stride-2 tubelet embedding (no bias, no temporal embedding), per-frame spatial attention, a TAda
block on the raw residual stream's patch tokens before the attention (and, in the SSV2 form
``double_tada=True``, a second one after it), routing without the ``+1`` offset, the TAdaConv's own
``bn_a(o) + bn_b(avgpool_t(o))`` aggregation, and a readout that averages the class tokens over time
before ``ln_post``.  The SSV2 form (``temp_enhance=True``) uses a temporal (3, 1, 1) conv as the
TAda block's input projection.

The official layer layout is CLIP's ``(L, B*T, C)``; layers here exchange that shape (as a
zero-copy view of a batch-first buffer, so hooks and the fixtures see the official tensors) and
compute batch-first with fused scaled-dot-product attention.  QuickGELU runs as
``silu(1.702 x) / 1.702`` with the constants folded into neighbouring affine parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tada._pretrained import PretrainedCfg, generate_default_cfgs
from tada._registry import register_arch_inferrer, register_model
from tada.constants import CLIP_MEAN, CLIP_STD
from tada.errors import FrameCountError
from tada.layers.clip import LayerNorm, embed_patches, mlp
from tada.layers.tadaconv import (
    QUICK_GELU_K,
    BaseHead,
    TAdaConv2dV2,
    set_calibration_impl,
)
from tada.models._tadaconv_release import release
from tada.models.base import VideoClassifier, cfg_get, conv_temporal_positions, route_kernels_from, route_ratio_from
from tada.trace import active_trace

__all__ = ["TAdaFormer", "tadaformer_b16", "tadaformer_l14", "infer_tadaformer", "FrameCountError"]


def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    # Computed in float32 for half-precision inputs, as CLIP's LayerNorm does.
    if x.dtype in (torch.float16, torch.bfloat16):
        w = weight.float() if weight is not None else None
        b = bias.float() if bias is not None else None
        return F.layer_norm(x.float(), (x.shape[-1],), w, b, eps).to(x.dtype)
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def _add_to_patches(x: torch.Tensor, delta: torch.Tensor, alpha: float) -> torch.Tensor:
    """``x + alpha * [0 ; delta]`` for tokens ``x (N, L, C)`` and patch updates ``delta (N, L-1, C)``."""
    if torch.is_grad_enabled():
        return torch.cat([x[:, :1], x[:, 1:] + alpha * delta], dim=1)
    out = torch.empty_like(x)
    out[:, :1] = x[:, :1]
    torch.add(x[:, 1:], delta, alpha=alpha, out=out[:, 1:])
    return out


class TAdaBlock(nn.Module):
    """K400 TAda block: Linear pre-projection -> TAdaConv 3x3 (+ temporal aggregation) -> QuickGELU -> Linear."""

    def __init__(
        self,
        width: int,
        mid: int,
        num_positions: int,
        route_ratio: int,
        route_kernels: Sequence[int],
        route_head_dim: int,
        calibration: str,
        temp_enhance: bool = False,
    ):
        super().__init__()
        self.temp_enhance = temp_enhance
        if temp_enhance:
            self.tada_pre_proj = nn.Conv3d(width, mid, (3, 1, 1), padding=(1, 0, 0))
        else:
            self.tada_pre_proj = nn.Linear(width, mid)
        self.tadaconv = TAdaConv2dV2(
            mid,
            mid,
            kernel_size=(1, 3, 3),
            padding=(0, 1, 1),
            groups=mid,
            bias=True,
            cal_dim="cout",
            num_frames=num_positions,
            rf_r=route_ratio,
            rf_k=route_kernels,
            head_dim=route_head_dim,
            internal_rf_func=True,
            internal_temp_aggr=True,
            calibration=calibration,
        )
        self.tada_proj = nn.Conv3d(mid, width, 1) if temp_enhance else nn.Linear(mid, width)
        nn.init.zeros_(self.tada_proj.weight)  # the block starts as identity (official init)
        nn.init.zeros_(self.tada_proj.bias)

    def _pre_project(self, tokens: torch.Tensor, B: int, T: int) -> torch.Tensor:
        """Patch tokens of ``tokens (B*T, 1 + g*g, C)`` -> channels-last ``(B, T, g, g, mid)``."""
        N, L, C = tokens.shape
        g = int(round((L - 1) ** 0.5))
        if not self.temp_enhance:
            # Project every token (one contiguous GEMM) and drop the class token from the narrower output.
            return self.tada_pre_proj(tokens)[:, 1:].reshape(B, T, g, g, -1)
        conv = self.tada_pre_proj
        # Temporal (3, 1, 1) conv on a channels-last-3d view: no layout copy.
        x5 = tokens[:, 1:].reshape(B, T, g, g, C).permute(0, 4, 1, 2, 3)
        y = F.conv3d(x5, conv.weight, conv.bias, padding=conv.padding)
        y = y.permute(0, 2, 3, 4, 1)
        return y if y.is_contiguous() else y.contiguous()

    def forward(self, tokens: torch.Tensor, B: int, T: int) -> torch.Tensor:
        """Batch-first tokens ``(B*T, L, C)`` -> ``tokens + [0 ; tada(patch tokens)]``."""
        k = QUICK_GELU_K
        w = self.tada_proj.weight
        w, bias = w.view(w.shape[0], -1), self.tada_proj.bias * k
        x = self._pre_project(tokens, B, T)
        if torch.is_grad_enabled():
            y = F.silu(self.tadaconv.forward_cl(x) * k)  # = k * QuickGELU
            return _add_to_patches(tokens, F.linear(y, w, bias).view(tokens.shape[0], -1, w.shape[0]), 1 / k)
        # Inference: the TAdaConv writes its patch rows into a token-shaped buffer whose class row is 0,
        # so the projection yields the whole (N, L, C) update and the residual add happens in place.
        N, L, _ = tokens.shape
        buf = x.new_empty(N, L, x.shape[-1])
        buf[:, 0] = 0
        self.tadaconv.forward_cl(x, out=buf[:, 1:].view(x.shape))
        F.silu(buf.mul_(k), inplace=True)  # silu(0) = 0 keeps the class row at 0
        out = F.linear(buf, w, bias)
        out[:, 0] = 0
        return torch.add(tokens, out, alpha=1 / k, out=out)


class TAdaFormerBlock(nn.Module):
    """One TAdaFormer layer: ``x += tada(x)``, ``x += attn(ln_1(x))``, [``x += tada2(x)``], ``x += mlp(ln_2(x))``."""

    def __init__(
        self,
        width: int,
        heads: int,
        mid: int,
        num_positions: int,
        route_ratio: int,
        route_kernels: Sequence[int],
        route_head_dim: int,
        temp_enhance: bool,
        double_tada: bool,
        calibration: str,
        ln_eps: float = 1e-5,
    ):
        super().__init__()
        tada_args = (width, mid, num_positions, route_ratio, route_kernels, route_head_dim, calibration, temp_enhance)
        self.tada = TAdaBlock(*tada_args)
        self.tada2 = TAdaBlock(*tada_args) if double_tada else None
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width, eps=ln_eps)
        self.mlp = mlp(width)
        self.ln_2 = LayerNorm(width, eps=ln_eps)
        self.heads = heads

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        """``x + attn(ln_1(x))`` on batch-first tokens ``(N, L, C)``."""
        N, L, C = x.shape
        h = _layer_norm(x, self.ln_1.weight, self.ln_1.bias, self.ln_1.eps)
        qkv = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = qkv.view(N, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        tr = active_trace()
        if tr is not None and tr.want_attention:
            weights = torch.softmax((q * (C // self.heads) ** -0.5) @ k.transpose(-2, -1), dim=-1)
            tr.record_attention(self, weights)
            o = weights @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v)
        o = F.linear(o.transpose(1, 2).reshape(N, L, C), self.attn.out_proj.weight, self.attn.out_proj.bias)
        return o.add_(x) if not torch.is_grad_enabled() else o + x

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        """``x + mlp(ln_2(x))``, QuickGELU as a folded silu."""
        k = QUICK_GELU_K
        c_fc, c_proj = self.mlp.c_fc, self.mlp.c_proj
        h = _layer_norm(x, self.ln_2.weight * k, self.ln_2.bias * k, self.ln_2.eps)
        inplace = not torch.is_grad_enabled()
        h = F.silu(F.linear(h, c_fc.weight, c_fc.bias * k), inplace=inplace)
        o = F.linear(h, c_proj.weight, c_proj.bias * k)
        return torch.add(x, o, alpha=1 / k, out=o) if inplace else torch.add(x, o, alpha=1 / k)

    def forward(self, x: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """Tokens ``(L, B*T, C)`` (official layout) -> same; ``batch``/``frames`` split ``B*T``."""
        xb = x.transpose(0, 1)
        if not xb.is_contiguous():
            xb = xb.contiguous()
        xb = self.tada(xb, batch, frames)
        xb = self._attention(xb)
        if self.tada2 is not None:
            xb = self.tada2(xb, batch, frames)
        return self._mlp(xb).transpose(0, 1)


class VisionTransformer(nn.Module):
    """The official TAdaFormer backbone (``backbone.*`` keys)."""

    def __init__(
        self,
        width: int = 768,
        layers: int = 12,
        heads: int = 12,
        patch_size: int = 16,
        input_res: int = 224,
        num_frames: int = 16,
        tubelet_size: int = 3,
        tubelet_stride: int = 2,
        reduction: int = 2,
        route_ratio: int = 2,
        route_kernels: Sequence[int] = (3, 3),
        route_head_dim: int = 64,
        temp_enhance: bool = False,
        double_tada: bool = False,
        calibration: str = "scale",
        in_channels: int = 3,
    ):
        super().__init__()
        if input_res % patch_size:
            raise ValueError(f"input_res {input_res} must be a multiple of patch_size {patch_size}")
        self.width, self.patch_size, self.input_res, self.num_frames = width, patch_size, input_res, num_frames
        self.tubelet_size, self.tubelet_stride = tubelet_size, tubelet_stride
        grid = input_res // patch_size
        # Temporal positions after the tubelet (the official code bakes NUM_INPUT_FRAMES // stride in).
        self.num_positions = (num_frames + 2 * (tubelet_size // 2) - tubelet_size) // tubelet_stride + 1
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.conv1 = nn.Conv3d(
            in_channels,
            width,
            (tubelet_size, patch_size, patch_size),
            stride=(tubelet_stride, patch_size, patch_size),
            padding=(tubelet_size // 2, 0, 0),
            bias=False,
        )
        self.ln_pre = LayerNorm(width)
        self.layers = nn.ModuleList(
            [
                TAdaFormerBlock(
                    width,
                    heads,
                    width // reduction,
                    self.num_positions,
                    route_ratio,
                    route_kernels,
                    route_head_dim,
                    temp_enhance,
                    double_tada,
                    calibration,
                )
                for _ in range(layers)
            ]
        )
        self.ln_post = LayerNorm(width)
        self.num_features = width

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse clips the model was not built for (the official code would silently mix clips)."""
        if x.dim() != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got shape {tuple(x.shape)}")
        T, H, W = x.shape[2:]
        if T != self.num_frames:
            raise FrameCountError(
                f"this TAdaFormer was built for {self.num_frames}-frame clips but got {T} frames: sample "
                f"{self.num_frames} frames, or build the model with num_frames={T} (same weights)"
            )
        if H != self.input_res or W != self.input_res:
            raise ValueError(
                f"this TAdaFormer takes {self.input_res}x{self.input_res} crops (fixed positional embedding), "
                f"got {H}x{W}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, 3, T, H, W)`` -> features ``(B, C)``: class tokens averaged over time, then ``ln_post``."""
        self.check_input(x)
        B = x.shape[0]
        y = self.conv1(x)  # (B, C, T', g, g)
        T = y.shape[2]
        tokens = y.permute(0, 2, 3, 4, 1).reshape(B * T, -1, self.width)  # row-major patches, batch-major frames
        tokens = embed_patches(tokens, self.class_embedding, self.positional_embedding)
        tokens = _layer_norm(tokens, self.ln_pre.weight, self.ln_pre.bias, self.ln_pre.eps)
        h = tokens.transpose(0, 1)  # (L, B*T, C), official layout
        for layer in self.layers:
            h = layer(h, B, T)
        cls = h[0].reshape(B, T, self.width).mean(dim=1)
        return self.ln_post(cls)


class TAdaFormer(VideoClassifier):
    """TAdaFormer classifier: ``forward(x (B, 3, num_frames, R, R)) -> logits (B, K)``."""

    def __init__(self, num_classes: int = 400, head_dropout: float = 0.5, **backbone_kwargs: Any):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = VisionTransformer(**backbone_kwargs)
        self.num_frames = self.backbone.num_frames
        self.head = BaseHead(self.backbone.num_features, num_classes, head_dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, C)`` fed to the head."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def default_pretrained_cfg(self) -> PretrainedCfg:
        """CLIP statistics at the backbone's own input size."""
        size = self.backbone.input_res
        return super().default_pretrained_cfg().replace(mean=CLIP_MEAN, std=CLIP_STD, test_scale=size, crop_size=size)

    def temporal_positions(self, num_input_frames: int) -> list[list[int]]:
        k = self.backbone.tubelet_size
        return conv_temporal_positions(num_input_frames, k, self.backbone.tubelet_stride, k // 2)

    def set_calibration_impl(self, impl: str) -> TAdaFormer:
        """``"scale"`` (default) or ``"grouped"`` (the official per-frame grouped conv)."""
        return set_calibration_impl(self, impl)


_SIZES = {
    "tadaformer_b16": {"width": 768, "layers": 12, "heads": 12, "patch_size": 16},
    "tadaformer_l14": {"width": 1024, "layers": 24, "heads": 16, "patch_size": 14},
}


def _release(*row: Any) -> dict[str, Any]:
    return release(*row, former=True)


# Released checkpoints (official model zoo rows, see tada.models._tadaconv_release); K400 rows first so
# that the bare architecture name resolves to a K400 classifier.
default_cfgs = generate_default_cfgs({
    "tadaformer_b16.k400_16f_clip": _release("k400", "CLIP", 16, 400, "segment", None, "4x3", 84.5,
        "1E7IE762YLJnfeiqtjv0jBb91_dZhNK0Q", "tadaformer/tadaformer_b16_k400_16f.yaml"),
    "tadaformer_l14.k400_16f_clip": _release("k400", "CLIP", 16, 400, "segment", None, "4x3", 87.6,
        "1chSLHo0nbFNObsLlCRSsAJE2vbYwIaYJ", "tadaformer/tadaformer_l14_k400_16f.yaml"),
    "tadaformer_b16.k400_16f_clip_k710": _release("k400", "CLIP+K710", 16, 400, "segment", None, "4x3", 86.6,
        "1pAhjXycxdT_eOH5kO-5t7y8o5MjtlQdZ", "tadaformer/tadaformer_b16_k400_16f.yaml", "nocfg"),
    "tadaformer_l14.k400_16f_clip_k710": _release("k400", "CLIP+K710", 16, 400, "segment", None, "4x3", 88.9,
        "1qx3M33hsdoBcPsXihOdeViqI0VHUXnRf", "tadaformer/tadaformer_l14_k400_16f.yaml", "nocfg"),
    "tadaformer_l14.k400_32f_clip_k710": _release("k400", "CLIP+K710", 32, 400, "segment", None, "4x3", 89.5,
        "1T99YSQEe8yVUl3b03r_Wd04Qm36lN5Us", "tadaformer/tadaformer_l14_k400_16f.yaml", "nocfg"),
    "tadaformer_l14.k400_64f_clip_k710": _release("k400", "CLIP+K710", 64, 400, "segment", None, "4x3", 89.9,
        "1DBTfkCa0pHXqAm51gZSmmOVdGnBYacsM", "tadaformer/tadaformer_l14_k400_16f.yaml", "nocfg"),
    "tadaformer_b16.ssv2_16f": _release("ssv2", "CLIP", 16, 174, "segment", None, "2x3", 70.4,
        "1D-pKrxdrP2IcGXnd_e47ryci7OYCt8BK", "tadaformer/tadaformer_b16_ssv2_16f.yaml"),
    "tadaformer_b16.ssv2_32f": _release("ssv2", "CLIP", 32, 174, "segment", None, "2x3", 71.3,
        "1uY9tt0rcP_bQDs36oBNWPaqzxqibBQFt", "tadaformer/tadaformer_b16_ssv2_16f.yaml", "nocfg"),
    "tadaformer_l14.ssv2_16f": _release("ssv2", "CLIP", 16, 174, "segment", None, "2x3", 72.4,
        "1jXzh9_WFbrHAkrzijnNs0vIJHWTQNsbA", "tadaformer/tadaformer_l14_ssv2_16f.yaml"),
    "tadaformer_l14.ssv2_32f": _release("ssv2", "CLIP", 32, 174, "segment", None, "2x3", 73.6,
        "1hj8O3j_lf6VVp93nfy5z7zRGQ_W7Pou_", "tadaformer/tadaformer_l14_ssv2_16f.yaml", "nocfg"),
    "tadaformer_b16.k710_16f": _release("k710", "CLIP", 16, 710, "segment", None, None, None,
        "1hKKdhg6gfxCxV8C6w9vxV6RNSsxTHqZO", "tadaformer/tadaformer_b16_k400_16f.yaml", "k710"),
    "tadaformer_l14.k710_16f": _release("k710", "CLIP", 16, 710, "segment", None, None, None,
        "1GQlSTqvsQkRB7DexiFAl-MgK3OkqHm0C", "tadaformer/tadaformer_l14_k400_16f.yaml", "k710"),
    "tadaformer_l14.k710_32f": _release("k710", "CLIP", 32, 710, "segment", None, None, None,
        "1uNfkujaUIQo6RkjbrPKdTg-HHIBWVvbD", "tadaformer/tadaformer_l14_k400_16f.yaml", "k710"),
    "tadaformer_l14.k710_64f": _release("k710", "CLIP", 64, 710, "segment", None, None, None,
        "1NUbnnZ1EtQUfJ0kiLncIihQbnvbfu7NK", "tadaformer/tadaformer_l14_k400_16f.yaml", "k710"),
})  # fmt: skip


def _build(arch: str, **kwargs: Any) -> TAdaFormer:
    for key, value in _SIZES[arch].items():
        kwargs.setdefault(key, value)
    return TAdaFormer(**kwargs)


@register_model
def tadaformer_b16(**kwargs: Any) -> TAdaFormer:
    """TAdaFormer-B/16 (CLIP ViT-B/16: width 768, 12 layers, 12 heads).

    Keyword arguments: ``num_classes``, ``num_frames`` (input frames, default 16), ``temp_enhance`` and
    ``double_tada`` (the SSV2 form), ``route_head_dim`` (64 in every release), ``reduction``,
    ``route_ratio``, ``input_res``, ``width``/``layers``/``heads``/``patch_size`` overrides, ``calibration``.
    """
    return _build("tadaformer_b16", **kwargs)


@register_model
def tadaformer_l14(**kwargs: Any) -> TAdaFormer:
    """TAdaFormer-L/14 (CLIP ViT-L/14: width 1024, 24 layers, 16 heads); same keyword arguments."""
    return _build("tadaformer_l14", **kwargs)


# --------------------------------------------------------------------------------------------------
# Architecture inference from an official state dict


def _reduction(official_cfg: dict[str, Any] | None, width: int, mid: int) -> int:
    """The TAda block's channel reduction: the config's ``REDUCTION`` (checked), else width / middle width."""
    declared = cfg_get(official_cfg, "VIDEO", "BACKBONE", "REDUCTION")
    if declared:
        if width // int(declared) != mid:
            raise ValueError(f"the checkpoint's config says REDUCTION={declared}, but its TAda blocks are {mid} wide")
        return int(declared)
    return width // mid


@register_arch_inferrer
def infer_tadaformer(
    state_dict: dict[str, torch.Tensor], official_cfg: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """``(architecture, kwargs)`` for a TAdaFormer state dict, else None.

    The number of frames is not visible in the weights: it comes from ``DATA.NUM_INPUT_FRAMES``
    when the config is stored (else the variant's or the builder's default applies).  The routing
    head dim is 64 in the official code (not a config value); override it for models built otherwise.
    """
    if "backbone.class_embedding" not in state_dict or "backbone.layers.0.tada.tadaconv.weight" not in state_dict:
        return None
    width = int(state_dict["backbone.class_embedding"].shape[0])
    conv1 = state_dict["backbone.conv1.weight"]
    patch = int(conv1.shape[-1])
    grid = int(round((state_dict["backbone.positional_embedding"].shape[0] - 1) ** 0.5))
    layers = 0
    while f"backbone.layers.{layers}.ln_1.weight" in state_dict:
        layers += 1
    pre = state_dict["backbone.layers.0.tada.tada_pre_proj.weight"]
    mid = int(pre.shape[0])
    rf_a = state_dict["backbone.layers.0.tada.tadaconv.rf_func.a.weight"]
    rf_b = state_dict["backbone.layers.0.tada.tadaconv.rf_func.b.weight"]
    routes = [(int(v.shape[1]), int(v.shape[0])) for k, v in state_dict.items() if k.endswith("rf_func.a.weight")]
    heads = cfg_get(official_cfg, "VIDEO", "BACKBONE", "NUM_HEADS")
    frames = cfg_get(official_cfg, "DATA", "NUM_INPUT_FRAMES")
    head_dim = cfg_get(official_cfg, "VIDEO", "BACKBONE", "BRANCH", "HEAD_DIM")
    kwargs: dict[str, Any] = {
        "num_classes": int(state_dict["head.out.weight"].shape[0]),
        "width": width,
        "layers": layers,
        "heads": int(heads) if heads else width // 64,  # CLIP ViTs use 64-wide heads
        "patch_size": patch,
        "input_res": grid * patch,
        "tubelet_size": int(conv1.shape[2]),
        "reduction": _reduction(official_cfg, width, mid),
        "route_ratio": route_ratio_from(official_cfg, routes),
        "route_kernels": route_kernels_from(official_cfg, (int(rf_a.shape[2]), int(rf_b.shape[2]))),
        "route_head_dim": int(head_dim) if head_dim else 64,
        "temp_enhance": pre.dim() == 5,
        "double_tada": "backbone.layers.0.tada2.tadaconv.weight" in state_dict,
        "in_channels": int(conv1.shape[1]),
    }
    if frames:  # else the builder default (16); a variant's own frame count then applies
        kwargs["num_frames"] = int(frames)
    stride = cfg_get(official_cfg, "VIDEO", "BACKBONE", "TUBLET_STRIDE")
    if stride:
        kwargs["tubelet_stride"] = int(stride)
    arch = "tadaformer_l14" if (width, patch) == (1024, 14) else "tadaformer_b16"
    return arch, kwargs
