"""Procedural clips for the "temporal motions" task: seeded, fast, no files needed.

Every clip shows one *target* object (an irregular shape: triangle, arrow, L, T, pac-man, half disc,
notched rectangle) doing one of the motions in :data:`CLASSES` over a varied background (flat colour,
gradient, smooth colour blobs, crops of photos and textures shipped with scikit-image), with small
distractor specks (static or drifting), camera jitter (whole-frame integer shift per frame) and
per-frame pixel noise. The answer depends on temporal order: the time-reversed partner of a clip of
``moving right`` is, pixel for pixel, a clip of ``moving left`` drawn from the same seed (likewise
down/up, anticlockwise/clockwise, growing/shrinking). So paired classes have *exactly* the same
distribution of single frames, and a model that averages per-frame features cannot separate them.

Ground truth per frame (of the target only; it is drawn on top of the distractors, so it is never
occluded): ``centers`` (area centroid, pixel coordinates x, y where pixel ``(row i, col j)`` covers
``[j, j+1) x [i, i+1)``), ``boxes`` (x0, y0, x1, y1 in the same coordinates, tight around the mask),
``masks``, ``scales`` (radius of the circle about the centroid that holds the shape, in pixels) and
``angles`` (orientation in degrees, anticlockwise as seen on screen).

Photos used as backgrounds (all inside the scikit-image wheel, loaded offline; licences from the
docstrings in ``skimage/data/_fetchers.py``):

* ``astronaut`` -- NASA, public domain.
* ``coffee`` -- Rachel Michetti, CC0.
* ``chelsea`` -- Stefan van der Walt, CC0.
* ``rocket`` -- SpaceX, released into the public domain.
* ``camera`` -- Lav Varshney, CC0.
* ``hubble_deep_field`` -- NASA, public domain.
* ``brick``, ``grass``, ``gravel`` -- CC0Textures, CC0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import NamedTuple

import numpy as np

__all__ = [
    "BACKGROUNDS",
    "CLASSES",
    "DIRECTION_PAIRS",
    "NUM_CLASSES",
    "PHOTOS",
    "REVERSED_LABEL",
    "SHAPES",
    "MotionBatch",
    "MotionClip",
    "clip_label",
    "clip_seed",
    "generate_batch",
    "generate_clip",
    "object_flow",
]

CLASSES: tuple[str, ...] = (
    "no motion",
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "rotating clockwise",
    "rotating anticlockwise",
    "growing",
    "shrinking",
    "approaching then leaving",
    "bouncing",
)
NUM_CLASSES = len(CLASSES)
_ID = {name: i for i, name in enumerate(CLASSES)}

#: The pairs the evaluation scores separately: one class is the other played backwards.
DIRECTION_PAIRS: tuple[tuple[int, int], ...] = (
    (_ID["moving left"], _ID["moving right"]),
    (_ID["rotating clockwise"], _ID["rotating anticlockwise"]),
    (_ID["growing"], _ID["shrinking"]),
)

# Classes drawn as the time reversal of a partner: label -> (partner generated forwards).
_DRAWN_REVERSED = {
    _ID["moving left"]: _ID["moving right"],
    _ID["moving up"]: _ID["moving down"],
    _ID["rotating clockwise"]: _ID["rotating anticlockwise"],
    _ID["shrinking"]: _ID["growing"],
}
#: ``REVERSED_LABEL[k]`` is the label of a clip of class ``k`` played backwards.
REVERSED_LABEL: tuple[int, ...] = tuple(
    {**_DRAWN_REVERSED, **{v: k for k, v in _DRAWN_REVERSED.items()}}.get(k, k) for k in range(NUM_CLASSES)
)

PHOTOS: dict[str, str] = {
    "astronaut": "public domain (NASA)",
    "coffee": "CC0 (Rachel Michetti)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "rocket": "public domain (SpaceX)",
    "camera": "CC0 (Lav Varshney)",
    "hubble_deep_field": "public domain (NASA)",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
}
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "blobs", "photo")
_BACKGROUND_P = (0.1, 0.25, 0.25, 0.4)


# --- shapes -------------------------------------------------------------------------------------
# Inside tests in local "math" coordinates (x right, y up), none rotationally symmetric so that a
# rotation is visible. They are recentred on their area centroid and scaled to the unit circle below.
def _triangle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x >= -0.6) & (0.55 * (1 - x) >= 1.6 * np.abs(y))


def _arrow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    shaft = (x >= -1.0) & (x <= 0.1) & (np.abs(y) <= 0.2)
    head = (x >= 0.1) & (0.6 * (1 - x) >= 0.9 * np.abs(y))
    return shaft | head


def _ell(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    upright = (x >= -0.7) & (x <= -0.25) & (np.abs(y) <= 0.85)
    foot = (x >= -0.7) & (x <= 0.7) & (y >= -0.85) & (y <= -0.4)
    return upright | foot


def _tee(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    bar = (np.abs(x) <= 0.9) & (y >= 0.35) & (y <= 0.8)
    stem = (np.abs(x) <= 0.22) & (y >= -0.9) & (y <= 0.35)
    return bar | stem


def _pacman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x * x + y * y <= 1.0) & ~((x > 0) & (np.abs(y) < 0.75 * x))


def _half_disc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x * x + y * y <= 1.0) & (x >= 0)


def _notched_rect(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.abs(x) <= 1.0) & (np.abs(y) <= 0.55) & ~((x >= 0.3) & (y >= 0.0))


_SHAPE_FN: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "triangle": _triangle,
    "arrow": _arrow,
    "L": _ell,
    "T": _tee,
    "pacman": _pacman,
    "half disc": _half_disc,
    "notched rectangle": _notched_rect,
}
SHAPES: tuple[str, ...] = tuple(_SHAPE_FN)


@cache
def _shape_frame(shape: str) -> tuple[float, float, float]:
    """(cx, cy, rho): area centroid of the raw shape and the radius about it that holds the shape."""
    g = np.linspace(-1.2, 1.2, 801)
    x, y = np.meshgrid(g, g)
    inside = _SHAPE_FN[shape](x, y)
    cx, cy = float(x[inside].mean()), float(y[inside].mean())
    rho = float(np.sqrt((x[inside] - cx) ** 2 + (y[inside] - cy) ** 2).max()) + (g[1] - g[0])
    return cx, cy, rho


# --- backgrounds --------------------------------------------------------------------------------
@cache
def _photo_bank(side: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Each photo resized so that a crop of ``side`` px covers 30 %, 50 % or 80 % of its short side."""
    import skimage.data
    from skimage.transform import resize

    bank = []
    for name in PHOTOS:
        img = getattr(skimage.data, name)()
        if img.ndim == 2:
            img = img[..., None]  # grey: tinted per clip
        short = min(img.shape[:2])
        levels = []
        for frac in (0.3, 0.5, 0.8):
            k = side / (frac * short)
            shape = (max(side, round(img.shape[0] * k)), max(side, round(img.shape[1] * k)), img.shape[2])
            levels.append(resize(img, shape, anti_aliasing=True, preserve_range=True).round().astype(np.uint8))
        bank.append(tuple(levels))
    return tuple(bank)


