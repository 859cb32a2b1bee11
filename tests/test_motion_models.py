"""The bundled motion models: ground truth of the generator, shipped weights, offline loading, video path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import tada
from tada.cli import main
from tada.models.motion_zoo import BUNDLED_MODELS, DEFAULT_MODEL, TEMPORAL, OutOfVocabularyError
from tada.motion import CLASSES, NUM_CLASSES, generate_clip
from tada.motion.batches import make_batch
from tada.motion.evaluate import EVAL_SEED, evaluate_model

REPO = Path(__file__).resolve().parents[1]
NUM_HELD_OUT = 66  # 6 clips per class: a small batch of the held-out stream


# --- the generator's ground truth -------------------------------------------------------------------------


@pytest.mark.parametrize("label", range(NUM_CLASSES))
def test_ground_truth_is_where_the_object_is(label: int) -> None:
    clip = generate_clip(1000 + label, label, num_frames=8, size=32, noise=False)
    assert clip.label == label and clip.label_name == CLASSES[label]
    for t in range(8):
        mask = clip.masks[t]
        assert mask.sum() > 8  # the target is visible in every frame
        # The target is drawn last and noise is off: its pixels have exactly its colour.
        assert (clip.frames[t][mask] == clip.color).all()
        rows, cols = np.nonzero(mask)
        centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])  # pixel (i, j) covers [j, j+1) x [i, i+1)
        assert np.abs(centroid - clip.centers[t]).max() < 1.0
        x0, y0, x1, y1 = clip.boxes[t]
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


# --- shipped weights -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def held_out() -> dict[str, dict]:
    results = {}
    for name in BUNDLED_MODELS:
        model = tada.create_model(name, pretrained=True)
        results[name] = evaluate_model(model, num_clips=NUM_HELD_OUT, seed=EVAL_SEED)
    return results


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_bundled_folder_is_complete_and_small(name: str) -> None:
    cfg = tada.get_pretrained_cfg(name)
    folder = REPO / cfg.local_dir
    weights = folder / "model.safetensors"
    assert weights.stat().st_size <= 10 * 1024 * 1024
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == cfg.architecture
    card = (folder / "README.md").read_text()
    assert "python -m tada train" in card and "seed" in card and "top-1" in card
    assert cfg.label_set == "motion" and cfg.num_classes == NUM_CLASSES
    assert cfg.reported_top1 == pytest.approx(config["evaluation"]["top1"], abs=0.05)


def _stated(name: str) -> dict:
    """The held-out scores recorded in the bundled folder (what the README and model card state)."""
    cfg = tada.get_pretrained_cfg(name)
    return json.loads((REPO / cfg.local_dir / "config.json").read_text())["evaluation"]


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_bundled_weights_load_offline_and_reach_the_stated_accuracy(name: str, held_out) -> None:
    r, stated = held_out[name], _stated(name)
    assert tada.get_pretrained_cfg(name).reported_top1 is not None
    # 66 of the same held-out clips: the binomial standard error is up to ~6 points, so allow 15.
    assert r["top1"] >= stated["top1"] - 15.0
    assert r["pair_acc"] >= stated["pair_acc"] - 15.0
    assert r["reversed_acc"] >= stated["reversed_acc"] - 15.0


def test_bundled_ila_points_follow_the_object_and_its_training_fits_the_budget(held_out) -> None:
    """The ILA targets: recorded in its folder, and the same held-out stream measured now agrees."""
    name = "ila_motion.tiny_8f"
    r, stated = held_out[name], _stated(name)
    for scores in (stated, r):
        assert scores["point_pairs_within_patch"] >= 70.0, scores  # both points within one patch of the object
        assert scores["point_dist"] < scores["centre_point_dist"], scores  # beats a point fixed at the centre
    assert r["point_pairs_within_patch"] >= stated["point_pairs_within_patch"] - 15.0
    assert r["point_dist"] <= stated["point_dist"] + 1.0
    assert stated["top1"] >= 95.0
    # Every phase of its training, as recorded in the chain of runs: within the 30-minute budget.
    training = json.loads((REPO / tada.get_pretrained_cfg(name).local_dir / "config.json").read_text())["training"]
    minutes = []
    while training:
        minutes.append(training["minutes"])
        training = training.get("initialised_from")
    assert len(minutes) == 3 and sum(minutes) <= 30.0, minutes


def test_the_baseline_ignores_frame_order(held_out) -> None:
    for name, r in held_out.items():
        if not TEMPORAL[name.split(".")[0]]:
            assert r["reversal_unchanged"] >= 98.0, (name, r)  # a time average is blind to the order
            assert r["pair_acc"] <= 70.0, (name, r)  # so it cannot beat chance (50 %) on direction pairs


def test_bundled_models_load_from_their_folder_too() -> None:
    cfg = tada.get_pretrained_cfg(DEFAULT_MODEL)
    a = tada.create_model(DEFAULT_MODEL, pretrained=True)
    b = tada.create_model(f"local-dir:{REPO / cfg.local_dir}")
    x, _ = make_batch(cfg, seed=EVAL_SEED, start=0, n=2)
    torch.testing.assert_close(a(x), b(x))
    assert a.labels == list(CLASSES)


def test_loading_never_touches_the_network(monkeypatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for name in BUNDLED_MODELS:
        assert tada.create_model(name, pretrained=True) is not None


# --- ILA text side over the motion vocabulary ------------------------------------------------------------------


def test_ila_scores_motion_phrases_and_refuses_unknown_words() -> None:
    model = tada.create_model("ila_motion", pretrained=True)
    x, _ = make_batch(model.pretrained_cfg, seed=EVAL_SEED, start=0, n=2)
    full = model(x)
    assert model.labels == list(CLASSES)
    # Each class text is prompted independently, so a subset of phrases gives the same columns.
    sub = model(x, class_names=["moving right", "moving left"])
    torch.testing.assert_close(sub, full[:, [2, 1]], rtol=1e-4, atol=1e-4)
    with pytest.raises(OutOfVocabularyError, match="motion classes"):
        model(x, class_names=["juggling"])
    with pytest.raises(OutOfVocabularyError):
        model.set_class_names(["a cat"])
    assert model.labels == list(CLASSES)  # unchanged by the refusal


# --- the app's video path ----------------------------------------------------------------------------


def test_mp4_round_trip_through_load_clip_matches_the_raw_frames(tmp_path) -> None:
    """write_mp4 -> load_clip (segment sampling, resize, crop, mean/std) gives the model what training gave it."""
    from tada.motion.dataset import to_tensor
    from tada.motion.media import write_mp4
    from tada.video import load_clip

    model = tada.create_model(DEFAULT_MODEL, pretrained=True)
    cfg = model.pretrained_cfg
    labels = [1, 2, 5, 6, 7, 8]
    agree = 0
    for k, label in enumerate(labels):
        clip = generate_clip(EVAL_SEED + k, label, num_frames=cfg.num_frames, size=cfg.crop_size)
        path = write_mp4(clip, tmp_path / f"c{k}.mp4", scale=4)
        x = load_clip(path, cfg).tensor  # (1 view, C, T, S, S)
        raw = to_tensor(clip.frames)[None]
        assert x.shape == raw.shape
        # H.264 at crf 18 then an area resize back to the model's size: close to the raw frames, not equal.
        assert (x - raw).abs().mean() < 0.15
        with torch.no_grad():
            agree += int(model(x).argmax(1).item() == model(raw).argmax(1).item())
    assert agree >= len(labels) - 2


def test_evaluate_command_prints_the_table(capsys) -> None:
    assert main(["evaluate", "--models", "frame2d_motion", "--num-clips", "11", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| `frame2d_motion.tiny_8f` |" in out and "direction pairs" in out
