"""Class texts for ILA: CLIP BPE tokenisation (open_clip's tokenizer) and a small text-feature cache.

ILA scores a clip against the text features of class names, so any list of phrases can be used
("open vocabulary").  The official code tokenises the bare class name (template ``"{}"``) with the
OpenAI CLIP BPE tokenizer; ``open_clip`` ships the byte-identical vocabulary and gives identical ids,
except that it silently truncates texts longer than the context, where the official tokenizer raises:
:func:`tokenize` raises too.

Text features depend only on the model weights and the texts, so they are computed once per model and
label set and kept in a :class:`TextFeatureCache` (a few label sets, least recently used evicted).

One request's texts are bounded (:func:`tada.limits.check_class_phrases`: count and length, checked
before tokenising) and encoded in chunks by :func:`encode_in_chunks`, which checks between chunks
whether the job was stopped (:func:`tada.errors.check_stopped`), so Stop frees the model promptly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from functools import cache
from typing import Any

import torch

from tada.errors import TextTooLongError, check_stopped, quote
from tada.limits import check_class_phrases

__all__ = [
    "CONTEXT_LENGTH",
    "ENCODE_CHUNK",
    "TextTooLongError",
    "class_texts",
    "tokenize",
    "encode_in_chunks",
    "TextFeatureCache",
]

CONTEXT_LENGTH = 77
#: Texts encoded per step (a stop request takes effect between steps).
ENCODE_CHUNK = 32


@cache
def _tokenizer() -> Any:
    # Imported lazily: open_clip pulls in timm and takes a few seconds to import.
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def class_texts(names: Sequence[str], template: str = "{}") -> list[str]:
    """The texts fed to the text encoder for some class names (ILA's template is the bare name).

    Raises:
        tada.errors.TooManyPhrasesError, TextTooLongError: beyond :mod:`tada.limits`' bounds.
    """
    if isinstance(names, str):
        raise TypeError("class names must be a list of strings, not a single string")
    names = list(names)
    check_class_phrases([str(n) for n in names])  # before formatting or tokenising anything
    texts = [template.format(str(n)) for n in names]
    if not texts:
        raise ValueError("at least one class name is needed")
    return texts


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """CLIP BPE token ids ``(K, context_length)``: ``[SOT] + tokens + [EOT]``, zero padded.

    Raises:
        TextTooLongError: a text does not fit in ``context_length`` tokens (never truncated silently).
    """
    if isinstance(texts, str):
        texts = [texts]
    tok = _tokenizer()
    for text in texts:
        needed = len(tok.encode(text)) + 2  # + start and end tokens
        if needed > context_length:
            raise TextTooLongError(
                f"Text of {needed} tokens does not fit the {context_length}-token context: {quote(text)}"
            )
    with torch.device("cpu"):  # token ids are data, also when a model is being built on ``meta``
        return tok(list(texts), context_length=context_length).long()


def encode_in_chunks(
    encode: Callable[[torch.Tensor], torch.Tensor], tokens: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """``encode(tokens)`` computed ``chunk`` rows at a time, stopping between chunks when the job running
    this was stopped (raises :class:`tada.errors.Cancelled`).  Each row is encoded on its own (causal
    attention, no cross-row interaction), so chunking does not change the features.  ``chunk``
    defaults to :data:`ENCODE_CHUNK`.
    """
    chunk = chunk or ENCODE_CHUNK
    if tokens.shape[0] <= chunk:
        check_stopped()
        return encode(tokens)
    parts = []
    for start in range(0, tokens.shape[0], chunk):
        check_stopped()
        parts.append(encode(tokens[start : start + chunk]))
    return torch.cat(parts)


class TextFeatureCache:
    """Least-recently-used cache of text features, keyed by label set (and device/dtype/weights version).

    Features are stored detached; a lookup never changes the model's mode (the official code's
    ``cache_text`` switched the model to train mode as a side effect, which we do not reproduce).
    """

    def __init__(self, maxsize: int = 4):
        self.maxsize = maxsize
        self._store: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The features cached under ``key``, computing and storing them on a miss (``no_grad``, as normal
        tensors even inside ``inference_mode``)."""
        if key in self._store:
            self.hits += 1
            self._store.move_to_end(key)
            return self._store[key]
        self.misses += 1
        # Never store an inference tensor: a first lookup may happen under ``torch.inference_mode()``
        # (the app's prediction), and a later gradient pass (integrated gradients, Grad-CAM) that reuses
        # the features would fail with "Inference tensors cannot be saved for backward".
        with torch.inference_mode(False), torch.no_grad():
            value = compute().detach()
        self._store[key] = value
        while len(self._store) > self.maxsize:
            self._store.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every cached entry (after the weights changed)."""
        self._store.clear()

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._store
