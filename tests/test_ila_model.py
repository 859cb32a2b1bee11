"""ILA against the official reference: tiny fixture model, manifests, eval semantics, trace, open vocabulary."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

import tada
from tada._factory import infer_architecture
from tada.checkpoints import CheckpointMismatchError, UnsafeCheckpointError, read_checkpoint
from tada.labels import get_labels
from tada.models.ila import ILA, OpenVocabularyUnavailableError
from tada.text import TextTooLongError, class_texts, tokenize

ILA_LAYERS = [f"visual.transformer.resblocks.{i}.message_attn" for i in range(2)]
TOL = {"atol": 1e-4, "rtol": 1e-4}
# Constructor arguments shared by the official XCLIP and our builders (the official T is num_frames).
TINY_ARGS = (
    "embed_dim image_resolution vision_layers vision_width vision_patch_size context_length vocab_size "
    "transformer_width transformer_heads transformer_layers mit_layers prompts_layers"
).split()


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ila_dir(reference_dir):
    return reference_dir / "ila"


@pytest.fixture(scope="module")
def config(ila_dir):
    return json.loads((ila_dir / "fixtures/ila_tiny.config.json").read_text())


@pytest.fixture(scope="module")
def io(ila_dir):
    return load_file(ila_dir / "fixtures/ila_tiny.io.safetensors")


def tiny_kwargs(config, **changes):
    """The builder arguments of the reduced official model (``constructor`` in the config)."""
    c = config["constructor"]
    kwargs = {k: c[k] for k in TINY_ARGS}
    kwargs.update(num_frames=c["T"], num_classes=len(config["classes"]))
    kwargs.update(changes)
    return kwargs


@pytest.fixture(scope="module")
def tiny(ila_dir, config, io):
    """The fixture checkpoint loaded through the public path, scoring the fixture's 8 class texts."""
    model = tada.create_model("ila_b16", checkpoint=ila_dir / "fixtures/ila_tiny.pth", **tiny_kwargs(config))
    model.set_text_tokens(io["text_tokens"], config["classes"])
    return model


@pytest.fixture(scope="module")
def tiny_full_vocab(ila_dir, config, io):
    """The fixture weights in a model with the full 49408-token CLIP vocabulary, so that real class
    names go through open_clip tokenisation (the 45 used rows are put back at their CLIP ids)."""
    model = tada.create_model("ila_b16.k400_8f", **tiny_kwargs(config, vocab_size=49408, num_classes=400))
    sd = dict(read_checkpoint(ila_dir / "fixtures/ila_tiny.pth").state_dict)
    emb = torch.zeros(49408, sd["token_embedding.weight"].shape[1])
    emb[io["vocab_map"]] = sd["token_embedding.weight"]
    sd["token_embedding.weight"] = emb
    tada.checkpoints.load_state_dict_strict(model, sd)
    return model


# --- the fixture model reproduces the official outputs -----------------------------------------------


def test_fixture_reproduces_logits_and_features(tiny, config, io):
    with torch.no_grad():
        out = tiny.forward_features(io["input"])
    torch.testing.assert_close(out["logits"], io["logits"], **TOL)
    assert tiny.labels == config["classes"]
    assert torch.equal(out["logits"].argmax(-1), io["logits"].argmax(-1))
    torch.testing.assert_close(tada.probabilities(out["logits"]), io["probs"], **TOL)
    torch.testing.assert_close(out["video_features"], io["video_features"], **TOL)
    normed = torch.nn.functional.normalize(out["video_features"], dim=-1)
    torch.testing.assert_close(normed, io["video_features_normed"], **TOL)
    torch.testing.assert_close(out["text_features"], io["text_features_raw"], **TOL)
    torch.testing.assert_close(out["text_features_prompted"], io["text_features_prompted"], **TOL)
    torch.testing.assert_close(
        torch.nn.functional.normalize(out["text_features_prompted"], dim=-1), io["text_features_normed"], **TOL
    )
    torch.testing.assert_close(out["img_features"], io["img_features"], **TOL)
    torch.testing.assert_close(out["cls_features"], io["cls_features"], **TOL)
    torch.testing.assert_close(out["cls_features"].reshape(16, -1), io["visual_cls_proj"], **TOL)


