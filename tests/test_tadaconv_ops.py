"""TAdaConv operators: both calibration paths against an independent per-frame reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tada.layers.tadaconv import (
    RouteFuncMLP,
    RouteFuncwTransformer,
    TAdaConv2d,
    TAdaConv2dV2,
    set_calibration_impl,
    temporal_sum3,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors on a shared 2-core host: a second OpenMP thread only waits for the scheduler.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _per_frame_reference(conv, x, w, bb=None, calibrate_bias=False):
    """Loop over (b, t): build the calibrated kernel of that frame and run a plain conv2d (float64)."""
    x, w = x.double(), w.double()
    base = conv.weight[0, 0].double()
    O, Ig = base.shape[:2]
    g = conv.groups
    B, _, T = x.shape[:3]
    outs = torch.zeros(B, O, T, *F.conv2d(x[:, :, 0], base, None, conv.stride, conv.padding, 1, g).shape[-2:]).double()
    for b in range(B):
        for t in range(T):
            if conv.cal_dim == "cin":
                cin = torch.arange(O)[:, None] // (O // g) * Ig + torch.arange(Ig)[None, :]  # input channel of (o, i)
                kernel = base * w[b, :, t][cin][..., None, None]
            else:
                kernel = base * w[b, :, t][:, None, None, None]
            bias = None
            if conv.bias is not None:
                bias = conv.bias.view(-1).double()
                if calibrate_bias:
                    bias = bias * bb[b, :, t].double()
            outs[b, :, t] = F.conv2d(x[b : b + 1, :, t], kernel, bias, conv.stride, conv.padding, 1, g)[0]
    return outs


@pytest.mark.parametrize("cal_dim", ["cin", "cout"])
@pytest.mark.parametrize(("groups", "stride", "bias"), [(1, 1, False), (2, 2, True), (1, 2, True)])
@pytest.mark.parametrize("impl", ["scale", "grouped"])
def test_tadaconv_v1_matches_per_frame_kernels(cal_dim, groups, stride, bias, impl):
    torch.manual_seed(0)
    conv = TAdaConv2d(4, 6, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), groups=groups, bias=bias,
                      cal_dim=cal_dim, calibration=impl)  # fmt: skip
    x = torch.randn(2, 4, 3, 9, 9)
    alpha = 1 + 0.5 * torch.randn(2, 4 if cal_dim == "cin" else 6, 3, 1, 1)
    with torch.no_grad():
        out = conv(x, alpha)
    ref = _per_frame_reference(conv, x, alpha.flatten(2))
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["scale", "grouped"])
@pytest.mark.parametrize("batch", [1, 2])
def test_tadaconv_v2_depthwise_bias_calibration(impl, batch):
    torch.manual_seed(1)
    conv = TAdaConv2dV2(8, 8, (1, 7, 7), padding=(0, 3, 3), groups=8, bias=True, internal_rf_func=False,
                        internal_temp_aggr=False, calibration=impl)  # fmt: skip
    x = torch.randn(batch, 8, 4, 10, 10)
    w, bb = 1 + 0.3 * torch.randn(2, batch, 8, 4, 1, 1)
    with torch.no_grad():
        out = conv(x, [w, bb])
        out_cl = conv.forward_cl(x.permute(0, 2, 3, 4, 1).contiguous(),
                                 (w.flatten(2).transpose(1, 2), bb.flatten(2).transpose(1, 2)))  # fmt: skip
    ref = _per_frame_reference(conv, x, w.flatten(2), bb.flatten(2), calibrate_bias=True)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_cl.permute(0, 4, 1, 2, 3), out)


def test_tadaconv_v2_internal_routing_token_interface_and_training_path():
    torch.manual_seed(2)
    conv = TAdaConv2dV2(16, 16, (1, 3, 3), padding=(0, 1, 1), groups=16, num_frames=4, rf_r=2, head_dim=8)
    for bn in (conv.bn_a, conv.bn_b):  # non-trivial statistics so the folded eval path is exercised
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
    conv.eval()
    x = torch.randn(2, 16, 4, 5, 5)
    with torch.no_grad():
        ref = conv(x)
        tokens = x.permute(3, 4, 0, 2, 1).reshape(25, 8, 16)  # (h*w, B*T, C), batch-major frames
        out_tokens = conv(tokens, reshape_required=True)
        scale_eval = conv(x)
        set_calibration_impl(conv, "grouped")
        grouped = conv(x)
    torch.testing.assert_close(out_tokens.reshape(5, 5, 2, 4, 16).permute(2, 4, 3, 0, 1), ref)
    torch.testing.assert_close(grouped, scale_eval, rtol=1e-5, atol=1e-5)
    # The autograd path (no in-place ops, explicit BatchNorm modules in train mode) gives gradients.
    conv.train()
    conv(x.requires_grad_()).sum().backward()
    assert conv.weight.grad is not None and conv.rf_func.b.weight.grad is not None


def test_temporal_sum3_is_zero_padded_avgpool():
    y = torch.randn(2, 5, 3, 4, 6)
    pooled = F.avg_pool3d(y.permute(0, 4, 1, 2, 3), (3, 1, 1), 1, (1, 0, 0), count_include_pad=True)
    torch.testing.assert_close(temporal_sum3(y, dim=1) / 3, pooled.permute(0, 2, 3, 4, 1))
    with_grad = temporal_sum3(y.clone().requires_grad_(), dim=1)  # the autograd formulation
    torch.testing.assert_close(with_grad.detach(), temporal_sum3(y, dim=1))
    one = torch.randn(1, 1, 2, 2, 3)
    torch.testing.assert_close(temporal_sum3(one, dim=1), one)


def test_route_func_mlp_starts_at_identity():
    rf = RouteFuncMLP(8, ratio=4).eval()
    with torch.no_grad():
        alpha = rf(torch.randn(2, 8, 5, 3, 3))
    assert alpha.shape == (2, 8, 5, 1, 1)
    torch.testing.assert_close(alpha, torch.ones_like(alpha))  # b is zero-initialised


def test_route_func_transformer_shapes_and_errors():
    rf = RouteFuncwTransformer(32, ratio=2, with_bias_cal=True, zero_init_cal=True, head_dim=8)
    out = rf(torch.randn(3, 32, 6, 4, 4))
    assert isinstance(out, list) and [o.shape for o in out] == [(3, 32, 6, 1, 1)] * 2
    with pytest.raises(ValueError, match="multiple of the routing head dim"):
        RouteFuncwTransformer(32, ratio=2, head_dim=64)
    with pytest.raises(ValueError, match="calibration must be one of"):
        set_calibration_impl(rf, "loop")
