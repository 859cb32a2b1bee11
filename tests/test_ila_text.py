"""CLIP BPE tokenisation of ILA's class texts (open_clip) and the text-feature cache."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tada.labels import get_labels
from tada.text import TextFeatureCache, TextTooLongError, class_texts, tokenize

SOT, EOT = 49406, 49407


@pytest.fixture(scope="module")
def fixture(reference_dir):
    ila = reference_dir / "ila/fixtures"
    config = json.loads((ila / "ila_tiny.config.json").read_text())
    return config, load_file(ila / "ila_tiny.io.safetensors")


def test_fixture_texts_give_the_official_token_ids(fixture):
    config, io = fixture
    texts = class_texts(config["classes"], config["prompt_template"])
    assert texts == config["texts"]  # the official template is the bare class name
    tokens = tokenize(texts)
    assert tokens.dtype == torch.long and tokens.shape == (8, 77)
    assert torch.equal(tokens, io["text_tokens_clip"])
    # The fixture model's remapped ids are the same texts through its 45-entry vocabulary.
    assert torch.equal(io["vocab_map"][io["text_tokens"]], tokens)


@pytest.mark.parametrize(("label_set", "count", "longest"), [("kinetics400", 400, 10), ("ssv2", 174, 20)])
def test_every_label_set_name_tokenises(label_set, count, longest):
    names = get_labels(label_set)
    tokens = tokenize(class_texts(names))
    assert tokens.shape == (count, 77)
    assert (tokens[:, 0] == SOT).all()
    lengths = (tokens != 0).sum(dim=1)  # SOT + text + EOT, then zero padding
    assert torch.equal(tokens[torch.arange(count), lengths - 1], torch.full((count,), EOT))
    assert (tokens.argmax(dim=1) == lengths - 1).all()  # the text encoder finds EOT by argmax
    # Reference NOTES §8: the longest K400 name is 10 tokens and the longest SSv2 name 20 (with SOT/EOT).
    assert int(lengths.max()) == longest
    assert len({tuple(t.tolist()) for t in tokens}) == count  # distinct names, distinct ids


def test_too_long_texts_raise_instead_of_truncating():
    assert tokenize(["word " * 75]).shape == (1, 77)  # 75 tokens + SOT + EOT fit exactly
    with pytest.raises(TextTooLongError, match="77-token"):
        tokenize(["word " * 76])
    with pytest.raises(ValueError):
        class_texts([])
    with pytest.raises(TypeError):
        class_texts("juggling")


def test_feature_cache_is_lru_and_does_not_track_gradients():
    cache = TextFeatureCache(maxsize=2)
    weight = torch.ones(3, requires_grad=True)
    calls = []

    def compute(tag):
        def fn():
            calls.append(tag)
            return weight * len(calls)

        return fn

    a = cache.get("a", compute("a"))
    assert not a.requires_grad
    cache.get("b", compute("b"))
    assert cache.get("a", compute("a")) is a  # hit: not recomputed
    cache.get("c", compute("c"))  # evicts the least recently used ("b")
    assert "b" not in cache and "a" in cache and len(cache) == 2
    assert calls == ["a", "b", "c"] and (cache.hits, cache.misses) == (1, 3)
