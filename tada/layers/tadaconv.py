"""TAdaConv operators: temporally adaptive 2-D convolutions and their routing functions.

A TAdaConv layer convolves every frame with the same base kernel *calibrated* per frame by factors
that a routing function computes from the clip (``W[b, t] = alpha[b, :, t] * W``).  Two versions:

* :class:`TAdaConv2d` (V1, TAda2D) with :class:`RouteFuncMLP` (global-context branch, ``+1``);
* :class:`TAdaConv2dV2` (TAdaConvNeXtV2, TAdaFormer) with :class:`RouteFuncwTransformer` (temporal
  self-attention; optional bias calibration, optional internal routing and temporal aggregation).

Parameter names and shapes are the official ones (``weight (1, 1, C_out, C_in/g, kh, kw)``), so the
released checkpoints load unchanged.  Two mathematically identical implementations are offered:

* ``"scale"`` (default): one ordinary shared-weight convolution over all frames with the factors
  applied as per-channel scaling of its input (``cin``) or output (``cout``); see NOTES.md §8;
* ``"grouped"``: the official formulation, one private kernel per frame run as a single grouped
  convolution with ``groups = g * B * T``.

Choose per layer with the ``calibration`` argument or for a whole model with
:func:`set_calibration_impl`.  The V2 operator also offers a channels-last entry point
(:meth:`TAdaConv2dV2.forward_cl`, ``(B, T, H, W, C)``) that the models use to avoid layout copies.
Every routing function reports its factors to an active :func:`tada.trace` under its module path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tada.trace import active_trace

__all__ = [
    "CALIBRATION_IMPLS",
    "LayerNormCF",
    "RouteFuncMLP",
    "RouteFuncwTransformer",
    "TAdaConv2d",
    "TAdaConv2dV2",
    "BaseHead",
    "set_calibration_impl",
    "temporal_sum3",
]

CALIBRATION_IMPLS = ("scale", "grouped")
QUICK_GELU_K = 1.702  # CLIP's QuickGELU: x * sigmoid(1.702 x) = silu(1.702 x) / 1.702


def _check_impl(impl: str) -> str:
    if impl not in CALIBRATION_IMPLS:
        raise ValueError(f"calibration must be one of {CALIBRATION_IMPLS}, got {impl!r}")
    return impl


def set_calibration_impl(model: nn.Module, impl: str) -> nn.Module:
    """Switch every TAdaConv layer of ``model`` to ``"scale"`` (default) or ``"grouped"`` calibration."""
    _check_impl(impl)
    for m in model.modules():
        if isinstance(m, (TAdaConv2d, TAdaConv2dV2)):
            m.calibration = impl
    return model


def _triple_to_spatial(value: int | Sequence[int], temporal: int, what: str) -> tuple[int, int]:
    """Accept an int, a 2-tuple (h, w) or the official 3-tuple (t, h, w) whose temporal entry is fixed."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) == 3:
        if value[0] != temporal:
            raise ValueError(f"TAdaConv is 2-D: temporal {what} must be {temporal}, got {value[0]}")
        value = value[1:]
    if len(value) != 2:
        raise ValueError(f"{what} must be an int, (h, w) or (t, h, w), got {value}")
    return value  # type: ignore[return-value]


