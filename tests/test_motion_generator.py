"""The procedural motion task: ground truth, determinism, class semantics, paired-class statistics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from tada.constants import MOTION_MEAN as MEAN
from tada.constants import MOTION_STD as STD
from tada.motion import (
    BACKGROUNDS,
    CLASSES,
    DIRECTION_PAIRS,
    NUM_CLASSES,
    PHOTOS,
    REVERSED_LABEL,
    SHAPES,
    clip_label,
    clip_seed,
    generate_batch,
    generate_clip,
)
from tada.motion.dataset import MotionDataset, to_tensor
from tada.motion.media import contact_sheet, write_mp4

ID = {name: i for i, name in enumerate(CLASSES)}
NOISE_MAX = 6  # the generator's largest per-pixel noise amplitude


def centroids(masks: np.ndarray) -> np.ndarray:
    """(T, 2) x, y of each mask's pixel centres (pixel (i, j) covers [j, j+1) x [i, i+1))."""
    out = []
    for m in masks:
        ii, jj = np.nonzero(m)
        out.append((jj.mean() + 0.5, ii.mean() + 0.5))
    return np.array(out)


def test_label_csv_matches_classes(repo_root: Path) -> None:
    with (repo_root / "tada" / "labels" / "motion.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == list(range(len(rows)))
    assert tuple(r["name"] for r in rows) == CLASSES
    assert NUM_CLASSES >= 10 and len(set(CLASSES)) == NUM_CLASSES
    from tada.labels import get_labels

    assert get_labels("motion") == list(CLASSES)


def test_direction_pairs_and_reversal_map() -> None:
    names = {(CLASSES[a], CLASSES[b]) for a, b in DIRECTION_PAIRS}
    assert names == {
        ("moving left", "moving right"),
        ("rotating clockwise", "rotating anticlockwise"),
        ("growing", "shrinking"),
    }
    for a, b in DIRECTION_PAIRS:
        assert REVERSED_LABEL[a] == b and REVERSED_LABEL[b] == a
    assert all(REVERSED_LABEL[REVERSED_LABEL[k]] == k for k in range(NUM_CLASSES))
    assert REVERSED_LABEL[ID["moving up"]] == ID["moving down"]
    for name in ("no motion", "approaching then leaving", "bouncing"):
        assert REVERSED_LABEL[ID[name]] == ID[name]


def test_same_seed_same_bytes() -> None:
    a, b = generate_clip(7), generate_clip(7)
    for key in ("frames", "masks", "centers", "boxes", "scales", "angles"):
        assert getattr(a, key).tobytes() == getattr(b, key).tobytes()
    assert a.label == b.label
    assert generate_clip(8).frames.tobytes() != a.frames.tobytes()
    x, y = generate_batch(6, seed=3), generate_batch(6, seed=3)
    assert x.frames.tobytes() == y.frames.tobytes() and (x.labels == y.labels).all()
    assert generate_batch(6, seed=4).frames.tobytes() != x.frames.tobytes()


def test_batch_is_the_stream_of_clips() -> None:
    batch = generate_batch(5, seed=11, start=3)
    for k in range(5):
        clip = generate_clip(clip_seed(11, 3 + k), clip_label(11, 3 + k))
        assert batch.labels[k] == clip.label
        np.testing.assert_array_equal(batch.frames[k], clip.frames)
        np.testing.assert_array_equal(batch.truth["masks"][k], clip.masks)
        np.testing.assert_array_equal(batch.truth["centers"][k], clip.centers)
    # Clip i does not depend on where a batch starts or how long it is.
    longer = generate_batch(8, seed=11, masks=False)
    np.testing.assert_array_equal(longer.frames[3:], batch.frames)
    assert "masks" not in longer.truth


def test_every_class_generated_balanced() -> None:
    labels = [clip_label(5, i) for i in range(3 * NUM_CLASSES)]
    assert np.bincount(labels, minlength=NUM_CLASSES).tolist() == [3] * NUM_CLASSES
    batch = generate_batch(NUM_CLASSES, seed=5, size=32)
    assert sorted(batch.labels.tolist()) == list(range(NUM_CLASSES))
    assert batch.frames.shape == (NUM_CLASSES, 8, 32, 32, 3) and batch.frames.dtype == np.uint8


@pytest.mark.parametrize("size,num_frames", [(64, 8), (112, 16), (32, 4)])
def test_ground_truth_is_where_the_object_is(size: int, num_frames: int) -> None:
    """Mask pixels carry the target's colour, the centre is the mask centroid, boxes are tight."""
    ring_hits = ring_total = 0
    for k in range(2 * NUM_CLASSES):
        clip = generate_clip(1000 + k, k % NUM_CLASSES, num_frames, size)
        t = num_frames
        assert clip.frames.shape == (t, size, size, 3) and clip.masks.shape == (t, size, size)
        assert clip.masks.dtype == bool and clip.centers.shape == (t, 2) and clip.boxes.shape == (t, 4)
        assert clip.label_name == CLASSES[k % NUM_CLASSES]
        diff = np.abs(clip.frames.astype(int) - clip.color.astype(int))
        assert diff[clip.masks].max() <= NOISE_MAX, "target pixels are not the target's colour (occluded?)"
        # The target is whole: it never touches the frame border.
        assert not clip.masks[:, [0, -1], :].any() and not clip.masks[:, :, [0, -1]].any()
        assert (clip.masks.sum((1, 2)) >= max(4, 0.005 * size**2)).all()
        np.testing.assert_allclose(centroids(clip.masks), clip.centers, atol=1.0)
        for m, box in zip(clip.masks, clip.boxes):
            ii, jj = np.nonzero(m)
            np.testing.assert_array_equal(box, [jj.min(), ii.min(), jj.max() + 1, ii.max() + 1])
        # The mask is not smaller than the drawn object: the 1-px ring around it is (mostly) not the colour.
        m = clip.masks
        grown = m.copy()
        grown[:, 1:] |= m[:, :-1]
        grown[:, :-1] |= m[:, 1:]
        grown[:, :, 1:] |= m[:, :, :-1]
        grown[:, :, :-1] |= m[:, :, 1:]
        ring = grown & ~m
        ring_hits += int((diff[ring].max(-1) <= NOISE_MAX).sum())
        ring_total += int(ring.sum())
    assert ring_hits / ring_total < 0.05


def _rotation_step(a: np.ndarray, b: np.ndarray) -> float:
    """The on-screen anticlockwise rotation (degrees) that best maps mask a onto mask b (IoU search)."""
    ya, xa = np.nonzero(a)
    ca, cb = centroids(np.stack([a, b]))
    px, py = xa + 0.5 - ca[0], ya + 0.5 - ca[1]
    best, best_iou = 0.0, -1.0
    for deg in np.arange(-80, 81, 2.0):
        r = np.deg2rad(deg)
        # Anticlockwise on screen = clockwise in (x right, y down) coordinates.
        qx = np.cos(r) * px + np.sin(r) * py + cb[0]
        qy = -np.sin(r) * px + np.cos(r) * py + cb[1]
        img = np.zeros_like(b)
        ok = (qx >= 0) & (qx < b.shape[1]) & (qy >= 0) & (qy < b.shape[0])
        img[qy[ok].astype(int), qx[ok].astype(int)] = True
        iou = (img & b).sum() / (img | b).sum()
        if iou > best_iou:
            best, best_iou = deg, iou
    return best


@pytest.mark.parametrize("name", CLASSES)
def test_motion_is_what_the_label_says(name: str) -> None:
    """Measured on the masks (not on the reported centres): the target does what its label says."""
    size = 96
    for seed in range(3):
        clip = generate_clip(50 + seed, name, 8, size)
        c, area = centroids(clip.masks), clip.masks.sum((1, 2)).astype(float)
        dx, dy = c[-1] - c[0]
        still = 4.0  # px: camera jitter (+-2 px at 96 px) and rasterisation
        if name == "no motion":
            assert np.abs(c - c.mean(0)).max() <= still and area.max() / area.min() < 1.15
        elif name in ("moving left", "moving right"):
            assert (dx < -0.2 * size) if name == "moving left" else (dx > 0.2 * size)
            assert abs(dy) < 0.1 * size and area.max() / area.min() < 1.15
            assert (np.sign(np.diff(c[:, 0])) == np.sign(dx)).sum() >= 6
        elif name in ("moving up", "moving down"):
            assert (dy < -0.2 * size) if name == "moving up" else (dy > 0.2 * size)
            assert abs(dx) < 0.1 * size and area.max() / area.min() < 1.15
        elif name.startswith("rotating"):
            steps = [_rotation_step(a, b) for a, b in zip(clip.masks[:-1], clip.masks[1:])]
            sign = 1 if name == "rotating anticlockwise" else -1
            assert all(sign * s > 0 for s in steps), steps
            assert sign * sum(steps) > 80
            assert np.abs(c - c.mean(0)).max() <= still
            # The reported orientation agrees with the measured one.
            reported = (np.diff(clip.angles) + 180) % 360 - 180
            np.testing.assert_allclose(reported, steps, atol=6)
        elif name == "growing":
            assert area[-1] > 2.5 * area[0] and (np.diff(area) > 0).sum() >= 6
            assert np.abs(c - c.mean(0)).max() <= still + 0.1 * np.sqrt(area.max())
        elif name == "shrinking":
            assert area[0] > 2.5 * area[-1] and (np.diff(area) < 0).sum() >= 6
        elif name == "approaching then leaving":
            peak = int(area.argmax())
            assert 0 < peak < 7 and area[peak] > 2 * area[0] and area[peak] > 2 * area[-1]
        elif name == "bouncing":
            steps = np.diff(c[:, 1])
            assert steps.max() > 0.08 * size and steps.min() < -0.08 * size  # falls and rises
            assert np.abs(c[:, 0] - c[0, 0]).max() <= still
        else:  # pragma: no cover
            raise AssertionError(f"untested class {name}")


@pytest.mark.parametrize("name", CLASSES)
def test_object_flow_carries_each_pixel_to_where_the_object_is_next(name: str) -> None:
    """Moving every object pixel of frame t by its flow lands it inside the object of frame t+1 (of frame
    t-1, backwards, for the last frame), far more often than leaving it where it was."""
    from tada.motion.generator import object_flow

    clip = generate_clip(7, name, 8, 64, distractors=False, noise=False)
    flow = object_flow(clip.centers, clip.scales, clip.angles, clip.masks)
    assert flow.shape == (8, 64, 64, 2) and not flow[~clip.masks].any()
    hits, stays = [], []
    for t in range(8):
        other, sign = (t + 1, 1) if t < 7 else (6, -1)
        ys, xs = np.nonzero(clip.masks[t])
        px = np.clip(xs + 0.5 + sign * flow[t, ys, xs, 0], 0, 63.9).astype(int)
        py = np.clip(ys + 0.5 + sign * flow[t, ys, xs, 1], 0, 63.9).astype(int)
        hits.append(clip.masks[other][py, px].mean())
        stays.append(clip.masks[other][ys, xs].mean())
    assert min(hits) > 0.8 and np.mean(hits) > 0.88, hits  # rasterised edges miss by a pixel
    if name not in ("no motion",):
        assert np.mean(hits) > np.mean(stays) + 0.2, (hits, stays)
    if name.startswith("rotating"):  # the curl of the flow says which way it turns (y down on screen)
        gy, gx = np.gradient(flow[..., 1], axis=2), np.gradient(flow[..., 0], axis=1)
        curl = (gy - gx)[:, 1:-1, 1:-1][clip.masks[:, 1:-1, 1:-1]].mean()
        assert (curl < 0) == (name == "rotating anticlockwise"), curl


@pytest.mark.parametrize("a,b", DIRECTION_PAIRS + ((ID["moving up"], ID["moving down"]),))
def test_paired_class_is_the_exact_reversal(a: int, b: int) -> None:
    for seed in (1, 2):
        x, y = generate_clip(seed, a), generate_clip(seed, b)
        np.testing.assert_array_equal(x.frames, y.frames[::-1])
        np.testing.assert_array_equal(x.masks, y.masks[::-1])
        r = y.reversed()
        assert r.label == a and r.frames.tobytes() == x.frames.tobytes()
        np.testing.assert_allclose(r.centers, x.centers)


@pytest.mark.parametrize("a,b", DIRECTION_PAIRS)
def test_paired_classes_have_the_same_single_frame_statistics(a: int, b: int) -> None:
    """Independent samples of both classes: what single frames show has the same distribution."""
    n = 60

    def features(label: int, seed: int) -> dict[str, np.ndarray]:
        batch = generate_batch(n, seed, labels=[label] * n, size=48, masks=False)
        t = batch.truth
        return {
            "x": t["centers"][..., 0],
            "y": t["centers"][..., 1],
            "scale": t["scales"],
            "brightness": batch.frames.mean((2, 3, 4)),
        }

    fa, fb = features(a, 100), features(b, 200)
    for key in fa:
        # One number per clip (its frames averaged): independent samples, the bag of frames compared.
        assert ks_2samp(fa[key].mean(1), fb[key].mean(1)).pvalue > 0.01, key
    # ... while the frame *order* differs: the first frame alone tells them apart, the test has power.
    key = "x" if CLASSES[a] == "moving left" else "scale" if CLASSES[a] == "growing" else None
    if key is not None:
        assert ks_2samp(fa[key][:, 0], fb[key][:, 0]).pvalue < 1e-4


def test_nuisances_can_be_switched_off() -> None:
    clip = generate_clip(3, "no motion", distractors=False, jitter=False, noise=False, backgrounds=("flat",))
    colours = np.unique(clip.frames.reshape(-1, 3), axis=0)
    assert len(colours) == 2  # background and target, nothing else
    assert (clip.frames[clip.masks] == clip.color).all()
    assert (clip.centers == clip.centers[0]).all()
    # With everything on, backgrounds of every kind occur and the shapes vary.
    clips = [generate_clip(s) for s in range(60)]
    assert {c.background for c in clips} == set(BACKGROUNDS)
    assert {c.shape for c in clips} == set(SHAPES)


def test_photo_backgrounds_load_offline() -> None:
    import skimage.data

    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        assert img.dtype == np.uint8 and min(img.shape[:2]) >= 256
    clip = generate_clip(4, backgrounds=("photo",))
    assert clip.background == "photo" and clip.frames.std() > 5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_clip(0, num_frames=3)
    with pytest.raises(ValueError):
        generate_clip(0, size=24)
    with pytest.raises(ValueError):
        generate_clip(0, label=NUM_CLASSES)
    with pytest.raises(KeyError):
        generate_clip(0, label="flying")
    with pytest.raises(ValueError):
        generate_clip(0, backgrounds=("plasma",))


def test_dataset_tensors() -> None:
    ds = MotionDataset(4, seed=9, size=32, with_truth=True)
    x, label, truth = ds[2]
    clip = generate_clip(clip_seed(9, 2), clip_label(9, 2), 8, 32)
    assert x.shape == (3, 8, 32, 32) and x.dtype == torch.float32 and label == clip.label
    pixels = x * torch.tensor(STD).view(3, 1, 1, 1) + torch.tensor(MEAN).view(3, 1, 1, 1)
    expected = torch.from_numpy(clip.frames).permute(3, 0, 1, 2).float() / 255
    torch.testing.assert_close(pixels, expected, atol=1e-5, rtol=0)
    assert torch.equal(truth["masks"], torch.from_numpy(clip.masks))
    batch = next(iter(torch.utils.data.DataLoader(MotionDataset(4, seed=9, size=32), batch_size=4)))
    assert batch[0].shape == (4, 3, 8, 32, 32) and batch[1].tolist() == [clip_label(9, i) for i in range(4)]
    assert to_tensor(generate_batch(2, 9, size=32).frames).shape == (2, 3, 8, 32, 32)
    with pytest.raises(IndexError):
        ds[4]


def test_write_mp4_round_trip(tmp_path: Path) -> None:
    import av

    clip = generate_clip(12, "moving right", size=32)
    path = write_mp4(clip, tmp_path / "clip.mp4", scale=4)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == (8, 128, 128, 3)
    small = decoded.reshape(8, 32, 4, 32, 4, 3).mean((2, 4))
    assert np.abs(small - clip.frames).mean() < 6
    sheet = contact_sheet([clip, clip.reversed()], gap=2)
    assert sheet.shape == (2 * 32 + 2, 8 * 32 + 7 * 2, 3)
    np.testing.assert_array_equal(sheet[34:, -32:], clip.frames[0])
