"""Regenerate the app's motion example clips: ``python app/examples/make_examples.py``.

Clips of the procedural motion task (:mod:`tada.motion`), the task the bundled models were trained on:
seeded, so the same bytes come out every time.  Backgrounds are photos and textures shipped with
scikit-image (public domain / CC0, see ``tada/motion/generator.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tada.motion import generate_clip  # noqa: E402
from tada.motion.media import write_mp4  # noqa: E402

#: (file name, class, seed): one direction, one rotation, one scale change.
EXAMPLES = (
    ("motion_moving_right.mp4", "moving right", 3),
    ("motion_rotating_anticlockwise.mp4", "rotating anticlockwise", 5),
    ("motion_shrinking.mp4", "shrinking", 8),
)


#: A long clip for the Timeline tab: 40 s of 2-s motion episodes (16 frames at 8 fps, like the short
#: examples: what the bundled models see in one window), rotating clockwise for the first 20 s, then
#: moving right.
LONG_EXAMPLE = "motion_rotating_then_moving_right_40s.mp4"
LONG_SEGMENTS = (("rotating clockwise", 20), ("moving right", 20))


def make_long_example(
    path: Path, segments=LONG_SEGMENTS, seed: int = 1000, fps: int = 8, scale: int = 2, episode_s: int = 2
) -> Path:
    """Generated episodes of ``episode_s`` seconds at ``fps``, ``(label, seconds)`` of each in turn."""
    frames = []
    for label, seconds in segments:
        for _ in range(seconds // episode_s):
            clip = generate_clip(seed, label, num_frames=fps * episode_s, size=64, distractors=True, noise=False)
            frames.append(clip.frames)
            seed += 1
    return write_mp4(np.concatenate(frames), path, fps=fps, scale=scale)


def main() -> None:
    for name, label, seed in EXAMPLES:
        clip = generate_clip(seed, label, num_frames=16, size=64, distractors=True, noise=False)
        write_mp4(clip, HERE / name, fps=8, scale=4)
        print(f"{name}: {clip.label_name} over a {clip.background} background, shape {clip.shape}")
    make_long_example(HERE / LONG_EXAMPLE)
    print(f"{LONG_EXAMPLE}: " + ", then ".join(f"{label} for {s} s" for label, s in LONG_SEGMENTS))


if __name__ == "__main__":
    main()
