"""Training the bundled motion models: one step learns, the CLI writes a loadable model folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import tada
from tada.cli import main
from tada.models.motion_zoo import BUNDLED_MODELS
from tada.motion import CLASSES
from tada.motion.batches import focus_labels, make_batch
from tada.motion.generator import REVERSED_LABEL, clip_label, clip_seed, generate_clip, object_flow
from tada.motion.objectives import AUX_MASK_DEFAULT, AUX_POINTS_DEFAULT, ObjectMaskAux, PointAux, early_layer
from tada.motion.train import _lr_factor, train_step

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_one_training_step_changes_the_weights(name: str) -> None:
    torch.manual_seed(0)
    model = tada.create_model(name)
    x, y = make_batch(model.pretrained_cfg, seed=5, start=0, n=2)
    before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss, acc = train_step(model, optimizer, x, y)
    assert torch.isfinite(torch.tensor(loss)) and 0.0 <= acc <= 1.0
    changed = [k for k, v in model.state_dict().items() if k in before and not torch.equal(v, before[k])]
    # The classifier and the first layer both moved: gradients reached the whole network.
    assert len(changed) > len(before) // 2
    first = next(k for k in before if "conv1" in k or "stem" in k or "stages.0" in k or "downsample" in k)
    assert first in changed


@pytest.mark.parametrize("name", [n for n in BUNDLED_MODELS if n.split(".")[0] in AUX_MASK_DEFAULT])
def test_object_mask_aux_loss_trains_theearly_layer(name: str) -> None:
    torch.manual_seed(0)
    model = tada.create_model(name)
    cfg = model.pretrained_cfg
    x, y, masks = make_batch(cfg, seed=5, start=0, n=2, masks=True)
    assert masks.shape == (2, cfg.num_frames, cfg.crop_size, cfg.crop_size) and 0 < masks.mean() < 0.5
    aux = ObjectMaskAux(model, cfg.num_frames)
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(aux.parameters()), lr=1e-3)
    early = early_layer(model)  # a ConvNeXt's first stage, ILA's first vision block
    stage0 = {k: v.clone() for k, v in early.state_dict().items()}
    head = aux.head.weight.detach().clone()
    loss, _ = train_step(model, optimizer, x, y, aux=aux, masks=masks)
    assert torch.isfinite(torch.tensor(loss)) and not torch.equal(aux.head.weight, head)
    assert any(not torch.equal(v, stage0[k]) for k, v in early.state_dict().items())
    with pytest.raises(RuntimeError, match="forward"):
        aux.loss(masks)  # each loss consumes the features of one forward pass
    aux.remove()
    model(x)
    assert aux._features is None  # removed: the hook no longer records
    assert not any(k.startswith("aux") for k in model.state_dict())  # never part of the saved model


def test_object_mask_aux_motion_term() -> None:
    """With ``flow``, the same head also regresses the object's motion; the batch carries the flow."""
    torch.manual_seed(0)
    model = tada.create_model("tadaconvnextv2_motion")
    cfg = model.pretrained_cfg
    x, y, masks, flow = make_batch(cfg, seed=5, start=0, n=2, masks=True, flow=True)
    assert flow.shape == (*masks.shape, 2) and flow.abs().sum() > 0 and not flow[masks == 0].any()
    plain = ObjectMaskAux(model, cfg.num_frames)
    model(x)
    base = plain.loss(masks)
    plain.remove()
    aux = ObjectMaskAux(model, cfg.num_frames, flow=1.0)
    aux.head.weight.data[:1] = plain.head.weight.data
    aux.head.bias.data[:1] = plain.head.bias.data
    assert aux.head.out_channels == 3
    model(x)
    with pytest.raises(ValueError, match="flow"):
        aux.loss(masks)
    model(x)
    assert aux.loss(masks, flow) > base  # the mask term is unchanged; the motion term adds to it
    optimizer = torch.optim.AdamW(list(model.parameters()) + list(aux.parameters()), lr=1e-3)
    loss, _ = train_step(model, optimizer, x, y, aux=aux, masks=masks, flow=flow)
    assert torch.isfinite(torch.tensor(loss))
    aux.remove()


