"""ILA: implicit learnable alignment on X-CLIP (Tu et al., ICCV 2023), as the official release runs it.

The model is a CLIP ViT whose every block first adds two ILA residuals (aligned frames and an
interactive feature, :mod:`tada.layers.ila_align`), a multi-frame integration transformer (MIT) over
the per-frame class features, and, on Kinetics-400, the CLIP text encoder plus a video-specific prompt
generator: the scores are ``exp(logit_scale) * cos(video feature, prompted class-text feature)``.
On Something-Something-v2 the MIT ends in a linear classification head and there is no text side.

State-dict keys are the official ones, so released ``.pth`` files load unchanged (strictly).  In
``eval()`` mode the model does what the official validation *intends*: BatchNorm running statistics
and a single (undisturbed) mask per interactive point.  Input layout is ``(B, T, 3, S, S)``.

```python
model = tada.create_model("ila_b16.k400_8f", pretrained=True)
logits = model(clip)                                   # against the 400 Kinetics class names
model.set_class_names(["juggling", "surfing"])         # open vocabulary (cached text features)
logits = model(clip, class_names=["a dog", "a cat"])   # or one-off, without changing the default
```
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tada._pretrained import PretrainedCfg, generate_default_cfgs
from tada._registry import register_arch_inferrer, register_model
from tada.constants import IMAGENET_MEAN_255, IMAGENET_STD_255
from tada.errors import OpenVocabularyUnavailableError
from tada.labels import get_labels
from tada.layers.clip import LayerNorm, QuickGELU, ResidualAttentionBlock, Transformer, embed_patches
from tada.layers.ila_align import ALIGN_HIDDEN, ILAAlign, alignment_loss
from tada.models.base import VideoClassifier
from tada.text import CONTEXT_LENGTH, TextFeatureCache, class_texts, encode_in_chunks, tokenize
from tada.trace import active_trace, untraced

__all__ = [
    "ILA",
    "ILABlock",
    "ILAVisionTransformer",
    "MultiframeIntegrationTransformer",
    "VideoSpecificPrompt",
    "OpenVocabularyUnavailableError",
    "ila_b32",
    "ila_b16",
    "ila_l14",
    "ila_l14_336",
]


class ILABlock(ResidualAttentionBlock):
    """A CLIP ViT block with an ILA module: two temporal residuals, then CLIP's attention and MLP.

    Operates on sequence-first tokens ``(L, B*T, D)`` with the frames of a video adjacent (b outer).
    """

    def __init__(
        self, width: int, heads: int, grid: int, patch_size: int, ssv2: bool = False, align_hidden: int = ALIGN_HIDDEN
    ):
        super().__init__(width, heads)
        self.message_fc = nn.Linear(width, width)
        self.message_ln = LayerNorm(width)
        self.message_attn = ILAAlign(width, grid, patch_size, ssv2=ssv2, hidden=align_hidden)
        self.temporal_skip_fc = nn.Linear(width, width)
        self.temporal_skip_align_fc = nn.Linear(width, width)
        # This module's pooled aligned pair tokens from the last forward, for ILA.alignment_losses (the
        # official training objective); the loss itself is only computed when asked for.
        self.last_pair: torch.Tensor | None = None
        # Zero residual projections: an untrained ILA block is exactly the CLIP block.
        for layer in (self.temporal_skip_fc, self.temporal_skip_align_fc):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # Put CLIP's own layers after the ILA ones, so state_dict() lists keys in the official order.
        for name in ("attn", "ln_1", "mlp", "ln_2"):
            self._modules[name] = self._modules.pop(name)

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:  # type: ignore[override]
        length, batch_frames, width = x.shape
        frames = num_frames or batch_frames
        batch = batch_frames // frames
        msg = self.message_ln(self.message_fc(x)).view(length, batch, frames, width)
        cls = msg[:1]  # (1, B, T, D)
        msg = msg.permute(1, 2, 0, 3)  # (B, T, L, D)
        pair, aligned, interactive = self.message_attn(msg[:, :-1], msg[:, 1:], cls)
        # Outside training keep a detached copy: a kept graph would hold the whole last forward in memory.
        self.last_pair = pair if self.training else pair.detach()
        aligned = aligned.permute(2, 0, 1, 3).reshape(length, batch_frames, width)
        x = x + self.temporal_skip_align_fc(aligned)
        x = x + self.temporal_skip_fc(interactive)
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _ILATransformer(nn.Module):
    """Holds the visual blocks under ``resblocks`` (official key names) and passes T to each."""

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        grid: int,
        patch_size: int,
        ssv2: bool,
        align_hidden: int = ALIGN_HIDDEN,
    ):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(
            [ILABlock(width, heads, grid, patch_size, ssv2, align_hidden) for _ in range(layers)]
        )

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, num_frames)
        return x


class ILAVisionTransformer(nn.Module):
    """CLIP ViT over the ``B*T`` frames with an ILA module in every block.

    Returns the projected class features ``(B*T, E)`` (``ln_post`` then ``proj``) and the final patch
    tokens ``(B*T, N, D)`` (without ``ln_post``, as the official prompt branch uses them).
    """

    def __init__(
        self,
        input_resolution: int,
        patch_size: int,
        width: int,
        layers: int,
        output_dim: int,
        ssv2: bool = False,
        align_hidden: int = ALIGN_HIDDEN,
    ):
        super().__init__()
        if input_resolution % patch_size:
            raise ValueError(f"image_resolution {input_resolution} is not a multiple of the patch size {patch_size}")
        self.input_resolution, self.patch_size = input_resolution, patch_size
        self.grid = input_resolution // patch_size
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid**2 + 1, width))
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.ln_pre = LayerNorm(width)
        self.transformer = _ILATransformer(width, layers, width // 64 or 1, self.grid, patch_size, ssv2, align_hidden)
        self.ln_post = LayerNorm(width)

    def forward(self, x: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(x)  # (B*T, D, G, G)
        x = x.flatten(2).transpose(1, 2)  # row-major patches (B*T, N, D)
        x = self.ln_pre(embed_patches(x, self.class_embedding, self.positional_embedding))
        x = self.transformer(x.permute(1, 0, 2), num_frames).permute(1, 0, 2)
        cls = self.ln_post(x[:, 0]) @ self.proj
        return cls, x[:, 1:]


# --- temporal integration and prompts --------------------------------------------------------------


class MultiframeIntegrationTransformer(nn.Module):
    """MIT: a temporal transformer over per-frame class features ``(B, T, E)`` -> video feature ``(B, E)``.

    With ``num_classes`` (SSv2 form) the pooled feature is L2-normalised and classified by
    ``classify_head`` (LayerNorm -> Dropout 0.5 -> Linear).
    """

    def __init__(self, num_frames: int, embed_dim: int, layers: int = 1, num_classes: int | None = None):
        super().__init__()
        self.num_frames = num_frames
        self.positional_embedding = nn.Parameter(torch.empty(1, num_frames, embed_dim))
        nn.init.trunc_normal_(self.positional_embedding, std=0.02)
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(embed_dim, embed_dim // 64 or 1) for _ in range(layers)]
        )
        if num_classes is not None:
            self.classify_head = nn.Sequential(
                nn.LayerNorm(embed_dim), nn.Dropout(0.5), nn.Linear(embed_dim, num_classes)
            )
        else:
            self.classify_head = None

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The video feature: blocks over ``x + positions``, plus ``x`` (no positions), mean over T."""
        h = (x + self.positional_embedding.to(x.dtype)).permute(1, 0, 2)
        h = self.resblocks(h).permute(1, 0, 2)
        return (h + x).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x)
        if self.classify_head is None:
            return pooled
        return self.classify_head(F.normalize(pooled, dim=-1))