def test_fixture_points_masks_and_block_outputs(tiny, io):
    captured = {}

    def keep(name):
        def hook(_module, _inputs, output):
            captured[name] = output

        return hook

    handles = [tiny.get_submodule(n).register_forward_hook(keep(n)) for n in ILA_LAYERS]
    handles += [tiny.visual.transformer.resblocks[i].register_forward_hook(keep(f"block{i}")) for i in range(2)]
    try:
        with torch.no_grad(), tada.trace(tiny) as tr:
            tiny(io["input"])
    finally:
        for h in handles:
            h.remove()
    assert list(tr.points) == ILA_LAYERS
    for i, name in enumerate(ILA_LAYERS):
        torch.testing.assert_close(tr.points[name], io[f"points/{name}"], **TOL)
        torch.testing.assert_close(tr.masks_pre[name], io[f"mask_pre/{name}"], **TOL)
        torch.testing.assert_close(tr.masks_cur[name], io[f"mask_cur/{name}"], **TOL)
        # Pixel centres of the 64 px input, patch 16: px = 32 + 24 u.
        torch.testing.assert_close(tr.points_px[name], 32 + 24 * io[f"points/{name}"], **TOL)
        assert tr.frame_map[name] == [[t] for t in range(8)]
        pair, aligned, interactive = captured[name]
        torch.testing.assert_close(aligned, io[f"ila_aligned_frame/{name}"], **TOL)
        torch.testing.assert_close(interactive, io[f"ila_interactive_feature/{name}"], **TOL)
        torch.testing.assert_close(pair, io[f"ila_pair/{name}"], **TOL)
        block = f"visual.transformer.resblocks.{i}"
        torch.testing.assert_close(captured[f"block{i}"], io[f"block_out/{block}"], **TOL)
    torch.testing.assert_close(tr.class_features, io["cls_features"], **TOL)
    # The fixture's points spread over the grid: the test is not passing on centred points.
    assert float(tr.points[ILA_LAYERS[0]].abs().max()) > 0.3


def test_alignment_losses_match_the_official_training_loss(tiny, io):
    with torch.no_grad():
        tiny(io["input"])
    losses = tiny.alignment_losses()
    torch.testing.assert_close(torch.stack(losses), io["cos_loss"], **TOL)
    assert all(0.0 < float(loss) < 2.0 for loss in losses)  # 1 - cos, not a degenerate 0


def test_eval_is_the_intended_validation_not_the_train_mode_leak(tiny, io):
    tiny.clear_text_cache()
    with torch.no_grad():
        first = tiny(io["input"])
        second = tiny(io["input"])  # the official second call ran in train mode (cache_text -> train())
    torch.testing.assert_close(first, io["logits"], **TOL)
    torch.testing.assert_close(second, io["logits"], **TOL)
    assert not any(m.training for m in tiny.modules())
    assert (first - io["logits_validate_second_call"]).abs().max() > 0.05
    assert (first - io["logits_is_training_true"]).abs().max() > 1e-3

    # The two official pitfalls are reproducible on purpose, which shows what they are.
    leaky = copy.deepcopy(tiny).train()
    for name in ILA_LAYERS:
        leaky.get_submodule(name).disturb_points = False
    with torch.no_grad():
        torch.testing.assert_close(leaky(io["input"]), io["logits_validate_second_call"], **TOL)
    jittered = copy.deepcopy(tiny)
    for name in ILA_LAYERS:
        jittered.get_submodule(name).disturb_points = True
    with torch.no_grad():
        torch.testing.assert_close(jittered(io["input"]), io["logits_is_training_true"], **TOL)


def test_batch_of_one_matches_the_batch(tiny, io):
    with torch.no_grad():
        single = torch.cat([tiny(io["input"][i : i + 1]) for i in range(2)])
    torch.testing.assert_close(single, io["logits"], **TOL)


