"""Preprocessing equals the official test pipelines: resize rule, crop positions, normalisation, layout.

Frames are linear ramps (red = column, green = row), so the expected value of every output pixel can be
written down: bilinear resizing (align_corners=False) maps output pixel ``j`` to source position
``(j + 0.5) * in / out - 0.5`` and a linear ramp is reproduced exactly there.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tada.video import VideoTransform
from tada.video import transforms as vtransforms

K400 = dict(mean=(0.45, 0.45, 0.45), std=(0.225, 0.225, 0.225), pixel_range=1.0, input_layout="BCTHW")
ILA = dict(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), pixel_range=255.0, input_layout="BTCHW")


def tada_cfg(**kw):
    base = dict(num_frames=2, sampling="interval", sampling_rate=5, target_fps=30.0, test_scale=64, crop_size=64,
                num_clips=4, num_crops=3, **K400)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def ila_cfg(**kw):
    base = dict(num_frames=2, sampling="uniform", sampling_rate=None, target_fps=None, test_scale=36, crop_size=32,
                num_clips=4, num_crops=3, **ILA)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def ramps(h: int, w: int, t: int = 2) -> np.ndarray:
    """Red = column index, green = row index, blue = 100 (values < 256 needed: h, w <= 256)."""
    f = np.zeros((t, h, w, 3), np.uint8)
    f[..., 0] = np.arange(w)[None, None, :]
    f[..., 1] = np.arange(h)[None, :, None]
    f[..., 2] = 100
    return f


def src_pos(j, n_in: int, n_out: int):
    return (np.asarray(j) + 0.5) * n_in / n_out - 0.5


def test_tadaconv_landscape_centre_crop():
    tf = VideoTransform(tada_cfg())
    x = tf(ramps(120, 160))  # short side 120 -> 64, long side int(160/120*64) = 85, crop left = 21 // 2
    assert x.shape == (1, 3, 2, 64, 64) and x.dtype == torch.float32
    red = src_pos(np.arange(64) + 10, 160, 85) / 255
    green = src_pos(np.arange(64), 120, 64) / 255
    np.testing.assert_allclose(x[0, 0, 0, 5].numpy(), (red - 0.45) / 0.225, atol=2e-5)
    np.testing.assert_allclose(x[0, 1, 1, :, 7].numpy(), (green - 0.45) / 0.225, atol=2e-5)
    np.testing.assert_allclose(x[0, 2].numpy(), (100 / 255 - 0.45) / 0.225, atol=1e-6)


def test_tadaconv_portrait_and_three_crops():
    tf = VideoTransform(tada_cfg(), views="official")
    assert tf.num_views == 12 and tf.crop_names == ["start", "centre", "end"]
    assert tf.view_layout[:4] == [(0, "start"), (0, "centre"), (0, "end"), (1, "start")]
    # landscape: crops along the width at 0, 21 // 2, 21
    crops = tf.crops(ramps(120, 160))
    for crop, left in zip(crops, [0, 10, 21]):
        red = src_pos(np.arange(64) + left, 160, 85) / 255
        np.testing.assert_allclose(crop[0, 0, 3].numpy(), (red - 0.45) / 0.225, atol=2e-5)
    # portrait: short side is the width; crops along the height at 0, 10, 21
    crops = tf.crops(ramps(160, 120))
    for crop, top in zip(crops, [0, 10, 21]):
        green = src_pos(np.arange(64) + top, 160, 85) / 255
        np.testing.assert_allclose(crop[1, 0, :, 3].numpy(), (green - 0.45) / 0.225, atol=2e-5)


def test_tadaconv_equals_official_whole_clip_interpolate():
    """The official code resizes the (C, T, H, W) clip in one interpolate call (C as batch, T as channels)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 47, 65, 3), dtype=np.uint8)
    tf = VideoTransform(tada_cfg(num_frames=3, test_scale=40, crop_size=32))
    clip = torch.from_numpy(frames).float().permute(3, 0, 1, 2) / 255.0
    new_h, new_w = 40, int(65 / 47 * 40)
    ref = F.interpolate(clip, size=(new_h, new_w), mode="bilinear", align_corners=False)
    y, x = (new_h - 32) // 2, (new_w - 32) // 2
    ref = ref[:, :, y : y + 32, x : x + 32]
    ref = (ref - 0.45) / 0.225
    torch.testing.assert_close(tf(frames)[0], ref, rtol=0, atol=1e-6)


def test_ila_single_view_resize_rounding_and_layout():
    tf = VideoTransform(ila_cfg())
    x = tf(ramps(120, 160))  # short 120 -> 36 (scale 0.3), long int(160*0.3+0.5) = 48; centre crop 32 at (2, 8)
    assert x.shape == (1, 2, 3, 32, 32)
    assert_rounded_ramp(x[0, 1, 0, 4].numpy() * 58.395 + 123.675, src_pos(np.arange(32) + 8, 160, 48))
    assert_rounded_ramp(x[0, 0, 1, :, 4].numpy() * 57.12 + 116.28, src_pos(np.arange(32) + 2, 120, 36))
    np.testing.assert_allclose(x[0, :, 2].numpy(), (100 - 103.53) / 57.375, atol=1e-5)


