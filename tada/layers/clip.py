"""CLIP ViT building blocks shared by TAdaFormer and ILA (and ILA's text encoder and MIT).

Parameter names follow OpenAI CLIP (``attn``, ``ln_1``, ``mlp.c_fc``, ``mlp.c_proj``, ``ln_2``) because
both official codebases keep them, so their checkpoints load unchanged.  The attention helper
records attention maps into an active :func:`tada.trace` when asked, without changing the outputs.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from tada.trace import active_trace

__all__ = [
    "QuickGELU",
    "LayerNorm",
    "ResidualAttentionBlock",
    "Transformer",
    "mlp",
    "embed_patches",
]


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)`` (not exact GELU: the weights expect this)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back (CLIP's variant; identical in fp32, stable in bf16)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        orig = x.dtype
        return super().forward(x.float()).to(orig) if orig != torch.float32 else super().forward(x)


def mlp(width: int, hidden: int | None = None) -> nn.Sequential:
    """CLIP MLP ``c_fc -> QuickGELU -> c_proj`` with CLIP's key names."""
    hidden = hidden or 4 * width
    return nn.Sequential(
        OrderedDict([("c_fc", nn.Linear(width, hidden)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(hidden, width))])
    )


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block on sequence-first tokens ``(L, N, C)``: attention then MLP.

    Subclasses (TAdaFormer, ILA) insert their temporal modules around :meth:`attention` and ``mlp``.
    """

    def __init__(self, width: int, heads: int, attn_mask: torch.Tensor | None = None, ln_eps: float = 1e-5):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width, eps=ln_eps)
        self.mlp = mlp(width)
        self.ln_2 = LayerNorm(width, eps=ln_eps)
        # The causal mask of the text encoder is not a parameter in the official checkpoints.
        self.attn_mask = attn_mask

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention over the L tokens of each of the N sequences of ``x (L, N, C)``."""
        mask = self.attn_mask
        if mask is not None:
            # A causal mask cut to a shorter sequence is the causal mask of that length (ILA runs the
            # text encoder only up to the last end-of-text token).
            mask = mask[: x.shape[0], : x.shape[0]].to(dtype=x.dtype, device=x.device)
        tr = active_trace()
        if tr is not None and tr.want_attention:
            # Same maths through the weight-returning path; recorded per head for rollout.
            out, weights = self.attn(x, x, x, need_weights=True, average_attn_weights=False, attn_mask=mask)
            tr.record_attention(self, weights)
            return out
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of :class:`ResidualAttentionBlock` under ``resblocks`` (CLIP text encoder, ILA's MIT)."""

    def __init__(self, width: int, layers: int, heads: int, attn_mask: torch.Tensor | None = None):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


def embed_patches(
    patches: torch.Tensor, class_embedding: torch.Tensor, positional_embedding: torch.Tensor
) -> torch.Tensor:
    """Prepend the class token to row-major patch tokens ``(N, g*g, C)`` and add positions -> ``(N, L, C)``."""
    cls = class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
    return torch.cat([cls, patches], dim=1) + positional_embedding.to(patches.dtype)