@cache
def _noise_bank(side: int) -> np.ndarray:
    """Fixed uniform integer noise in [-8, 8]; clips take random crops of it (cheaper than fresh draws)."""
    return np.random.default_rng(0).integers(-8, 9, size=(side, side, 3), dtype=np.int16)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def _background(rng: np.random.Generator, side: int, kind: str) -> np.ndarray:
    """A static (side, side, 3) uint8 background of the given kind."""
    if kind == "flat":
        return np.broadcast_to(_random_colour(rng).astype(np.uint8), (side, side, 3)).copy()
    if kind == "gradient":
        a, b = _random_colour(rng), _random_colour(rng)
        theta = rng.uniform(0, 2 * np.pi)
        g = np.arange(side, dtype=np.float32) / max(side - 1, 1)
        ramp = math.cos(theta) * g[None, :] + math.sin(theta) * g[:, None]
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
        return (a + (b - a) * ramp[..., None]).astype(np.uint8)
    if kind == "blobs":
        k = int(rng.integers(2, 6))
        low = rng.uniform(0, 255, size=(k, k, 3)).astype(np.float32)
        # Separable linear upsampling of a k x k grid of colours: smooth, cheap.
        pos = np.linspace(0, k - 1, side, dtype=np.float32)
        i0 = np.minimum(pos.astype(int), k - 2)
        w = (pos - i0)[:, None]
        interp = np.zeros((side, k), np.float32)
        interp[np.arange(side), i0] = 1 - w[:, 0]
        interp[np.arange(side), i0 + 1] += w[:, 0]
        rows = np.tensordot(interp, low, axes=(1, 0))  # (side, k, 3)
        return np.matmul(interp, rows).astype(np.uint8)  # (side, side, 3)
    if kind == "photo":
        bank = _photo_bank(side)
        levels = bank[int(rng.integers(len(bank)))]
        img = levels[int(rng.integers(len(levels)))]
        y0 = int(rng.integers(img.shape[0] - side + 1))
        x0 = int(rng.integers(img.shape[1] - side + 1))
        crop = img[y0 : y0 + side, x0 : x0 + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if crop.shape[2] == 1:
            tint = rng.uniform(0.4, 1.0, size=3).astype(np.float32)
            return (crop.astype(np.float32) * tint).astype(np.uint8)
        return np.ascontiguousarray(crop)
    raise ValueError(f"unknown background kind {kind!r}; expected one of {BACKGROUNDS}")


# --- trajectories -------------------------------------------------------------------------------
class _Motion(NamedTuple):
    centers: np.ndarray  # (T, 2) world x, y
    scales: np.ndarray  # (T,) radius in px
    angles: np.ndarray  # (T,) degrees, anticlockwise on screen


def _ease(rng: np.random.Generator, u: np.ndarray) -> np.ndarray:
    """Monotonic 0 -> 1 with random acceleration or deceleration (speed varies within a clip)."""
    a = rng.uniform(-0.6, 0.6)
    return u + a * u * (1 - u)


def _trajectory(rng: np.random.Generator, label: int, num_frames: int, size: int, pad: float) -> _Motion:
    """World-space trajectory of the target for a class drawn forwards (``_DRAWN_REVERSED`` ones never)."""
    s = float(size)
    u = np.linspace(0.0, 1.0, num_frames)
    ones = np.ones(num_frames)
    angle0 = rng.uniform(0, 360)

    def place(r: float, span_y: float = 0.0) -> tuple[float, float]:
        """A start point keeping a disc of radius r (and a vertical span below it) inside the frame."""
        lo = r + pad
        return rng.uniform(lo, s - lo), rng.uniform(lo, s - lo - span_y)

    name = CLASSES[label]
    if name == "no motion":
        r = rng.uniform(0.12, 0.22) * s
        x0, y0 = place(r)
        return _Motion(np.stack([x0 * ones, y0 * ones], 1), r * ones, angle0 * ones)
    if name in ("moving right", "moving down"):
        travel = min(rng.uniform(0.3, 0.55) * s, s - 2 * (0.11 * s + pad))  # tiny frames: keep it inside
        r = rng.uniform(0.11, max(0.11, min(0.18, (s - travel - 2 * pad) / (2 * s)))) * s
        drift = rng.uniform(-0.06, 0.06) * s  # a slight slant across the main direction
        lo = r + pad
        along = rng.uniform(lo, s - lo - travel) + _ease(rng, u) * travel
        across = rng.uniform(lo + max(0.0, -drift), s - lo - max(0.0, drift)) + u * drift
        xy = np.stack([along, across] if name == "moving right" else [across, along], 1)
        return _Motion(xy, r * ones, angle0 * ones)
    if name == "rotating anticlockwise":
        r = rng.uniform(0.14, 0.24) * s
        x0, y0 = place(r)
        turn = rng.uniform(100, 220)
        return _Motion(np.stack([x0 * ones, y0 * ones], 1), r * ones, angle0 + turn * _ease(rng, u))
    if name == "growing":
        r0 = rng.uniform(0.09, 0.13) * s
        ratio = rng.uniform(1.7, 2.3)
        scales = r0 * ratio ** _ease(rng, u)
        x0, y0 = place(float(scales.max()))
        return _Motion(np.stack([x0 * ones, y0 * ones], 1), scales, angle0 * ones)
    if name == "approaching then leaving":
        peak = rng.uniform(0.2, 0.28) * s
        r_in, r_out = rng.uniform(1.6, 2.2, size=2)
        p = rng.uniform(0.35, 0.65)
        scales = np.where(u < p, peak / r_in ** ((p - u) / p), peak / r_out ** ((u - p) / (1 - p)))
        x0, y0 = place(peak)
        return _Motion(np.stack([x0 * ones, y0 * ones], 1), scales, angle0 * ones)
    if name == "bouncing":
        r = rng.uniform(0.11, 0.17) * s
        height = min(rng.uniform(0.25, 0.4) * s, s - 2 * (r + pad))
        x0, top = place(r, height)
        floor = top + height
        for _ in range(20):  # redraw phases whose sampled frames would not show a rise and a fall
            bounces, phase = rng.uniform(1.0, 1.8), rng.uniform(0, 1)
            y = floor - height * np.abs(np.sin(np.pi * (phase + bounces * u)))
            dy = np.diff(y)
            if dy.max() > 0.3 * height and dy.min() < -0.3 * height:
                break
        return _Motion(np.stack([x0 * ones, y], 1), r * ones, angle0 * ones)
    raise ValueError(f"class {name!r} is drawn as a reversal")  # pragma: no cover


# --- rendering ----------------------------------------------------------------------------------
def _target_masks(motion: _Motion, shape: str, offsets: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W) masks of the target in frame coordinates and its frame-space centres."""
    gx, gy, rho = _shape_frame(shape)
    centers = motion.centers - offsets  # the camera moved by +offset, the world by -offset
    grid = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    dx = grid[None, None, :] - centers[:, 0, None, None].astype(np.float32)
    dy = grid[None, :, None] - centers[:, 1, None, None].astype(np.float32)
    theta = np.deg2rad(motion.angles).astype(np.float32)[:, None, None]
    k = (rho / motion.scales).astype(np.float32)[:, None, None]
    c, s = np.cos(theta) * k, np.sin(theta) * k
    # Screen (x right, y down) -> local math coordinates (y up), rotated by -theta, centroid at 0.
    qx = c * dx - s * dy + gx
    qy = -s * dx - c * dy + gy
    return _SHAPE_FN[shape](qx, qy), centers


def _boxes(masks: np.ndarray) -> np.ndarray:
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    h, w = masks.shape[1:]
    y0, x0 = rows.argmax(1), cols.argmax(1)
    y1, x1 = h - rows[:, ::-1].argmax(1), w - cols[:, ::-1].argmax(1)
    return np.stack([x0, y0, x1, y1], 1).astype(np.float32)


@dataclass(frozen=True)
class MotionClip:
    """One generated clip and the per-frame ground truth of its target object."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    label: int
    centers: np.ndarray  # (T, 2) float32 x, y (area centroid)
    boxes: np.ndarray  # (T, 4) float32 x0, y0, x1, y1 (exclusive ends)
    masks: np.ndarray  # (T, H, W) bool
    scales: np.ndarray  # (T,) float32 radius about the centroid, px
    angles: np.ndarray  # (T,) float32 degrees, anticlockwise on screen
    color: np.ndarray  # (3,) uint8 fill colour of the target
    shape: str
    background: str

    @property
    def label_name(self) -> str:
        return CLASSES[self.label]

    def reversed(self) -> MotionClip:
        """The clip played backwards, relabelled (``moving left`` becomes ``moving right``...)."""
        return replace(
            self,
            label=REVERSED_LABEL[self.label],
            **{k: getattr(self, k)[::-1].copy() for k in ("frames", "centers", "boxes", "masks", "scales", "angles")},
        )


def clip_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of clip ``index`` of the stream ``seed`` (independent of batch sizes)."""
    return np.random.SeedSequence(seed, spawn_key=(0, index))


def clip_label(seed: int, index: int) -> int:
    """The label of clip ``index`` of the stream ``seed``: every block of ``NUM_CLASSES`` clips is balanced."""
    block, pos = divmod(index, NUM_CLASSES)
    perm = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, block))).permutation(NUM_CLASSES)
    return int(perm[pos])


def generate_clip(
    seed: int | np.random.SeedSequence | np.random.Generator,
    label: int | str | None = None,
    num_frames: int = 8,
    size: int = 64,
    *,
    distractors: bool = True,
    jitter: bool = True,
    noise: bool = True,
    backgrounds: Sequence[str] = BACKGROUNDS,
) -> MotionClip:
    """Render one clip. Same seed and arguments -> same bytes.

    ``label`` (id or class name) defaults to a random class. For a given seed, the clip of a class in
    :data:`DIRECTION_PAIRS` (and up/down) is exactly the time reversal of its partner's clip.
    ``distractors``, ``jitter`` and ``noise`` switch the nuisances off; ``backgrounds`` restricts the
    background kinds (subset of :data:`BACKGROUNDS`).
    """
    if num_frames < 4:
        raise ValueError("num_frames must be at least 4 (a bounce needs a rise and a fall)")
    if size < 32:
        raise ValueError("size must be at least 32 pixels (smaller targets vanish between pixel centres)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if label is None:
        label = int(rng.integers(NUM_CLASSES))
    elif isinstance(label, str):
        label = _ID[label]
    label = int(label)
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label must be in [0, {NUM_CLASSES})")
    forward = _DRAWN_REVERSED.get(label, label)
    t, s = num_frames, size

    # Camera jitter: the whole frame shifts by up to j px per frame (i.i.d., so reversal-symmetric).
    j = max(1, round(s / 64)) if jitter and rng.random() < 0.75 else 0
    offsets = rng.integers(-j, j + 1, size=(t, 2)) if j else np.zeros((t, 2), np.int64)
    bg_side = s + 2 * j
    kind = backgrounds[int(rng.choice(len(backgrounds), p=_normalised_p(backgrounds)))]
    bg = _background(rng, bg_side, kind)
    frames = np.stack([bg[j + oy : j + oy + s, j + ox : j + ox + s] for ox, oy in offsets])

    grid = np.arange(s, dtype=np.float32) + 0.5
    if distractors:
        for _ in range(int(rng.integers(0, 4))):
            rd = max(1.0, rng.uniform(0.02, 0.04) * s)  # specks, well below the target's size
            start = rng.uniform(0, s, size=2)
            move = np.zeros(2) if rng.random() < 0.4 else _unit(rng) * rng.uniform(0.1, 0.5) * s
            path = start + np.linspace(0, 1, t)[:, None] * move - offsets
            dx = np.abs(grid[None, None, :] - path[:, 0, None, None])
            dy = np.abs(grid[None, :, None] - path[:, 1, None, None])
            m = (dx * dx + dy * dy <= rd * rd) if rng.random() < 0.5 else ((dx <= rd) & (dy <= rd))
            frames[m] = rng.integers(0, 256, size=3, dtype=np.uint8)

    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    motion = _trajectory(rng, forward, t, s, pad=j + 1.0)
    masks, centers = _target_masks(motion, shape, offsets, s)
    color = _contrasting_colour(rng, bg)
    frames[masks] = color

    if noise:
        amp = int(rng.integers(0, 7))
        if amp:
            bank = _noise_bank(max(256, 2 * s))
            o = rng.integers(0, bank.shape[0] - s + 1, size=(t, 2))
            n = np.stack([bank[y : y + s, x : x + s] for x, y in o]) * amp // 8
            frames = np.clip(frames.astype(np.int16) + n, 0, 255).astype(np.uint8)

    clip = MotionClip(
        frames=frames,
        label=forward,
        centers=centers.astype(np.float32),
        boxes=_boxes(masks),
        masks=masks,
        scales=motion.scales.astype(np.float32),
        angles=(motion.angles % 360).astype(np.float32),
        color=color,
        shape=shape,
        background=kind,
    )
    return clip.reversed() if forward != label else clip


def _normalised_p(kinds: Sequence[str]) -> np.ndarray:
    p = np.array([_BACKGROUND_P[BACKGROUNDS.index(k)] for k in kinds])
    return p / p.sum()


def _unit(rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return np.array([math.cos(a), math.sin(a)])


def _contrasting_colour(rng: np.random.Generator, bg: np.ndarray) -> np.ndarray:
    """Of 8 random colours, the one farthest from the background's mean colour."""
    candidates = rng.integers(0, 256, size=(8, 3))
    mean = bg.reshape(-1, 3).mean(0)
    return candidates[np.argmax(((candidates - mean) ** 2).sum(1))].astype(np.uint8)


class MotionBatch(NamedTuple):
    """``generate_batch`` output: frames (N, T, H, W, 3) uint8, labels (N,) int64, truth dict of arrays."""

    frames: np.ndarray
    labels: np.ndarray
    truth: dict[str, np.ndarray]


def generate_batch(
    n: int,
    seed: int,
    *,
    start: int = 0,
    num_frames: int = 8,
    size: int = 64,
    masks: bool = True,
    labels: Sequence[int] | None = None,
    **kwargs,
) -> MotionBatch:
    """Clips ``start .. start+n-1`` of the stream ``seed`` (balanced labels, see :func:`clip_label`).

    Clip ``i`` equals ``generate_clip(clip_seed(seed, i), clip_label(seed, i), ...)``. ``truth`` holds
    ``centers`` (N, T, 2), ``boxes`` (N, T, 4), ``scales``/``angles`` (N, T) and, if ``masks``,
    ``masks`` (N, T, H, W). ``labels`` overrides the classes; ``kwargs`` go to :func:`generate_clip`.
    """
    t, s = num_frames, size
    out = np.empty((n, t, s, s, 3), np.uint8)
    ys = np.empty(n, np.int64)
    truth = {
        "centers": np.empty((n, t, 2), np.float32),
        "boxes": np.empty((n, t, 4), np.float32),
        "scales": np.empty((n, t), np.float32),
        "angles": np.empty((n, t), np.float32),
    }
    if masks:
        truth["masks"] = np.empty((n, t, s, s), bool)
    for k in range(n):
        i = start + k
        label = clip_label(seed, i) if labels is None else labels[k]
        clip = generate_clip(clip_seed(seed, i), label, t, s, **kwargs)
        out[k], ys[k] = clip.frames, clip.label
        for key, arr in truth.items():
            arr[k] = getattr(clip, key)
    return MotionBatch(out, ys, truth)


def object_flow(centers: np.ndarray, scales: np.ndarray, angles: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Ground-truth motion of the target's pixels, ``(..., T, H, W, 2)`` float32 (x, y in px per frame).

    Inputs are a clip's or batch's truth (``centers (..., T, 2)``, ``scales``/``angles (..., T)``,
    ``masks (..., T, H, W)``).  A point of the object at ``p`` in frame ``t`` is at
    ``c[t+1] + s[t+1]/s[t] * R(a[t+1] - a[t]) (p - c[t])`` in frame ``t+1`` (the same similarity
    transform that :func:`generate_clip` renders with; ``R`` turns anticlockwise on screen, y down);
    the flow is that displacement.  The last frame gets its backward displacement (from frame ``T-2``)
    so every frame has one.  Zero outside the mask.
    """
    c = np.asarray(centers, np.float64)
    sc = np.asarray(scales, np.float64)
    a = np.deg2rad(np.asarray(angles, np.float64))
    m = np.asarray(masks, bool)
    h, w = m.shape[-2:]
    # Per frame t: the transform to frame nxt[t] (t+1; the last frame maps to T-2, and its flow is the
    # opposite of that map's displacement).
    t = c.shape[-2]
    nxt = np.r_[np.arange(1, t), t - 2]
    sign = np.r_[np.ones(t - 1), -1.0]
    d = (a[..., nxt] - a + np.pi) % (2 * np.pi) - np.pi  # wrapped turn, radians
    k = sc[..., nxt] / sc
    cos, sin = (k * np.cos(d))[..., None, None], (k * np.sin(d))[..., None, None]
    px = (np.arange(w) + 0.5)[None, :] - c[..., 0, None, None]  # (..., T, 1, W) - broadcast below
    py = (np.arange(h) + 0.5)[:, None] - c[..., 1, None, None]
    qx = c[..., nxt, 0, None, None] + cos * px + sin * py
    qy = c[..., nxt, 1, None, None] - sin * px + cos * py
    flow = np.stack([qx - (px + c[..., 0, None, None]), qy - (py + c[..., 1, None, None])], -1)
    flow *= sign[:, None, None, None] * m[..., None]
    return flow.astype(np.float32)