def assert_rounded_ramp(values: np.ndarray, exact: np.ndarray) -> None:
    """mmcv hands whole grey levels on: values are integers, the rounded ramp except at exact ties."""
    np.testing.assert_allclose(values, np.round(values), atol=1e-3)
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-3
    np.testing.assert_allclose(values[~tie], np.round(exact[~tie]), atol=1e-3)
    assert np.all(np.abs(values[tie] - exact[tie]) <= 0.5 + 1e-3)


def test_ila_official_three_crop():
    tf = VideoTransform(ila_cfg(), views="official")
    assert tf.crop_names == ["start", "end", "centre"] and tf.num_views == 12
    # 3-crop protocol: short side -> crop size 32; long int(160*32/120 + 0.5) = 43; step 5: lefts 0, 10, 5
    crops = tf.crops(ramps(120, 160))
    for crop, left in zip(crops, [0, 10, 5]):
        assert crop.shape == (2, 3, 32, 32)
        assert_rounded_ramp(crop[0, 0, 0].numpy() * 58.395 + 123.675, src_pos(np.arange(32) + left, 160, 43))


def test_official_views_take_one_clip_each():
    tf = VideoTransform(tada_cfg(), views="official")
    clips = [ramps(120, 160) // (k + 1) for k in range(4)]
    x = tf(clips)
    assert x.shape == (12, 3, 2, 64, 64)
    single = VideoTransform(tada_cfg())
    for v, (c, crop) in enumerate(tf.view_layout):
        if crop == "centre":  # the centre crop of clip c is what the single view gives for those frames
            torch.testing.assert_close(x[v], single(clips[c])[0])
    with pytest.raises(ValueError):
        tf(clips[:3])


def test_chunked_resize_is_identical(monkeypatch):
    frames = np.random.default_rng(1).integers(0, 256, size=(5, 50, 70, 3), dtype=np.uint8)
    whole = VideoTransform(tada_cfg(num_frames=5, test_scale=40, crop_size=40))(frames)
    whole_ila = VideoTransform(ila_cfg(num_frames=5))(frames)
    monkeypatch.setattr(vtransforms, "_CHUNK_BYTES", 1)  # one frame at a time
    torch.testing.assert_close(VideoTransform(tada_cfg(num_frames=5, test_scale=40, crop_size=40))(frames), whole)
    torch.testing.assert_close(VideoTransform(ila_cfg(num_frames=5))(frames), whole_ila)


def test_torch_input_and_model_cfg():
    model = SimpleNamespace(pretrained_cfg=tada_cfg())
    tf = VideoTransform.from_model(model)
    frames = ramps(64, 64)
    torch.testing.assert_close(tf(torch.from_numpy(frames)), tf(frames))
    assert "tadaconv" in repr(tf)


def test_bad_arguments():
    with pytest.raises(ValueError):
        VideoTransform(tada_cfg(), views="all")
    with pytest.raises(ValueError):
        VideoTransform(tada_cfg(crop_size=80))
    with pytest.raises(ValueError):
        VideoTransform(tada_cfg(input_layout="BHWC"))
    with pytest.raises(ValueError):
        VideoTransform(tada_cfg())(ramps(64, 64).astype(np.float32))


@pytest.mark.parametrize("family", ["tadaconv", "ila"])
@pytest.mark.parametrize("size", [(720, 1280), (1080, 1920), (47, 65), (1280, 720), (97, 131), (64, 64), (40, 30)])
def test_gathered_pixels_give_the_same_input_bit_for_bit(family, size):
    """``crops(frame[rows][:, cols], taps)`` with ``taps = resize_taps(h, w)`` equals ``crops(frame)`` exactly
    (downscales read 2 rows/columns per output; enlargements and same-size frames read every pixel)."""
    one = dict(num_crops=1, num_clips=1)
    cfg = tada_cfg(**one) if family == "tadaconv" else ila_cfg(test_scale=73, crop_size=64, **one)
    tr = VideoTransform(cfg)
    h, w = size
    frames = np.random.default_rng(h * w).integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    taps = tr.resize_taps(h, w)
    gathered = np.ascontiguousarray(frames[:, taps.rows][:, :, taps.cols])
    for _ in range(2):  # the second call reuses the canvas of the first
        assert torch.equal(tr.crops(gathered, taps)[0], tr.crops(frames)[0])
    nh, nw = tr._new_size(h, w)
    if nh < h and nw < w:
        assert len(taps.rows) <= 2 * nh and len(taps.cols) <= 2 * nw + 2
    else:
        assert taps.whole
    if size == (720, 1280):
        assert gathered[0].size / frames[0].size < 0.05  # what a decoder sends for a 64-pixel model
    with pytest.raises(ValueError):
        tr.crops(gathered[:, 1:], taps)