def temporal_sum3(y: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``y[t-1] + y[t] + y[t+1]`` along ``dim`` with zero padding (3 x AvgPool(3, pad 1, count_include_pad)).

    One new buffer and two passes (a shifted-copy implementation needs three buffers and five passes).
    """
    T = y.shape[dim]
    if torch.is_grad_enabled() and y.requires_grad:  # out= ops do not record gradients
        zero = torch.zeros_like(y.narrow(dim, 0, 1))
        padded = torch.cat([zero, y, zero], dim=dim)
        return padded.narrow(dim, 0, T) + y + padded.narrow(dim, 2, T)
    out = torch.empty_like(y)
    if T == 1:
        return out.copy_(y)
    out.narrow(dim, 0, 1).copy_(y.narrow(dim, 0, 1))
    torch.add(y.narrow(dim, 0, T - 1), y.narrow(dim, 1, T - 1), out=out.narrow(dim, 1, T - 1))  # y[t-1] + y[t]
    out.narrow(dim, 0, T - 1).add_(y.narrow(dim, 1, T - 1))  # + y[t+1]
    return out


def _temporal_conv(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A Conv3d with kernel ``(k, 1, 1)`` and padding ``k // 2`` applied to descriptors ``z (B, T, C_in)``.

    ``weight (C_out, C_in, k, 1, 1)`` -> ``(B, T, C_out)``, as one matmul over unfolded time windows.
    """
    k = weight.shape[2]
    w2 = weight.flatten(1)  # (C_out, C_in * k), index c * k + j
    if k == 1:
        return F.linear(z, w2, bias)
    B, T, C = z.shape
    windows = F.pad(z, (0, 0, k // 2, k // 2)).unfold(1, k, 1)  # (B, T, C_in, k)
    return F.linear(windows.reshape(B, T, C * k), w2, bias)


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(QUICK_GELU_K * x)


def _fold_bn(bn: nn.BatchNorm3d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``x * scale + shift`` (per channel)."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


# --------------------------------------------------------------------------------------------------
# Norms


class LayerNormCF(nn.Module):
    """LayerNorm over the channel dim of a channels-first tensor ``(B, C, ...)`` (ConvNeXt style).

    Parameters are ``weight``/``bias`` of shape ``(C,)`` as in the official checkpoints.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.movedim(1, -1), (self.num_channels,), self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


# --------------------------------------------------------------------------------------------------
# Routing functions


class RouteFuncMLP(nn.Module):
    """V1 routing function of TAda2D: pooled features + global context -> ``1 + conv(...)`` factors.

    ``alpha = b(ReLU(BN(a(mean_hw(x) + g(mean_thw(x)))))) + 1``, shape ``(B, C, T, 1, 1)``.
    """

    def __init__(
        self,
        c_in: int,
        ratio: int,
        kernels: Sequence[int] = (3, 3),
        bn_eps: float = 1e-5,
        bn_mmt: float = 0.1,
    ):
        super().__init__()
        k0, k1 = int(kernels[0]), int(kernels[1])
        self.c_in = c_in
        self.g = nn.Conv3d(c_in, c_in, kernel_size=1)
        self.a = nn.Conv3d(c_in, c_in // ratio, kernel_size=(k0, 1, 1), padding=(k0 // 2, 0, 0))
        self.bn = nn.BatchNorm3d(c_in // ratio, eps=bn_eps, momentum=bn_mmt)
        self.relu = nn.ReLU(inplace=True)
        self.b = nn.Conv3d(c_in // ratio, c_in, kernel_size=(k1, 1, 1), padding=(k1 // 2, 0, 0), bias=False)
        nn.init.zeros_(self.b.weight)  # the official training code starts at alpha = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C, T, H, W)`` -> factors ``(B, C, T, 1, 1)``."""
        pooled = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, C) frame descriptors
        context = F.linear(pooled.mean(dim=1), self.g.weight.flatten(1), self.g.bias)  # global context (B, C)
        z = _temporal_conv(pooled + context[:, None], self.a.weight, self.a.bias)  # (B, T, C/r)
        z = self.relu(self.bn(z.transpose(1, 2)[..., None, None]))  # BatchNorm3d on (B, C/r, T, 1, 1)
        alpha = (_temporal_conv(z.flatten(2).transpose(1, 2), self.b.weight) + 1).transpose(1, 2)[..., None, None]
        tr = active_trace()
        if tr is not None:
            tr.record_calibration(self, alpha, None, identity=1.0)
        return alpha


class RouteFuncwTransformer(nn.Module):
    """V2 routing function: temporal self-attention over the frame descriptors of each clip.

    ``z = QuickGELU(LN(a(mean_hw(x))))``, ``z = z + attn_out(MHA_t(LN'(z)))``, factors ``b(z)`` (and
    ``b_bias(z)`` with bias calibration), ``+1`` only when ``zero_init_cal``.  Quirks kept from the
    official code (NOTES.md §1.3): q/k/v channels split dim-major ``(3, head_dim, heads)`` but heads
    merged head-major, attention scaled by ``width ** -0.5`` (the whole routing width), no global
    context branch.
    """

    def __init__(
        self,
        c_in: int,
        ratio: int,
        kernels: Sequence[int] = (3, 3),
        with_bias_cal: bool = False,
        zero_init_cal: bool = True,
        head_dim: int = 64,
        eps: float = 1e-6,
    ):
        super().__init__()
        k0, k1 = int(kernels[0]), int(kernels[1])
        width = c_in // ratio
        if width < head_dim or width % head_dim:
            raise ValueError(
                f"routing width {width} (= {c_in} channels / ratio {ratio}) must be a multiple of the routing "
                f"head dim {head_dim}; pass route_head_dim= to the builder"
            )
        self.c_in, self.width, self.head_dim, self.heads = c_in, width, head_dim, width // head_dim
        self.with_bias_cal, self.zero_init_cal = with_bias_cal, zero_init_cal
        self.k0, self.k1 = k0, k1
        self.a = nn.Conv3d(c_in, width, kernel_size=(k0, 1, 1), padding=(k0 // 2, 0, 0))
        self.norm = LayerNormCF(width, eps=eps)
        self.norm_transformer = LayerNormCF(width, eps=eps)
        self.qkv_proj = nn.Conv3d(width, width * 3, kernel_size=1)
        self.attn_out = nn.Conv3d(width, width, kernel_size=1)
        self.b = nn.Conv3d(width, c_in, kernel_size=(k1, 1, 1), padding=(k1 // 2, 0, 0), bias=False)
        self.b_bias = (
            nn.Conv3d(width, c_in, kernel_size=(k1, 1, 1), padding=(k1 // 2, 0, 0), bias=False)
            if with_bias_cal
            else None
        )
        if zero_init_cal:
            nn.init.zeros_(self.b.weight)
            if self.b_bias is not None:
                nn.init.zeros_(self.b_bias.weight)

    def route(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Frame descriptors ``(B, T, C)`` -> factors ``(B, T, C)`` (weight, bias-or-None); records a trace.

        Works on the tiny ``(B, T, C)`` descriptors with plain matmuls: conv1d and fused attention
        kernels would open a parallel region per call, which costs milliseconds on a busy host.
        """
        B, T, _ = pooled.shape
        R, hd, nh = self.width, self.head_dim, self.heads
        z = _temporal_conv(pooled, self.a.weight, self.a.bias)  # (B, T, R)
        z = _quick_gelu(F.layer_norm(z, (R,), self.norm.weight, self.norm.bias, self.norm.eps))
        h = F.layer_norm(z, (R,), self.norm_transformer.weight, self.norm_transformer.bias, self.norm_transformer.eps)
        qkv = F.linear(h, self.qkv_proj.weight.view(3 * R, R), self.qkv_proj.bias)
        # Official split: channel s*R + d*nh + h is component s, within-head index d, head h.
        q, k, v = qkv.view(B, T, 3, hd, nh).permute(2, 0, 4, 1, 3)  # each (B, nh, T, hd)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * R**-0.5, dim=-1)  # scale: whole width
        o = torch.matmul(attn, v).transpose(1, 2).reshape(B, T, R)  # merged head-major: channel h*hd + d
        z = z + F.linear(o, self.attn_out.weight.view(R, R), self.attn_out.bias)
        w = _temporal_conv(z, self.b.weight)  # (B, T, C), contiguous: the big broadcasts stay vectorised
        bb = _temporal_conv(z, self.b_bias.weight) if self.b_bias is not None else None
        if self.zero_init_cal:
            w = w + 1
            bb = bb + 1 if bb is not None else None
        tr = active_trace()
        if tr is not None:
            tr.record_calibration(
                self,
                w.transpose(1, 2)[..., None, None],
                bb.transpose(1, 2)[..., None, None] if bb is not None else None,
                identity=1.0 if self.zero_init_cal else 0.0,
            )
        return w, bb

    def route_cl(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Channels-last input ``(B, T, H, W, C)`` -> factors ``(B, T, C)``."""
        return self.route(x.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Official interface: ``x (B, C, T, H, W)`` -> ``(B, C, T, 1, 1)`` or ``[w, b]`` with bias calibration."""
        w, bb = self.route(x.mean(dim=(3, 4)).transpose(1, 2))
        w5 = w.transpose(1, 2)[..., None, None]
        if bb is None:
            return w5
        return [w5, bb.transpose(1, 2)[..., None, None]]


# --------------------------------------------------------------------------------------------------
# Convolutions


class _TAdaConvBase(nn.Module):
    """Weight layout, geometry and the official per-frame grouped convolution shared by V1 and V2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int],
        padding: int | Sequence[int],
        dilation: int | Sequence[int],
        groups: int,
        bias: bool,
        cal_dim: str,
        calibration: str,
    ):
        super().__init__()
        if cal_dim not in ("cin", "cout"):
            raise ValueError(f"cal_dim must be 'cin' or 'cout', got {cal_dim!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _triple_to_spatial(kernel_size, 1, "kernel size")
        self.stride = _triple_to_spatial(stride, 1, "stride")
        self.padding = _triple_to_spatial(padding, 0, "padding")
        self.dilation = _triple_to_spatial(dilation, 1, "dilation")
        self.cal_dim = cal_dim
        self.calibration = _check_impl(calibration)
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(1, 1, out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.empty(1, 1, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0, 0].shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, groups={self.groups}, bias={self.bias is not None}, cal_dim={self.cal_dim}, "
            f"calibration={self.calibration}"
        )

    def _conv_frames(self, x_frames: torch.Tensor) -> torch.Tensor:
        """The shared-weight conv over frames ``(N, C, H, W)`` (no bias)."""
        return F.conv2d(x_frames, self.weight[0, 0], None, self.stride, self.padding, self.dilation, self.groups)

    def _grouped(self, x: torch.Tensor, w: torch.Tensor, bb: torch.Tensor | None, calibrate_bias: bool) -> torch.Tensor:
        """Official formulation: a private kernel per frame, all frames in one grouped conv.

        ``x (B, C, T, H, W)``, ``w (B, C_w, T)``, ``bb (B, C_out, T)`` or None -> ``(B, C_out, T, H', W')``.
        """
        B, C, T, H, W = x.shape
        base = self.weight[0, 0]  # (O, I/g, kh, kw)
        O, Ig, kh, kw = base.shape
        g = self.groups
        a = w.transpose(1, 2)  # (B, T, C_w)
        if self.cal_dim == "cin":
            # kernel[o, i] uses the factor of its input channel (group of o, index i).
            a = a.reshape(B, T, g, 1, Ig).expand(B, T, g, O // g, Ig).reshape(B, T, O, Ig)
            kernels = base * a[..., None, None]
        else:
            kernels = base * a[..., None, None, None]
        kernels = kernels.reshape(B * T * O, Ig, kh, kw)
        bias = None
        if self.bias is not None:
            b = self.bias.view(1, 1, O)
            bias = (b * bb.transpose(1, 2) if (calibrate_bias and bb is not None) else b.expand(B, T, O)).reshape(-1)
        frames = x.transpose(1, 2).reshape(1, B * T * C, H, W)
        out = F.conv2d(frames, kernels, bias, self.stride, self.padding, self.dilation, g * B * T)
        return out.view(B, T, O, out.shape[-2], out.shape[-1]).transpose(1, 2)


class TAdaConv2d(_TAdaConvBase):
    """TAdaConv V1 (TAda2D): per-frame calibrated 2-D conv; the bias (if any) is not calibrated.

    ``forward(x (B, C_in, T, H, W), alpha (B, C, T, 1, 1))``; ``alpha`` has ``C_in`` channels for
    ``cal_dim="cin"`` and ``C_out`` for ``"cout"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        cal_dim: str = "cin",
        calibration: str = "scale",
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, cal_dim, calibration
        )

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        w = alpha.flatten(2)  # (B, C, T)
        if self.calibration == "grouped":
            return self._grouped(x, w, None, calibrate_bias=False)
        # 1-frame-deep conv3d runs every frame with the shared kernel without any layout change.
        kernel = self.weight[0, 0].unsqueeze(2)
        stride, padding, dilation = (1, *self.stride), (0, *self.padding), (1, *self.dilation)
        if self.cal_dim == "cin":
            out = F.conv3d(x * alpha, kernel, None, stride, padding, dilation, self.groups)
        else:
            out = F.conv3d(x, kernel, None, stride, padding, dilation, self.groups) * alpha
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1, 1)
        return out


class TAdaConv2dV2(_TAdaConvBase):
    """TAdaConv V2: calibrated weight *and* bias, optional internal routing and temporal aggregation.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: 2-D conv geometry
            (3-tuples with temporal entries 1/1/0/1 are accepted, as in the official code).
        bias: learnable bias; it is calibrated per frame when the routing returns bias factors.
        cal_dim: ``"cout"`` (used by every released model) or ``"cin"``.
        num_frames: temporal positions per clip, only needed for the token interface
            (``reshape_required=True``).
        rf_r, rf_k, head_dim: internal routing function ratio, kernels and attention head dim.
        internal_rf_func: own a :class:`RouteFuncwTransformer` (``rf_func``; raw factors, no ``+1``).
        internal_temp_aggr: ``bn_a(o) + bn_b(avgpool_t(o))`` on the conv output (TAdaFormer).
        calibration: ``"scale"`` or ``"grouped"`` (see the module docstring).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        cal_dim: str = "cout",
        num_frames: int | None = None,
        rf_r: int = 4,
        rf_k: Sequence[int] = (3, 3),
        head_dim: int = 64,
        internal_rf_func: bool = True,
        internal_temp_aggr: bool = True,
        calibration: str = "scale",
        bn_eps: float = 1e-5,
        bn_mmt: float = 0.1,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, cal_dim, calibration
        )
        self.num_frames = num_frames
        self.rf_func = (
            RouteFuncwTransformer(
                c_in=out_channels,
                ratio=rf_r,
                kernels=rf_k,
                with_bias_cal=bias,
                zero_init_cal=False,
                head_dim=head_dim,
            )
            if internal_rf_func
            else None
        )
        self.internal_temp_aggr = internal_temp_aggr
        if internal_temp_aggr:
            self.bn_a = nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=bn_mmt)
            self.bn_b = nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=bn_mmt)
            nn.init.zeros_(self.bn_b.weight)
            nn.init.zeros_(self.bn_b.bias)

    # -- official interfaces ------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        alpha: torch.Tensor | Sequence[torch.Tensor] | None = None,
        reshape_required: bool = False,
    ) -> torch.Tensor:
        """``x (B, C, T, H, W)``, or tokens ``(h*w, B*T, C)`` with ``reshape_required``; same layout out.

        ``alpha``: ``(B, C, T, 1, 1)`` weight factors or ``[w, b]``; computed by ``rf_func`` if None.
        """
        factors = None
        if alpha is not None:
            if isinstance(alpha, torch.Tensor):
                factors = (alpha.flatten(2).transpose(1, 2), None)
            else:
                factors = (alpha[0].flatten(2).transpose(1, 2), alpha[1].flatten(2).transpose(1, 2))
        if reshape_required:
            L, N, C = x.shape
            side = math.isqrt(L)
            if side * side != L or self.num_frames is None or N % self.num_frames:
                raise ValueError(
                    f"token input ({L}, {N}, {C}) needs L = h*w square and N = B*num_frames "
                    f"(num_frames={self.num_frames})"
                )
            T = self.num_frames
            xc = x.reshape(side, side, N // T, T, C).permute(2, 3, 0, 1, 4).contiguous()
            y = self.forward_cl(xc, factors)
            return y.permute(2, 3, 0, 1, 4).reshape(L, N, -1)
        y = self.forward_cl(x.permute(0, 2, 3, 4, 1).contiguous(), factors)
        return y.permute(0, 4, 1, 2, 3)

    # -- channels-last path used by the models ------------------------------------------------------
    def forward_cl(
        self,
        x: torch.Tensor,
        factors: tuple[torch.Tensor, torch.Tensor | None] | None = None,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Channels-last ``x (B, T, H, W, C_in)`` -> ``(B, T, H', W', C_out)``.

        ``factors``: ``(w, b)`` each ``(B, T, C)`` (``b`` may be None); computed by ``rf_func`` if None.
        ``out``: optional tensor (may be a strided view) that receives the result when gradients are
        off, so a caller can have it land inside a larger buffer without another copy.
        """
        if factors is None:
            if self.rf_func is None:
                raise ValueError("this TAdaConv2dV2 has no internal routing function: pass the factors")
            factors = self.rf_func.route_cl(x)
        w, bb = factors
        if self.calibration == "grouped":
            y5 = self._grouped(x.permute(0, 4, 1, 2, 3), w.transpose(1, 2), _t(bb), calibrate_bias=True)
            y = y5.permute(0, 2, 3, 4, 1).contiguous()
        else:
            y = self._scaled_cl(x, w, bb)
        if torch.is_grad_enabled():
            out = None
        if self.internal_temp_aggr:
            return self._temporal_aggregate_cl(y, out)
        return out.copy_(y) if out is not None else y

    def _scaled_cl(self, x: torch.Tensor, w: torch.Tensor, bb: torch.Tensor | None) -> torch.Tensor:
        B, T, H, W, C = x.shape
        w5 = w[:, :, None, None, :]  # (B, T, 1, 1, C)
        if self.cal_dim == "cin":
            x = x * w5
        # A (N, H, W, C) buffer seen as NCHW is a channels-last tensor: the conv keeps that layout.
        out = self._conv_frames(x.reshape(B * T, H, W, C).permute(0, 3, 1, 2))
        out = out.permute(0, 2, 3, 1).reshape(B, T, out.shape[2], out.shape[3], out.shape[1])
        inplace = not torch.is_grad_enabled()
        bias = None
        if self.bias is not None:
            bias = self.bias.view(1, 1, 1, 1, -1)
            if bb is not None:
                bias = bias * bb[:, :, None, None, :]
        if self.cal_dim == "cout":
            if bias is None:
                return out.mul_(w5) if inplace else out * w5
            return torch.addcmul(bias, out, w5, out=out) if inplace else torch.addcmul(bias, out, w5)
        if bias is None:
            return out
        return out.add_(bias) if inplace else out + bias

    def _temporal_aggregate_cl(self, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``bn_a(y) + bn_b(avgpool_t(y))``; avg-pool (3, 1, 1) with zero padding counted (official)."""
        if self.training:
            y5 = y.permute(0, 4, 1, 2, 3)
            pooled = F.avg_pool3d(y5, (3, 1, 1), 1, (1, 0, 0), count_include_pad=True)
            res = (self.bn_a(y5) + self.bn_b(pooled)).permute(0, 2, 3, 4, 1)
            return out.copy_(res) if out is not None else res.contiguous()
        sa, ta = _fold_bn(self.bn_a)
        sb, tb = _fold_bn(self.bn_b)
        s3 = temporal_sum3(y, dim=1)
        if torch.is_grad_enabled():
            return torch.addcmul(ta + tb, y, sa) + s3 * (sb / 3)
        if out is None:
            out = y  # the conv output is ours: overwrite it
        return torch.addcmul(ta + tb, y, sa, out=out).addcmul_(s3, sb / 3)


def _t(x: torch.Tensor | None) -> torch.Tensor | None:
    return x.transpose(1, 2) if x is not None else None


# --------------------------------------------------------------------------------------------------
# Head


class BaseHead(nn.Module):
    """The official classification head: dropout (training only) and ``out`` Linear -> logits.

    The official head also applies softmax in eval mode; here the model returns logits and
    :func:`tada.probabilities` gives the softmax.
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(features))
