"""Sampling indices equal the official protocols' for given lengths and frame rates.

Expected values below were worked out by hand from the formulas in
``shared/reference/tadaconv/NOTES.md`` §5 and ``shared/reference/ila/NOTES.md`` §12 (cases chosen away
from float32 rounding edges); a second test compares against a line-by-line transcription of the
official loops over many lengths and rates.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tada.video import sample_clips, sample_indices


def cfg(**kw):
    base = dict(num_frames=16, sampling="interval", sampling_rate=5, target_fps=30.0)
    base.update(kw)
    return SimpleNamespace(**base)


def test_interval_single_clip_centred():
    # clip_len = 16*5*30/30 = 80, start = (300-80)/2 = 110, linspace(110, 189, 16), truncated.
    got = sample_indices(300, 30.0, cfg())
    assert got.tolist() == [110, 115, 120, 125, 131, 136, 141, 146, 152, 157, 162, 167, 173, 178, 183, 189]
    assert got.dtype == np.int64


def test_interval_rate_is_defined_at_30_fps():
    # At 15 fps the window spans half as many source frames as at 30 fps:
    # clip_len = 8*8*15/30 = 32, start = (100-32)/2 = 34, linspace(34, 65, 8) = 34 + k*31/7
    got = sample_indices(100, 15.0, cfg(num_frames=8, sampling_rate=8))
    assert got.tolist() == [34, 38, 42, 47, 51, 56, 60, 65]


def test_interval_multi_clip():
    # clip 3 of 4: start = 220 * 3 / 4 = 165, linspace(165, 244, 16)
    got = sample_indices(300, 30.0, cfg(), clip_index=3, num_clips=4)
    assert got.tolist() == [165, 170, 175, 180, 186, 191, 196, 201, 207, 212, 217, 222, 228, 233, 238, 244]
    first = sample_indices(300, 30.0, cfg(), clip_index=0, num_clips=4)
    assert first[0] == 0


def test_interval_short_clip_repeats_last_frame():
    # clip_len = 64 > 20: start 0, linspace(0, 63, 8) = 0, 9, 18, 27 ... clamped to 19.
    got = sample_indices(20, 30.0, cfg(num_frames=8, sampling_rate=8))
    assert got.tolist() == [0, 9, 18, 19, 19, 19, 19, 19]
    assert sample_indices(1, 30.0, cfg()).tolist() == [0] * 16


def test_segment_single_and_multi():
    c = cfg(num_frames=8, sampling="segment", sampling_rate=None)
    # segment midpoints of [0, 100] in 8 parts: 6.25, 18.75, ... rounded half to even
    assert sample_indices(100, None, c).tolist() == [6, 19, 31, 44, 56, 69, 81, 94]
    # 2 clips: seg_start + 12.5 * (i + 1) / 2
    assert sample_indices(100, None, c, clip_index=0, num_clips=2).tolist() == [6, 19, 31, 44, 56, 69, 81, 94]
    assert sample_indices(100, None, c, clip_index=1, num_clips=2).tolist() == [12, 25, 38, 50, 62, 75, 88, 99]


def test_segment_short_clip():
    c = cfg(num_frames=8, sampling="segment")
    assert sample_indices(5, 30.0, c).tolist() == [0, 1, 2, 2, 3, 3, 4, 4]


def test_uniform_ila_single_view():
    c = cfg(num_frames=8, sampling="uniform")
    # seg = 99/8 = 12.375; (round(seg*i) + round(seg*(i+1))) // 2
    assert sample_indices(100, 25.0, c).tolist() == [6, 18, 31, 43, 56, 68, 80, 93]
    assert sample_indices(5, 25.0, c).tolist() == [0, 0, 1, 2, 2, 2, 3, 4]


def test_uniform_ila_multi_view_is_deterministic_tsn():
    c = cfg(num_frames=8, sampling="uniform")
    clips = sample_clips(100, 25.0, c, num_clips=4)
    # 12 frames per segment; offsets floor(12 * (c + 0.5) / 4) = 1, 4, 7, 10
    for k, off in enumerate([1, 4, 7, 10]):
        assert clips[k].tolist() == (np.arange(8) * 12 + off).tolist()
    assert np.array_equal(clips, sample_clips(100, 25.0, c, num_clips=4))
    short = sample_clips(5, 25.0, c, num_clips=4)
    assert short.shape == (4, 8) and short.max() < 5


def test_explicit_arguments_override_cfg_and_errors():
    c = cfg()
    assert len(sample_indices(300, 30.0, c, num_frames=4)) == 4
    assert sample_indices(300, 30.0, c, sampling="segment", num_frames=2).tolist() == [75, 225]
    with pytest.raises(ValueError):
        sample_indices(0, 30.0, c)
    with pytest.raises(ValueError):
        sample_indices(300, 30.0, c, clip_index=4, num_clips=4)
    with pytest.raises(ValueError):
        sample_indices(300, 30.0, c, sampling="dense")
    with pytest.raises(ValueError):
        sample_indices(300, 30.0, cfg(sampling_rate=None))


def test_interval_with_a_start_time():
    # 4 frames every 3 at 30 fps: window 12 frames; start 1 s = frame 30, linspace(30, 41, 4) truncated.
    c = cfg(num_frames=4, sampling_rate=3)
    assert sample_indices(90, 30.0, c, start_time=1.0).tolist() == [30, 33, 37, 41]
    # At 15 fps the window covers 6 source frames and 1 s is frame 15: linspace(15, 20, 4).
    assert sample_indices(90, 15.0, c, start_time=1.0).tolist() == [15, 16, 18, 20]
    # Too late a start moves back so the window ends on the last frame; a negative one starts at 0.
    assert sample_indices(90, 30.0, c, start_time=100.0).tolist() == [78, 81, 85, 89]
    assert sample_indices(90, 30.0, c, start_time=-5.0).tolist() == [0, 3, 7, 11]
    # A window longer than the video starts at 0 whatever the start (and repeats the last frame).
    assert sample_indices(8, 30.0, c, start_time=2.0).tolist() == [0, 3, 7, 7]
    # The start the official protocol would choose gives the official (centred) indices.
    assert sample_indices(90, 30.0, c, start_time=39 / 30).tolist() == sample_indices(90, 30.0, c).tolist()
    assert sample_indices(90, 30.0, cfg(num_frames=1), start_time=2.0).tolist() == [60]
    assert sample_clips(90, 30.0, c, start_time=1.0).tolist() == [[30, 33, 37, 41]]


def test_start_time_only_for_one_interval_clip():
    with pytest.raises(ValueError, match="start time"):
        sample_indices(90, 30.0, cfg(sampling="segment"), start_time=1.0)
    with pytest.raises(ValueError, match="start time"):
        sample_indices(90, 30.0, cfg(), clip_index=0, num_clips=2, start_time=1.0)
    with pytest.raises(ValueError, match="start time"):
        sample_clips(90, 30.0, cfg(), num_clips=2, start_time=1.0)


# -- line-by-line transcription of the official loops, used as a second reference -------------------


def _official_interval(vid_length, vid_fps, clip_idx, num_clips, num_frames, interval, target_fps=30):
    clip_length = num_frames * interval * vid_fps / target_fps
    max_idx = max(vid_length - clip_length, 0)
    if num_clips == 1:
        start_idx = max_idx / 2
    else:
        start_idx = max_idx * clip_idx / num_clips
    end_idx = start_idx + clip_length - 1
    index = torch.linspace(start_idx, end_idx, num_frames)
    return torch.clamp(index, 0, vid_length - 1).long().tolist()


def _official_segment(vid_length, clip_idx, num_clips, num_frames):
    index = torch.zeros(num_frames)
    index_range = torch.linspace(0, vid_length, num_frames + 1)
    for idx in range(num_frames):
        if num_clips == 1:
            index[idx] = (index_range[idx] + index_range[idx + 1]) / 2
        else:
            index[idx] = index_range[idx] + (index_range[idx + 1] - index_range[idx]) * (clip_idx + 1) / num_clips
    return torch.round(torch.clamp(index, 0, vid_length - 1)).long().tolist()


def _official_uniform(total_frames, clip_len):
    seg_size = float(total_frames - 1) / clip_len
    seq = []
    for i in range(clip_len):
        start = int(np.round(seg_size * i))
        end = int(np.round(seg_size * (i + 1)))
        seq.append((start + end) // 2)
    return seq


def test_against_transcription_of_the_official_loops():
    rng = random.Random(0)
    for _ in range(400):
        length = rng.choice([1, 2, 3, 7, 15, 16, 17, 31, 64, 100, 250, 299, 300, 1799, 1800, 9001])
        fps = rng.choice([12.0, 15.0, 23.976023976023978, 24.0, 25.0, 29.97002997002997, 30.0, 50.0, 60.0])
        frames = rng.choice([8, 16, 32])
        rate = rng.choice([2, 4, 5, 8])
        n = rng.choice([1, 2, 4, 10])
        i = rng.randrange(n)
        c = cfg(num_frames=frames, sampling_rate=rate)
        assert sample_indices(length, fps, c, clip_index=i, num_clips=n).tolist() == _official_interval(
            length, fps, i, n, frames, rate
        )
        c = cfg(num_frames=frames, sampling="segment")
        assert sample_indices(length, fps, c, clip_index=i, num_clips=n).tolist() == _official_segment(
            length, i, n, frames
        )
        c = cfg(num_frames=frames, sampling="uniform")
        assert sample_indices(length, fps, c).tolist() == _official_uniform(length, frames)