def test_make_batch_matches_the_model_layout() -> None:
    for name in BUNDLED_MODELS:
        cfg = tada.get_pretrained_cfg(name)
        x, y = make_batch(cfg, seed=1, start=3, n=2)
        t, s = cfg.num_frames, cfg.crop_size
        assert tuple(x.shape) == ((2, t, 3, s, s) if cfg.input_layout == "BTCHW" else (2, 3, t, s, s))
        assert y.dtype == torch.int64


def test_focus_gives_a_fraction_of_the_clips_to_the_focus_classes() -> None:
    focus = [CLASSES.index("rotating clockwise"), CLASSES.index("rotating anticlockwise")]
    labels = focus_labels(7, 0, 1100, focus, 0.25)
    hits = [i for i in range(1100) if (i + 1) // 4 > i // 4]  # every 4th clip, evenly spaced
    assert [labels[i] for i in hits] == [focus[k % 2] for k in range(len(hits))]
    assert all(labels[i] == clip_label(7, i) for i in range(1100) if i not in set(hits))
    # Batches are slices of the same stream, whatever the batch size.
    assert focus_labels(7, 32, 32, focus, 0.25) == labels[32:64]
    cfg = tada.get_pretrained_cfg("frame2d_motion.tiny_8f")
    _, y = make_batch(cfg, seed=7, start=0, n=8, labels=labels[:8])
    assert y.tolist() == labels[:8]
    with pytest.raises(ValueError, match="fraction"):
        focus_labels(7, 0, 4, focus, 1.5)


@pytest.mark.parametrize("name", ["tadaconvnextv2_motion.tiny_8f", "ila_motion.tiny_8f"])
def test_reverse_pairs_are_the_same_clips_played_backwards(name: str) -> None:
    cfg = tada.get_pretrained_cfg(name)
    x, y, masks, flow = make_batch(cfg, seed=4, start=10, n=6, masks=True, flow=True, reverse_pairs=True)
    fx, fy, fmasks, fflow = make_batch(cfg, seed=4, start=10, n=3, masks=True, flow=True)
    time_dim = 1 if cfg.input_layout == "BTCHW" else 2
    assert torch.equal(x[:3], fx) and torch.equal(x[3:], fx.flip(time_dim))
    assert y[:3].tolist() == fy.tolist()
    assert y[3:].tolist() == [REVERSED_LABEL[k] for k in fy.tolist()]
    assert torch.equal(masks[3:], fmasks.flip(1)) and torch.equal(flow[:3], fflow)
    # The reversed clips' motion is their own (recomputed from the reversed truth), not a copy.
    clip = generate_clip(clip_seed(4, 10), clip_label(4, 10), cfg.num_frames, cfg.crop_size).reversed()
    expected = object_flow(clip.centers, clip.scales, clip.angles, clip.masks)
    assert torch.allclose(flow[3], torch.from_numpy(expected))
    with pytest.raises(ValueError, match="even"):
        make_batch(cfg, seed=4, start=0, n=3, reverse_pairs=True)
    # Labels are given per stream clip: n/2 of them with reverse pairs, never silently cut short.
    _, y = make_batch(cfg, seed=4, start=0, n=4, labels=[1, 5], reverse_pairs=True)
    assert y.tolist() == [1, 5, REVERSED_LABEL[1], REVERSED_LABEL[5]]
    with pytest.raises(ValueError, match="needs 2 labels for 4 clips"):
        make_batch(cfg, seed=4, start=0, n=4, labels=[1, 5, 2, 6], reverse_pairs=True)


def test_train_refuses_unknown_focus_classes(tmp_path) -> None:
    from tada.motion.train import train

    with pytest.raises(ValueError, match="unknown focus classes"):
        train("frame2d_motion.tiny_8f", tmp_path, steps=1, focus=["juggling"], focus_fraction=0.5)
    with pytest.raises(ValueError, match="focus-fraction"):
        train("frame2d_motion.tiny_8f", tmp_path, steps=1, focus=["no motion"])


def test_focus_from_starts_the_focus_part_way_through(tmp_path, monkeypatch) -> None:
    import tada.motion.train as train_module

    seen = []
    real = train_module.make_batch

    def spy(*args, **kwargs):
        seen.append(kwargs.get("labels"))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "make_batch", spy)
    focus = ["rotating clockwise", "rotating anticlockwise"]
    train_module.train(
        "frame2d_motion.tiny_8f",
        tmp_path,
        steps=4,
        batch_size=2,
        threads=1,
        focus=focus,
        focus_fraction=1.0,
        focus_from=0.5,
        log=lambda _msg: None,
    )
    ids = [CLASSES.index(c) for c in focus]
    assert seen[:2] == [None, None]  # steps 0 and 1: progress 0 and 0.25, before the focus
    assert [list(labels) for labels in seen[2:]] == [ids, ids]  # every clip, the two classes in turn
    card = (tmp_path / "README.md").read_text()
    assert "from 50% of training on" in card
    with pytest.raises(ValueError, match="focus-from"):
        train_module.train("frame2d_motion.tiny_8f", tmp_path, steps=1, focus=focus, focus_fraction=0.5, focus_from=1)