class _CrossAttention(nn.Module):
    """Multi-head cross-attention of text queries over visual tokens (bias-free q/k/v projections)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, nq, c = q.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, t.shape[1], h, c // h).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q_proj(q)), split(self.k_proj(k)), split(self.v_proj(v)))
        return self.proj(out.transpose(1, 2).reshape(b, nq, c))


class _PromptGeneratorLayer(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.cross_attn = _CrossAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), QuickGELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        q = self.norm1(text)
        text = text + self.cross_attn(q, visual, visual)
        return text + self.mlp(self.norm3(text))


class VideoSpecificPrompt(nn.Module):
    """X-CLIP's prompt generator: ``alpha * decoder(text, visual)``, added to the text features."""

    def __init__(self, layers: int = 2, embed_dim: int = 512, alpha: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder = nn.ModuleList([_PromptGeneratorLayer(embed_dim, embed_dim // 64 or 1) for _ in range(layers)])
        self.alpha = nn.Parameter(torch.full((embed_dim,), float(alpha)))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """``text (B, K, E)``, ``visual (B, N, E)`` -> prompt ``(B, K, E)``."""
        visual = self.norm(visual)
        for layer in self.decoder:
            text = layer(text, visual)
        return self.alpha * text


# --- the whole model ---------------------------------------------------------------------------------


def _ila_input(crop: int) -> dict[str, Any]:
    """Config fields of ILA's input (official pipeline): uniform sampling, 256/224 resize, 0..255 pixels."""
    return {
        "family": "ila",
        "input_layout": "BTCHW",
        "sampling": "uniform",
        "test_scale": int(256 / 224 * crop),
        "crop_size": crop,
        "mean": IMAGENET_MEAN_255,
        "std": IMAGENET_STD_255,
        "pixel_range": 255.0,
    }


class ILA(VideoClassifier):
    """ILA on X-CLIP: ``forward(x (B, T, 3, S, S)) -> logits (B, K)``.

    K400 form: K = the current class texts (the pretrained label set by default; see
    :meth:`set_class_names` for any list of phrases).  SSv2 form (``ssv2=True``): K = the head width.
    ``align_hidden`` is the width of every ILA module's interactive block (256 in all released models).
    """

    family = "ila"

    def __init__(
        self,
        num_frames: int = 8,
        ssv2: bool = False,
        num_classes: int = 400,
        embed_dim: int = 512,
        image_resolution: int = 224,
        vision_layers: int = 12,
        vision_width: int = 768,
        vision_patch_size: int = 16,
        context_length: int = CONTEXT_LENGTH,
        vocab_size: int = 49408,
        transformer_width: int = 512,
        transformer_heads: int | None = None,
        transformer_layers: int = 12,
        mit_layers: int = 1,
        prompts_layers: int = 2,
        prompts_alpha: float = 0.1,
        align_hidden: int = ALIGN_HIDDEN,
    ):
        super().__init__()
        if num_frames < 2:
            raise ValueError("ILA aligns adjacent frames: num_frames must be at least 2")
        self.num_frames, self.ssv2, self.num_classes = num_frames, ssv2, num_classes
        self.embed_dim, self.image_resolution = embed_dim, image_resolution
        self.patch_size, self.context_length, self.vocab_size = vision_patch_size, context_length, vocab_size
        if ssv2:
            # SSV2 branch: visual encoder + MIT with a linear head, nothing else.
            self.mit = MultiframeIntegrationTransformer(num_frames, embed_dim, mit_layers, num_classes=num_classes)
            self.visual = ILAVisionTransformer(
                image_resolution, vision_patch_size, vision_width, vision_layers, embed_dim, True, align_hidden
            )
            self.text_cache = None
            return
        # Parameters first, then modules, in the official registration order (state_dict order).
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context_length, transformer_width))
        self.text_projection = nn.Parameter(transformer_width**-0.5 * torch.randn(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.prompts_visual_proj = nn.Parameter(torch.randn(vision_width, embed_dim))
        self.prompts_generator = VideoSpecificPrompt(prompts_layers, embed_dim, prompts_alpha)
        self.mit = MultiframeIntegrationTransformer(num_frames, embed_dim, mit_layers)
        self.visual = ILAVisionTransformer(
            image_resolution, vision_patch_size, vision_width, vision_layers, embed_dim, align_hidden=align_hidden
        )
        heads = transformer_heads or transformer_width // 64 or 1
        causal = torch.full((context_length, context_length), float("-inf"), device="cpu").triu_(1)
        self.transformer = Transformer(transformer_width, transformer_layers, heads, attn_mask=causal)
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.ln_final = LayerNorm(transformer_width)
        self.prompts_visual_ln = LayerNorm(vision_width)

        # Class texts: None means "the pretrained config's label set"; tokens override names.
        self._class_names: tuple[str, ...] | None = None
        self._text_tokens: torch.Tensor | None = None
        self._weights_version = 0
        self.text_cache = TextFeatureCache(maxsize=4)
        self.register_load_state_dict_post_hook(_on_weights_loaded)

    # --- class texts (K400 form) -------------------------------------------------------------------
    @property
    def supports_open_vocabulary(self) -> bool:
        """Whether any list of phrases can be scored (K400 form, which has a text encoder)."""
        return not self.ssv2

    def _require_text(self) -> None:
        if self.ssv2:
            raise OpenVocabularyUnavailableError(
                "This ILA model is the Something-Something-v2 form: it classifies with a fixed 174-way "
                "linear head and has no text encoder, so it cannot score custom phrases. "
                "Use a Kinetics-400 ILA model (e.g. ila_b16.k400_8f) for open-vocabulary scoring."
            )

    def default_pretrained_cfg(self) -> PretrainedCfg:
        """ILA's own input description: 0..255 pixels, ImageNet statistics, time-first layout."""
        return PretrainedCfg(
            architecture="ila",
            num_classes=self.num_classes,
            label_set="ssv2" if self.ssv2 else "kinetics400",
            num_frames=self.num_frames,
            **_ila_input(self.image_resolution),
        )

    def _default_names(self) -> list[str]:
        return get_labels(self.pretrained_cfg.label_set)

    @property
    def class_names(self) -> list[str]:
        """The class texts the logits currently refer to (index = logit column)."""
        if self.ssv2 or self._class_names is None:
            return self._default_names()
        return list(self._class_names)

    @property
    def labels(self) -> list[str]:  # type: ignore[override]
        """Names of the logit columns: the current class texts (open vocabulary aware)."""
        return self.class_names

    def set_class_names(self, names: Sequence[str] | None, template: str = "{}") -> None:
        """Score against these phrases from now on (``None``: back to the pretrained label set).

        Texts are ``template.format(name)`` (the official template is the bare name), tokenised with
        CLIP BPE.  Their features are computed on the next forward and cached, so switching back and
        forth between a few label sets costs nothing after the first use.

        Raises:
            OpenVocabularyUnavailableError: SSv2 form.
            tada.text.TextTooLongError: a phrase exceeds the 77-token context.
        """
        self._require_text()
        self._text_tokens = None
        if names is None:
            self._class_names = None
            return
        texts = class_texts(names, template)
        self._check_tokens(tokenize(texts, self.context_length))  # fail now, not at the next forward
        self._class_names = tuple(texts)

    def set_text_tokens(self, tokens: torch.Tensor, names: Sequence[str] | None = None) -> None:
        """Score against pre-tokenised texts ``(K, context_length)`` (e.g. a reduced-vocabulary model)."""
        self._require_text()
        tokens = torch.as_tensor(tokens, dtype=torch.long, device="cpu")  # CPU data, also inside a meta build
        if tokens.dim() != 2 or tokens.shape[1] != self.context_length:
            raise ValueError(f"text tokens must be (K, {self.context_length}), got {tuple(tokens.shape)}")
        self._check_tokens(tokens)
        if names is not None and len(names) != tokens.shape[0]:
            raise ValueError(f"{len(names)} names for {tokens.shape[0]} token rows")
        self._text_tokens = tokens
        self._class_names = tuple(names) if names is not None else tuple(f"class {i}" for i in range(len(tokens)))

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        top = int(tokens.max())
        if top >= self.vocab_size:
            raise ValueError(
                f"token id {top} is outside this model's {self.vocab_size}-entry vocabulary "
                "(a reduced test model?): pass its own token ids with set_text_tokens()"
            )

    def clear_text_cache(self) -> None:
        """Forget cached text features (done automatically when weights are loaded)."""
        if self.text_cache is not None:
            self.text_cache.clear()

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP text encoder: token ids ``(K, context)`` -> features ``(K, E)`` at the end-of-text token.

        Attention is causal and the feature is read at the end-of-text token, so positions after the
        last end-of-text token cannot change the result: they are not computed (class names are 3-20
        tokens of the 77, so this is several times cheaper than the official full-context pass).
        """
        eot = tokens.argmax(dim=-1)  # the end-of-text token has the largest id
        length = int(eot.max()) + 1
        tokens = tokens[:, :length]
        pos = self.positional_embedding[:length].to(self.token_embedding.weight.dtype)
        x = self.token_embedding(tokens) + pos
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection

    def text_features(self, class_names: Sequence[str] | None = None) -> torch.Tensor:
        """Raw text features ``(K, E)`` of ``class_names`` (default: the current class texts), cached."""
        self._require_text()
        weight = self.token_embedding.weight
        if class_names is not None:
            names = tuple(class_texts(class_names))
            tokens = None
            key: tuple[Any, ...] = ("names", names)
        elif self._text_tokens is not None:
            tokens = self._text_tokens
            key = ("tokens", hashlib.sha1(tokens.numpy().tobytes()).hexdigest(), tuple(tokens.shape))
        else:
            names = tuple(self.class_names)
            tokens = None
            key = ("names", names)
        key = (*key, weight.device, weight.dtype, self._weights_version)

        def compute() -> torch.Tensor:
            toks = tokens if tokens is not None else tokenize(list(names), self.context_length)
            self._check_tokens(toks)
            # Chunked so a stopped job ends between chunks; each chunk untraced (untraced drops the context,
            # so the stop check must stay outside it).
            return encode_in_chunks(lambda t: untraced(lambda: self.encode_text(t)), toks.to(weight.device))

        if self.training and torch.is_grad_enabled() and weight.requires_grad:
            return compute()  # training the text side: no cache, gradients flow (the official run froze it)
        return self.text_cache.get(key, compute)

    # --- forward -------------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        s = self.image_resolution
        if x.dim() != 5 or x.shape[2] != 3 or x.shape[-2:] != (s, s):
            raise ValueError(f"ILA expects (B, T, 3, {s}, {s}) clips (layout BTCHW), got {tuple(x.shape)}")
        if x.shape[1] != self.num_frames:
            raise ValueError(
                f"This ILA model was built for {self.num_frames} frames (its MIT has one position per frame); "
                f"got {x.shape[1]}. Sample {self.num_frames} frames or build the model with num_frames={x.shape[1]}."
            )

    def forward_features(self, x: torch.Tensor, class_names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Every stage of the forward pass.

        Returns a dict with ``logits (B, K)``, ``cls_features (B, T, E)`` (per-frame class features,
        the MIT input), ``video_features (B, E)`` (MIT output, before normalisation) and, K400 form,
        ``img_features (B, T, N, E)``, ``text_features (K, E)`` (raw, cached) and
        ``text_features_prompted (B, K, E)``.
        """
        self._check_input(x)
        if class_names is not None:
            self._require_text()
        b, t = x.shape[:2]
        x = x.to(self.visual.conv1.weight.dtype)
        cls, patches = self.visual(x.reshape(b * t, *x.shape[2:]), t)
        cls_features = cls.reshape(b, t, -1)
        tr = active_trace()
        if tr is not None:
            tr.class_features = cls_features.detach().float().cpu()
        out: dict[str, torch.Tensor] = {"cls_features": cls_features}
        if self.ssv2:
            out["video_features"] = self.mit.pool(cls_features)
            out["logits"] = self.mit.classify_head(F.normalize(out["video_features"], dim=-1))
            return out
        img = (self.prompts_visual_ln(patches) @ self.prompts_visual_proj).reshape(b, t, patches.shape[1], -1)
        video = self.mit(cls_features)
        text = self.text_features(class_names)
        prompted = text.unsqueeze(0).expand(b, -1, -1)
        prompted = prompted + self.prompts_generator(prompted, img.mean(dim=1))
        logits = self.logit_scale.exp() * torch.einsum(
            "bd,bkd->bk", F.normalize(video, dim=-1), F.normalize(prompted, dim=-1)
        )
        out.update(
            img_features=img,
            video_features=video,
            text_features=text,
            text_features_prompted=prompted,
            logits=logits,
        )
        return out

    def forward(self, x: torch.Tensor, class_names: Sequence[str] | None = None) -> torch.Tensor:
        """Logits ``(B, K)`` for clips ``(B, T, 3, S, S)``; ``class_names`` scores other phrases once."""
        return self.forward_features(x, class_names)["logits"]

    def alignment_losses(self) -> list[torch.Tensor]:
        """Per-layer ILA alignment losses of the last forward pass (the official training adds their sum,
        weight 1, to the classification loss; see :func:`tada.layers.ila_align.alignment_loss`)."""
        pairs = [block.last_pair for block in self.visual.transformer.resblocks]
        if any(pair is None for pair in pairs):
            raise RuntimeError("run the model forward before asking for its alignment losses")
        return [alignment_loss(pair) for pair in pairs]


def _on_weights_loaded(module: nn.Module, _incompatible: Any) -> None:
    # New weights make every cached text feature stale.
    module._weights_version += 1
    module.clear_text_cache()


# --- released checkpoints (registered with their builders below) ------------------------------------------

_SOURCE = "Francis-Rings/ILA (ICCV 2023), official README 'Main Results in paper'"
_NOTES = (
    "Official test: 4 clips x 3 crops, softmax summed over views (its frame sampling is random). "
    "The registry's default single view is the deterministic 'uniform' sampling with a centre crop."
)
_SSV2_NOTE = " SSv2 head width read from the checkpoint (174 expected, not verified on the released file)."


def _release(data: str, frames: int, crop: int, gdrive: str, top1: float) -> dict[str, Any]:
    ssv2 = data == "ssv2"
    return {
        "num_classes": 174 if ssv2 else 400,
        "label_set": "ssv2" if ssv2 else "kinetics400",
        "num_frames": frames,
        **_ila_input(crop),
        "num_clips": 4,
        "num_crops": 3,
        "model_kwargs": {"num_frames": frames, "ssv2": ssv2},
        "gdrive_id": gdrive,
        "reported_top1": top1,
        "reported_views": "4x3",
        "source": _SOURCE + (" (SSV2 branch)" if ssv2 else " (master = K400 branch)"),
        "notes": _NOTES + (_SSV2_NOTE if ssv2 else ""),
    }


default_cfgs = generate_default_cfgs({
    "ila_b32.k400_8f": _release("k400", 8, 224, "1hbl3nndAcxENsif0QuEJ_8UxiTv9jSOh", 81.3),
    "ila_b32.k400_16f": _release("k400", 16, 224, "1GEO8m1qfDsOj-81YW5jc8ekAxPWMrtg3", 82.4),
    "ila_b16.k400_8f": _release("k400", 8, 224, "1lAUgzxBDHoueXDaG9X9WFlBPVBl5LNdk", 84.0),
    "ila_b16.k400_16f": _release("k400", 16, 224, "1IYz8DzzgoNbU1aXyeHFl69t6pb0RNMsV", 85.7),
    "ila_l14.k400_8f": _release("k400", 8, 224, "1IhalyRKqAbJ9efLAgAA4f7t9hwRMux0p", 88.0),
    "ila_l14_336.k400_16f": _release("k400", 16, 336, "132aB_FF-jPKP1z3kZArG_tOj32rVIFYc", 88.7),
    "ila_b16.ssv2_8f": _release("ssv2", 8, 224, "1Ei0fO-W8u4jBQO0qG6V7nlRjKUuozbLa", 65.0),
    "ila_b16.ssv2_16f": _release("ssv2", 16, 224, "1NYXsYSOjRuuOIXiCTaTE2gFUCi-1qC_5", 66.8),
    "ila_l14.ssv2_8f": _release("ssv2", 8, 224, "10xHxzyUH38bjkAAutlBvMkj0BxXaaobB", 67.8),
    "ila_l14_336.ssv2_16f": _release("ssv2", 16, 336, "1ZquukTAxosC2k1uquI9jnMsk4BA2N5w5", 70.2),
})  # fmt: skip


# --- builders ------------------------------------------------------------------------------------------

_B_TEXT = {"embed_dim": 512, "transformer_width": 512, "transformer_layers": 12}
_L_TEXT = {"embed_dim": 768, "transformer_width": 768, "transformer_layers": 12}


def _build(defaults: dict[str, Any], num_classes: int | None, ssv2: bool, kwargs: dict[str, Any]) -> ILA:
    if num_classes is None:
        num_classes = 174 if ssv2 else 400
    return ILA(**{**defaults, **kwargs, "ssv2": ssv2, "num_classes": num_classes})


@register_model
def ila_b32(num_frames: int = 8, ssv2: bool = False, num_classes: int | None = None, **kwargs: Any) -> ILA:
    """ILA on CLIP ViT-B/32 (224 px, grid 7)."""
    base = {"image_resolution": 224, "vision_layers": 12, "vision_width": 768, "vision_patch_size": 32, **_B_TEXT}
    return _build({**base, "num_frames": num_frames}, num_classes, ssv2, kwargs)


@register_model
def ila_b16(num_frames: int = 8, ssv2: bool = False, num_classes: int | None = None, **kwargs: Any) -> ILA:
    """ILA on CLIP ViT-B/16 (224 px, grid 14)."""
    base = {"image_resolution": 224, "vision_layers": 12, "vision_width": 768, "vision_patch_size": 16, **_B_TEXT}
    return _build({**base, "num_frames": num_frames}, num_classes, ssv2, kwargs)


@register_model
def ila_l14(num_frames: int = 8, ssv2: bool = False, num_classes: int | None = None, **kwargs: Any) -> ILA:
    """ILA on CLIP ViT-L/14 (224 px, grid 16)."""
    base = {"image_resolution": 224, "vision_layers": 24, "vision_width": 1024, "vision_patch_size": 14, **_L_TEXT}
    return _build({**base, "num_frames": num_frames}, num_classes, ssv2, kwargs)


@register_model
def ila_l14_336(num_frames: int = 16, ssv2: bool = False, num_classes: int | None = None, **kwargs: Any) -> ILA:
    """ILA on CLIP ViT-L/14@336px (336 px, grid 24)."""
    base = {"image_resolution": 336, "vision_layers": 24, "vision_width": 1024, "vision_patch_size": 14, **_L_TEXT}
    return _build({**base, "num_frames": num_frames}, num_classes, ssv2, kwargs)


# --- architecture from a checkpoint alone ----------------------------------------------------------------


def _distinct(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m.group(1) for k in state_dict if (m := pattern.match(k))})


@register_arch_inferrer
def infer_ila(
    state_dict: dict[str, torch.Tensor], official_cfg: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """``(architecture, kwargs)`` of an ILA state dict (reference NOTES §11), or None if it is not ILA.

    The official config's ARCH is not trusted (the B/16 configs say ViT-B/32).
    """
    if "visual.conv1.weight" not in state_dict or "mit.positional_embedding" not in state_dict:
        return None
    if not any(".message_attn." in k for k in state_dict):
        return None
    conv = state_dict["visual.conv1.weight"]
    width, patch = int(conv.shape[0]), int(conv.shape[-1])
    grid = math.isqrt(int(state_dict["visual.positional_embedding"].shape[0]) - 1)
    resolution = patch * grid
    ssv2 = not any(".interactive_block.0.depthwise_conv.0.weight" in k for k in state_dict)
    kwargs: dict[str, Any] = {
        "num_frames": int(state_dict["mit.positional_embedding"].shape[1]),
        "ssv2": ssv2,
        "image_resolution": resolution,
        "vision_layers": sum(1 for k in state_dict if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")),
        "vision_width": width,
        "vision_patch_size": patch,
        "mit_layers": _distinct(state_dict, "mit.resblocks."),
    }
    if ssv2:
        kwargs["embed_dim"] = int(state_dict["visual.proj"].shape[1])
        kwargs["num_classes"] = int(state_dict["mit.classify_head.2.weight"].shape[0])
    else:
        text_width = int(state_dict["ln_final.weight"].shape[0])
        kwargs.update(
            embed_dim=int(state_dict["text_projection"].shape[1]),
            transformer_width=text_width,
            transformer_heads=text_width // 64 or 1,
            transformer_layers=_distinct(state_dict, "transformer.resblocks."),
            context_length=int(state_dict["positional_embedding"].shape[0]),
            vocab_size=int(state_dict["token_embedding.weight"].shape[0]),
            prompts_layers=_distinct(state_dict, "prompts_generator.decoder."),
        )
    if patch == 32:
        arch = "ila_b32"
    elif patch == 14:
        arch = "ila_l14_336" if resolution == 336 else "ila_l14"
    else:
        arch = "ila_b16"
    return arch, kwargs