@pytest.mark.parametrize("frames", [2, 4, 16])
def test_other_frame_counts_run(config, frames):
    torch.manual_seed(frames)
    model = tada.create_model("ila_b16", **tiny_kwargs(config, num_frames=frames))
    model.set_text_tokens(torch.randint(1, 44, (3, 77)).index_fill_(1, torch.tensor([5]), 44))
    x = torch.randn(1, frames, 3, 64, 64)
    with torch.no_grad(), tada.trace(model) as tr:
        logits = model(x)
    assert logits.shape == (1, 3) and torch.isfinite(logits).all()
    assert tr.points[ILA_LAYERS[0]].shape == (1, frames - 1, 4)
    assert tr.masks_cur[ILA_LAYERS[1]].shape == (1, frames - 1, 4, 4)
    with pytest.raises(ValueError, match=f"built for {frames} frames"):
        model(torch.randn(1, frames + 1, 3, 64, 64))
    with pytest.raises(ValueError, match="BTCHW"):
        model(torch.randn(1, 3, frames, 64, 64))


def test_model_built_without_the_registry_still_traces_in_its_layout(config):
    model = ILA(**tiny_kwargs(config, num_frames=3, vocab_size=49408)).eval()
    assert model.pretrained_cfg.input_layout == "BTCHW" and model.pretrained_cfg.crop_size == 64
    with torch.no_grad(), tada.trace(model) as tr:
        model(torch.randn(1, 3, 3, 64, 64), class_names=["a cat", "a dog"])
    assert tr.num_input_frames == 3 and tr.frame_map[ILA_LAYERS[0]] == [[0], [1], [2]]


def test_attention_trace_records_visual_blocks_not_the_cached_text(tiny, io):
    tiny.clear_text_cache()  # the text side runs inside the trace, and must not be recorded
    with torch.no_grad(), tada.trace(tiny, attention=True) as tr:
        logits = tiny(io["input"])
    torch.testing.assert_close(logits, io["logits"], **TOL)
    blocks = [f"visual.transformer.resblocks.{i}" for i in range(2)]
    assert all(tr.attention[b].shape == (16, 2, 17, 17) for b in blocks)
    assert not any(k.startswith("transformer.") for k in tr.attention)


# --- open vocabulary ---------------------------------------------------------------------------------


def test_class_names_through_open_clip_reproduce_official_logits(tiny_full_vocab, config, io):
    tiny_full_vocab.set_class_names(config["classes"])
    with torch.no_grad():
        logits = tiny_full_vocab(io["input"])
    torch.testing.assert_close(logits, io["logits"], **TOL)
    assert tiny_full_vocab.labels == config["classes"]


def test_open_vocabulary_phrases(tiny_full_vocab, config, io):
    model = tiny_full_vocab
    phrases = ["dancing backwards", "juggling teacups", "playing origami", "riding a unicycle backwards", "a cat"]
    model.set_class_names(phrases)
    with torch.no_grad():
        logits = model(io["input"])
        again = model(io["input"])
    assert logits.shape == (2, 5) and model.labels == phrases
    # Each phrase is scored on its own: a phrase that is also a fixture class gets the official score.
    torch.testing.assert_close(logits[:, 1], io["logits"][:, 0], **TOL)
    torch.testing.assert_close(logits[:, 3], io["logits"][:, 1], **TOL)
    torch.testing.assert_close(again, logits)
    # Reordering the phrases reorders the columns.
    with torch.no_grad():
        reordered = model(io["input"], class_names=phrases[::-1])
    torch.testing.assert_close(reordered, logits.flip(-1), **TOL)
    assert model.labels == phrases  # a one-off class_names does not change the default