def test_ila_alignment_loss_joins_the_step_and_moves_the_point_heads() -> None:
    import copy

    torch.manual_seed(0)
    plain = tada.create_model("ila_motion.tiny_8f")
    aligned = copy.deepcopy(plain)
    x, y = make_batch(plain.pretrained_cfg, seed=5, start=0, n=2)
    before = [b.message_attn.prediction_block[12].weight.detach().clone() for b in plain.visual.transformer.resblocks]

    def block_weights(model):
        return [b.message_attn.prediction_block[12].weight for b in model.visual.transformer.resblocks]

    # From the same start, only the alignment term reaches the point heads on a first step: the ILA
    # residual projections start at zero, so the classification loss gives them no gradient yet.
    train_step(plain, torch.optim.SGD(plain.parameters(), lr=0.1), x, y, align_weight=0.0)
    assert all(torch.equal(w, b) for w, b in zip(block_weights(plain), before, strict=True))
    train_step(aligned, torch.optim.SGD(aligned.parameters(), lr=0.1), x, y, align_weight=1.0)
    assert all(not torch.equal(w, b) for w, b in zip(block_weights(aligned), before, strict=True))
    assert len(aligned.alignment_losses()) == 2


def _ila_small() -> torch.nn.Module:
    # The real ILA code path at a 4 x 4 token grid and one block: quick to trace.
    torch.manual_seed(0)
    return tada.create_model("ila_motion.tiny_8f", image_resolution=16, vision_layers=1)


