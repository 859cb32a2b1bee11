"""Clips per second of the procedural motion generator on one core (prints figures, asserts nothing).

.venv/bin/python bench/motion_generator_speed.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from tada.motion import generate_batch  # noqa: E402
from tada.motion.dataset import to_tensor  # noqa: E402


def rate(n: int, **kwargs) -> float:
    generate_batch(4, seed=99, **kwargs)  # build the photo bank for this size first (one-off per size)
    best = float("inf")
    for repeat in range(3):  # best of 3: the machine is shared
        start = time.perf_counter()
        generate_batch(n, seed=repeat, **kwargs)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    base = rate(500)
    print(f"8 x 64 x 64, masks:           {base:7.0f} clips/s")
    print(f"8 x 64 x 64, no masks:        {rate(500, masks=False):7.0f} clips/s")
    print(f"8 x 64 x 64, no nuisances:    {rate(500, distractors=False, jitter=False, noise=False):7.0f} clips/s")
    print(f"16 x 112 x 112, masks:        {rate(100, num_frames=16, size=112):7.0f} clips/s")
    frames = generate_batch(256, seed=1, masks=False).frames
    start = time.perf_counter()
    to_tensor(frames)
    print(f"to_tensor, 256 clips 8x64x64: {256 / (time.perf_counter() - start):7.0f} clips/s")


if __name__ == "__main__":
    main()