def test_text_encoder_skips_only_positions_after_the_last_end_token(tiny_full_vocab):
    model = tiny_full_vocab
    tokens = tokenize(class_texts(get_labels("ssv2")))  # 3 to 20 tokens of the 77
    with torch.no_grad():
        short = model.encode_text(tokens)
        # The official pass runs the whole 77-token context.
        x = model.token_embedding(tokens) + model.positional_embedding
        x = model.ln_final(model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
        full = x[torch.arange(len(tokens)), tokens.argmax(-1)] @ model.text_projection
    torch.testing.assert_close(short, full, **TOL)


def test_text_features_are_cached_per_label_set(tiny_full_vocab, config, io):
    model = tiny_full_vocab
    model.clear_text_cache()
    cache = model.text_cache
    hits, misses = cache.hits, cache.misses
    x = io["input"][:1]
    with torch.no_grad():
        model.set_class_names(["juggling teacups", "a cat"])
        model(x)
        model(x)
        model.set_class_names(config["classes"])
        model(x)
        model.set_class_names(["juggling teacups", "a cat"])
        model(x)
    assert (cache.misses - misses, cache.hits - hits) == (2, 2)
    # New weights invalidate the cache.
    model.load_state_dict(model.state_dict())
    assert len(cache) == 0
    # Training the text side bypasses the cache so that gradients reach it.
    model.train()
    try:
        assert model.text_features().requires_grad and len(cache) == 0
    finally:
        model.eval()


def test_default_labels_are_the_pretrained_label_set(tiny_full_vocab, io):
    model = tiny_full_vocab
    model.set_class_names(None)
    with torch.no_grad():
        logits = model(io["input"][:1])
    assert logits.shape == (1, 400) and model.labels == get_labels("kinetics400")


def test_phrases_too_long_or_out_of_vocabulary_are_refused(tiny_full_vocab, tiny):
    with pytest.raises(TextTooLongError):
        tiny_full_vocab.set_class_names(["word " * 80])
    with pytest.raises(ValueError, match="vocabulary"):
        tiny.set_class_names(["a cat"])  # the fixture model only knows 45 token ids


# --- checkpoints, manifests, registry ------------------------------------------------------------------


MANIFESTS = {
    "ila_b32_8f": ("ila_b32.k400_8f", {}),
    "ila_b16_8f": ("ila_b16.k400_8f", {}),
    "ila_b16_16f": ("ila_b16.k400_16f", {}),
    "ila_l14_8f": ("ila_l14.k400_8f", {}),
    # The SSV2-branch manifests were made with the code's default 400-wide head (see the README caveat).
    "ila_ssv2_b16_8f": ("ila_b16.ssv2_8f", {"num_classes": 400}),
    "ila_ssv2_l14_8f": ("ila_l14.ssv2_8f", {"num_classes": 400}),
}


@pytest.mark.parametrize("manifest", sorted(MANIFESTS))
def test_full_size_models_match_official_manifests(ila_dir, manifest):
    ref = json.loads((ila_dir / f"manifests/{manifest}.json").read_text())
    name, kwargs = MANIFESTS[manifest]
    with torch.device("meta"):
        model = tada.create_model(name, **kwargs)
    sd = model.state_dict()
    assert list(sd) == list(ref["shapes"])  # same keys, in the official order
    assert {k: list(v.shape) for k, v in sd.items()} == ref["shapes"]
    assert {k for k, v in sd.items() if v.dtype != torch.float32} == set(ref["non_float32_dtypes"])
    # The architecture is recovered from the key shapes alone.
    arch, inferred = infer_architecture({k: torch.empty(s, device="meta") for k, s in ref["shapes"].items()})
    assert arch == name.split(".")[0] and inferred["num_frames"] == ref["num_frames"]
    assert inferred["ssv2"] == ("ssv2" in manifest)


def test_l14_336_differs_from_l14_in_positions_only():
    with torch.device("meta"):
        a = tada.create_model("ila_l14_336.k400_16f").state_dict()
        b = tada.create_model("ila_l14.k400_8f", num_frames=16).state_dict()
    diff = {k for k in a if a[k].shape != b[k].shape}
    assert diff == {"visual.positional_embedding"} and a["visual.positional_embedding"].shape == (577, 1024)


def test_registry_lists_every_release():
    k400 = ["ila_b32.k400_8f", "ila_b32.k400_16f", "ila_b16.k400_8f", "ila_b16.k400_16f", "ila_l14.k400_8f"]
    ssv2 = ["ila_b16.ssv2_8f", "ila_b16.ssv2_16f", "ila_l14.ssv2_8f", "ila_l14_336.ssv2_16f"]
    expected = {*k400, "ila_l14_336.k400_16f", *ssv2}
    released = {n for n in tada.list_models("ila*") if tada.get_pretrained_cfg(n).gdrive_id}
    assert released == expected
    cfg = tada.get_pretrained_cfg("ila_l14_336.k400_16f")
    assert (cfg.num_frames, cfg.crop_size, cfg.test_scale, cfg.input_layout) == (16, 336, 384, "BTCHW")
    assert cfg.mean == (123.675, 116.28, 103.53) and cfg.pixel_range == 255.0 and cfg.reported_top1 == 88.7
    assert cfg.gdrive_id and (cfg.num_clips, cfg.num_crops) == (4, 3)
    ssv2_cfg = tada.get_pretrained_cfg("ila_b16.ssv2_8f")
    assert (ssv2_cfg.label_set, ssv2_cfg.num_classes, ssv2_cfg.model_kwargs["ssv2"]) == ("ssv2", 174, True)


def test_architecture_inferred_from_the_fixture_checkpoint(ila_dir, config, io):
    ckpt = read_checkpoint(ila_dir / "fixtures/ila_tiny.pth")
    arch, kwargs = infer_architecture(ckpt.state_dict, ckpt.config)
    expected = tiny_kwargs(config)
    expected.pop("num_classes")
    assert arch == "ila_b16" and {k: kwargs[k] for k in expected} == expected and kwargs["ssv2"] is False
    model = tada.create_model(arch, checkpoint=ila_dir / "fixtures/ila_tiny.pth", **kwargs)
    model.set_text_tokens(io["text_tokens"])
    with torch.no_grad():
        torch.testing.assert_close(model(io["input"]), io["logits"], **TOL)
    assert isinstance(model, ILA)
    from tada.models.ila import infer_ila

    assert infer_ila({"backbone.stem.weight": torch.zeros(1)}) is None


def test_loading_is_strict_and_crafted_pickles_are_refused(ila_dir, config, tmp_path):
    sd = dict(read_checkpoint(ila_dir / "fixtures/ila_tiny.pth").state_dict)
    sd.pop("visual.transformer.resblocks.1.message_attn.prediction_block.12.weight")
    path = tmp_path / "partial.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(CheckpointMismatchError, match="prediction_block.12.weight"):
        tada.create_model("ila_b16", checkpoint=path, **tiny_kwargs(config))

    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('code ran')",))

    evil = tmp_path / "evil.pth"
    torch.save({"model": sd, "config": Payload()}, evil)  # the official layout, with a code-running config
    with pytest.raises(UnsafeCheckpointError, match="exec"):
        tada.create_model("ila_b16", checkpoint=evil, **tiny_kwargs(config))


def test_ssv2_form_classifies_with_its_head(config):
    torch.manual_seed(0)
    model = tada.create_model("ila_b16.ssv2_8f", **tiny_kwargs(config, num_classes=174))
    assert not model.supports_open_vocabulary and len(model.labels) == 174
    assert "interactive_block.0.weight" in "".join(model.state_dict())
    with torch.no_grad(), tada.trace(model) as tr:
        logits = model(torch.randn(1, 8, 3, 64, 64))
    assert logits.shape == (1, 174) and tr.points[ILA_LAYERS[1]].shape == (1, 7, 4)
    with pytest.raises(OpenVocabularyUnavailableError, match="Something-Something"):
        model.set_class_names(["a cat"])
    with pytest.raises(OpenVocabularyUnavailableError):
        model(torch.randn(1, 8, 3, 64, 64), class_names=["a cat"])