def test_a_compiled_training_step_matches_the_eager_one() -> None:
    """``--compile``: the object-mask hook, ILA's stored pair tokens and BatchNorm's running statistics all
    live outside the traced graph; one step must still update the weights exactly as the eager step does.
    (``aot_eager`` checks the graph capture without needing a C++ compiler; inductor's kernels are torch's.)"""
    import copy

    eager = _ila_small()
    compiled = copy.deepcopy(eager)
    cfg = eager.pretrained_cfg
    x, y, masks, flow, centers = make_batch(
        cfg, seed=5, start=0, n=4, masks=True, flow=True, reverse_pairs=True, centers=True
    )
    x = torch.nn.functional.interpolate(x.flatten(0, 1), size=16, mode="bilinear").unflatten(0, x.shape[:2])
    centers = centers / 2  # the 32-px clips squeezed into 16 px
    results = []
    for model, wrapped in ((eager, eager), (compiled, torch.compile(compiled, backend="aot_eager"))):
        torch.manual_seed(1)
        aux = ObjectMaskAux(model, cfg.num_frames, flow=1.0)
        points = PointAux(model)  # its hooks on the point heads' tanh, too
        opt = torch.optim.SGD(list(model.parameters()) + list(aux.parameters()), lr=0.5)
        loss, _ = train_step(
            wrapped, opt, x, y, aux=aux, masks=masks, flow=flow, align_weight=1.0, points=points, centers=centers
        )
        aux.remove()
        points.remove()
        results.append(loss)
    assert results[0] == pytest.approx(results[1], rel=1e-5)
    for (name, a), (_, b) in zip(eager.state_dict().items(), compiled.state_dict().items(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6), name
    assert any(not torch.equal(a, b) for a, b in zip(eager.state_dict().values(), _ila_small().state_dict().values()))


def test_train_with_compile_runs_its_steps_through_the_compiled_model(tmp_path, monkeypatch) -> None:
    import tada.motion.train as train_module

    compiled = []
    real = torch.compile

    def spy(model, **kwargs):
        compiled.append(model)
        return real(model, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    seen = []
    real_step = train_module.train_step

    def step_spy(model, *args, **kwargs):
        seen.append(model)
        return real_step(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", step_spy)
    model = train_module.train(
        "frame2d_motion.tiny_8f", tmp_path, steps=2, batch_size=2, threads=1, compile=True, log=lambda _msg: None
    )
    assert compiled == [model] and len(seen) == 2
    assert all(m is not model and getattr(m, "_orig_mod", None) is model for m in seen)
    assert json.loads((tmp_path / "config.json").read_text())["training"]["compiled"] is True
    assert "through `torch.compile`" in (tmp_path / "README.md").read_text()


def test_a_second_phase_starts_from_the_first_and_its_card_adds_up_both(tmp_path) -> None:
    from tada.motion.train import train

    first = train("frame2d_motion.tiny_8f", tmp_path / "a", steps=1, batch_size=2, threads=1, log=lambda _m: None)
    second = train(
        "frame2d_motion.tiny_8f",
        tmp_path / "b",
        steps=0,
        batch_size=2,
        threads=1,
        init=tmp_path / "a",
        command="python -m tada train --model frame2d_motion --init a",
        log=lambda _m: None,
    )
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # no step taken: the second phase holds the first one's weights
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    phases = [config["training"]["minutes"], config["training"]["initialised_from"]["minutes"]]
    assert config["training"]["initialised_from"]["steps_done"] == 1
    card = (tmp_path / "b" / "README.md").read_text()
    assert "initialised from an earlier run of 1 steps x batch 2" in card
    assert f"all phases together: {sum(phases):.1f} min wall time" in card


def test_train_command_passes_compile_on_and_names_it_in_the_command(monkeypatch) -> None:
    import tada.motion.train as train_module

    calls = []
    monkeypatch.setattr(train_module, "train", lambda name, out, **kwargs: calls.append(kwargs))
    assert main(["train", "--model", "ila_motion", "--steps", "1", "--compile", "--out", "x"]) == 0
    assert calls[0]["compile"] is True and " --compile" in calls[0]["command"]
    assert main(["train", "--model", "ila_motion", "--steps", "1", "--out", "x"]) == 0
    assert calls[1]["compile"] is False and "--compile" not in calls[1]["command"]


def test_compile_without_a_cpp_compiler_is_a_clear_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler-anywhere")
    status = main(["train", "--model", "frame2d_motion", "--steps", "1", "--compile", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert status == 1 and "needs a C++ compiler" in err and "without --compile" in err
    assert "Traceback" not in err and not (tmp_path / "m").exists()


def test_train_refuses_the_alignment_loss_for_models_without_ila(tmp_path) -> None:
    from tada.motion.train import train

    with pytest.raises(ValueError, match="only ILA"):
        train("frame2d_motion.tiny_8f", tmp_path, steps=1, aux_align=1.0)


def test_schedule_warms_up_then_decays() -> None:
    assert _lr_factor(0.0, 0.1) < 0.01
    assert _lr_factor(0.1, 0.1) == pytest.approx(1.0)
    assert _lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert _lr_factor(1.0, 0.1) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("arch", ["frame2d_motion", pytest.param("ila_motion", marks=pytest.mark.slow)])
def test_train_command_writes_a_loadable_model_folder(tmp_path, capsys, arch: str) -> None:
    out = tmp_path / arch
    status = main(
        [
            "train",
            "--model",
            arch,
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--threads",
            "1",
            "--seed",
            "3",
            "--out",
            str(out),
            "--log-every",
            "1",
            "--focus",
            "no motion, bouncing",
            "--focus-fraction",
            "0.5",
            "--focus-from",
            "0.5",
            "--reverse-pairs",
            "--flush-denormals",
        ]
    )
    assert status == 0
    log = capsys.readouterr().out
    assert "step     2" in log and f"saved {out}" in log
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == arch and config["training"]["steps_done"] == 2
    assert config["training"]["seed"] == 3
    card = (out / "README.md").read_text()
    assert "python -m tada train" in card and "seed 3" in card
    assert "--focus 'no motion, bouncing' --focus-fraction 0.5 --focus-from 0.5" in card
    assert config["training"]["focus"] == ["no motion", "bouncing"] and "50% of the clips" in card
    assert "--reverse-pairs --flush-denormals" in card and config["training"]["reverse_pairs"] is True
    assert config["training"]["flush_denormals"] is True
    assert config["training"]["clips_seen"] == 2
    assert "(1 stream clips + the same played backwards) = 2 stream clips" in card
    model = tada.create_model(f"local-dir:{out}")
    assert model.pretrained_cfg.label_set == "motion"
    assert next(model.parameters()).dtype == torch.float32
    x, _ = make_batch(model.pretrained_cfg, seed=9, start=0, n=1)
    assert model(x).shape == (1, 11)


def test_train_command_rejects_unknown_models(capsys) -> None:
    assert main(["train", "--model", "no_such_model", "--steps", "1"]) == 1
    assert "Unknown model" in capsys.readouterr().err


def test_rewriting_a_bundled_folder_keeps_the_lab_notes_of_its_card(tmp_path) -> None:
    """The lab notes live in the model card only: the one writer carries them over on a rewrite."""
    import shutil

    from tada._model_card import LAB_NOTES, lab_notes
    from tada._model_folder import read_model_config
    from tada.motion.train import save_model_folder

    name = "ila_motion.tiny_8f"
    cfg = tada.get_pretrained_cfg(name)
    folder = tmp_path / "ila_motion"
    shutil.copytree(REPO / cfg.local_dir, folder)
    notes = lab_notes((folder / "README.md").read_text())
    assert notes and notes.startswith(LAB_NOTES) and "align_hidden=64" in notes
    model = tada.create_model(name, pretrained=True)
    config = read_model_config(folder)
    save_model_folder(model, folder, {**config["training"], "evaluation": config["evaluation"]})
    card = (folder / "README.md").read_text()
    assert lab_notes(card) == notes and card.index(LAB_NOTES) < card.index("## Input")
    assert read_model_config(folder)["pretrained_cfg"]["family"] == "ila"


def test_make_batch_returns_the_object_centres_last() -> None:
    cfg = tada.get_pretrained_cfg("ila_motion.tiny_8f")
    x, y, centers = make_batch(cfg, seed=4, start=10, n=4, centers=True, reverse_pairs=True)
    assert centers.shape == (4, cfg.num_frames, 2) and centers.dtype == torch.float32
    clip = generate_clip(clip_seed(4, 10), clip_label(4, 10), cfg.num_frames, cfg.crop_size)
    assert torch.allclose(centers[0], torch.from_numpy(clip.centers))
    assert torch.equal(centers[2], centers[0].flip(0))  # the reversed clip's truth is reversed too
    *_, flow, last = make_batch(cfg, seed=4, start=10, n=2, masks=True, flow=True, centers=True)
    assert flow.shape[-1] == 2 and torch.allclose(last[0], centers[0])


def _ila_with_points() -> tuple[torch.nn.Module, PointAux, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = tada.create_model("ila_motion.tiny_8f")
    for block in model.visual.transformer.resblocks:  # points off the centre, as after some training
        torch.nn.init.normal_(block.message_attn.prediction_block[12].weight, std=0.5)
    x, y, centers = make_batch(model.pretrained_cfg, seed=5, start=0, n=4, centers=True)
    return model, PointAux(model), x, y, centers


def test_point_loss_is_the_mean_distance_of_every_layers_points_to_the_object_centre() -> None:
    model, points, x, _, centers = _ila_with_points()
    cfg = model.pretrained_cfg
    model.eval()
    with torch.no_grad(), tada.trace(model) as tr:
        model(x)
        loss = float(points.loss(centers))
    assert len(tr.points_px) == len(points.aligns) == 2  # both ILA layers
    size, patch = cfg.crop_size, 4
    # The same distance in input pixels (targets clipped to where a point can go), back in grid units.
    reach = 0.98 * 0.75 * (size - patch) / 2
    target = (centers - size / 2).clamp(-reach, reach) + size / 2
    gt = torch.stack([target[:, :-1], target[:, 1:]], dim=2)
    per_layer = [(p.reshape(gt.shape) - gt).norm(dim=-1).mean() for p in tr.points_px.values()]
    expected = float(torch.stack(per_layer).mean()) * 2 / (size - patch)
    assert loss == pytest.approx(expected, abs=2e-3)  # the loss is smoothed by 1e-4 under the root
    with pytest.raises(RuntimeError, match="forward"):
        points.loss(centers)  # each loss consumes the points of one forward pass


def test_point_loss_moves_every_point_head_towards_the_object() -> None:
    model, points, x, y, centers = _ila_with_points()
    heads = [b.message_attn.prediction_block for b in model.visual.transformer.resblocks]
    before = [h[12].weight.detach().clone() for h in heads]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    model(x)
    first = float(points.loss(centers).detach())
    for _ in range(15):
        train_step(model, optimizer, x, y, points=points, centers=centers, points_weight=1.0)
    model(x)
    assert float(points.loss(centers).detach()) < 0.7 * first
    assert all(not torch.equal(h[12].weight, b) for h, b in zip(heads, before, strict=True))
    points.remove()
    model(x)
    assert not points._outputs  # removed: the hooks no longer record
    assert not any("aux" in k for k in model.state_dict())  # nothing of it is saved with the model


def test_point_loss_is_ila_only_and_on_by_default_for_the_bundled_ila(tmp_path, capsys) -> None:
    from tada.motion.train import train

    assert AUX_POINTS_DEFAULT == {"ila_motion": 1.0}
    with pytest.raises(ValueError, match="aux-points 0"):
        PointAux(tada.create_model("tadaformer_motion.tiny_8f"))
    with pytest.raises(ValueError, match="aux-points 0"):
        train("frame2d_motion.tiny_8f", tmp_path, steps=1, aux_points=1.0)
    out = tmp_path / "ila"
    assert main(["train", "--model", "ila_motion", "--steps", "1", "--batch-size", "2", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["aux_points"] == 1.0  # the default for ila_motion, recorded
    assert "interactive-point loss (weight 1, training only" in (out / "README.md").read_text()


def test_point_loss_can_stop_part_way_through(tmp_path, monkeypatch) -> None:
    import tada.motion.train as train_module

    calls = []
    real_step = train_module.train_step

    def spy(*args, **kwargs):
        calls.append((kwargs.get("points") is not None, kwargs.get("centers") is not None))
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", spy)
    out = tmp_path / "ila"
    argv = ["train", "--model", "ila_motion", "--steps", "4", "--batch-size", "2", "--threads", "1"]
    assert main([*argv, "--aux-points-until", "0.5", "--out", str(out)]) == 0
    # Steps 0 and 1 (progress 0 and 0.25) with the loss and the generator's centres, steps 2 and 3 without.
    assert calls == [(True, True), (True, True), (False, False), (False, False)]
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["aux_points_until"] == 0.5
    assert "--aux-points-until 0.5" in config["training"]["command"]
    assert "only for the first 50% of this phase" in (out / "README.md").read_text()
    with pytest.raises(ValueError, match="aux-points-until"):
        train_module.train("ila_motion.tiny_8f", tmp_path / "bad", steps=1, aux_points_until=0.0)


def test_text_lr_scales_only_the_ila_text_tower(tmp_path, monkeypatch) -> None:
    import tada.motion.train as train_module

    made = []
    real = torch.optim.AdamW

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    model = train_module.train(
        "ila_motion.tiny_8f", tmp_path, steps=2, batch_size=2, threads=1, aux_points=0, text_lr=0.1, log=lambda _m: None
    )
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {}
    for group in made[0].param_groups:
        # Every group is all text tower or all the rest (the auxiliary heads are not the model's: "aux").
        kinds = {names.get(id(p), "aux").split(".")[0] in train_module._TEXT_TOWER for p in group["params"]}
        assert len(kinds) == 1
        text = kinds.pop()
        assert group["lr_scale"] == (0.1 if text else 1.0)
        lrs.setdefault(text, set()).add(group["lr"])
    assert len(lrs[True]) == len(lrs[False]) == 1
    assert lrs[True].pop() == pytest.approx(0.1 * lrs[False].pop())  # the same schedule, scaled
    assert "the text tower at 0.1 x that learning rate" in (tmp_path / "README.md").read_text()
    with pytest.raises(ValueError, match="text-lr"):
        train_module.train("frame2d_motion.tiny_8f", tmp_path / "2d", steps=1, text_lr=0.1)
