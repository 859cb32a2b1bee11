"""ILA alignment masks and frame merging against the official mask-generation fixture."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from tada.layers.ila_align import DISTURBANCE_OFFSETS, ILAAlign, aligned_mask, merge_pairs


@pytest.fixture(scope="module")
def masks(reference_dir):
    return load_file(reference_dir / "ila/fixtures/mask_generation.safetensors")


@pytest.mark.parametrize("grid", [4, 7, 14, 16, 24])
def test_eval_masks_match_official(masks, grid):
    torch.testing.assert_close(aligned_mask(masks["points"], grid), masks[f"mask_L{grid}"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("grid", [7, 14])
def test_training_masks_average_nine_offsets(masks, grid):
    torch.testing.assert_close(DISTURBANCE_OFFSETS, masks["disturbance_offset"])
    got = aligned_mask(masks["points"], grid, DISTURBANCE_OFFSETS)
    torch.testing.assert_close(got, masks[f"mask_train_L{grid}"], atol=1e-4, rtol=1e-4)


def test_mask_orientation_x_is_column_y_is_row_down():
    # (x=-0.75, y=+0.75) is left and low: the weight sits at the bottom-left of the grid.
    mask = aligned_mask(torch.tensor([[-0.75, 0.75]]), 14)[0]
    row, col = divmod(int(mask.argmax()), 14)
    assert row >= 10 and col <= 3
    assert mask[0, -1] == 0 and mask[-1, 0] == 1


def test_merge_pairs_averages_middle_frames():
    first = torch.tensor([[1.0, 2.0, 3.0]])  # frame p of pairs p = 0, 1, 2
    second = torch.tensor([[10.0, 20.0, 30.0]])  # frame p+1
    assert merge_pairs(first, second).tolist() == [[1.0, (2 + 10) / 2, (3 + 20) / 2, 30.0]]
    # Two frames (one pair): no middle frame.
    assert merge_pairs(first[:, :1], second[:, :1]).tolist() == [[1.0, 10.0]]


def test_untrained_points_sit_at_the_centre_and_eval_uses_one_mask():
    torch.manual_seed(0)
    module = ILAAlign(width=8, grid=4, patch_size=16).eval()
    pre, cur, cls = torch.randn(1, 3, 17, 8), torch.randn(1, 3, 17, 8), torch.randn(1, 1, 4, 8)
    with torch.no_grad():
        _pair, aligned, interactive = module(pre, cur, cls)
    assert aligned.shape == (1, 4, 17, 8) and interactive.shape == (17, 4, 8)
    # Zero-initialised point head: one centred mask per point (the eval mask, not the jittered one).
    centre = aligned_mask(torch.zeros(2), 4)
    torch.testing.assert_close(aligned[0, 0, 1:], pre[0, 0, 1:] * centre.reshape(16, 1))
    module.disturb_points = True
    with torch.no_grad():
        _pair, jittered, _ = module(pre, cur, cls)
    assert not torch.allclose(jittered, aligned)


def test_grid_smaller_than_four_is_refused():
    with pytest.raises(ValueError, match="at least 4x4"):
        ILAAlign(width=8, grid=3, patch_size=16)


def test_hidden_width_sets_the_interactive_block_and_defaults_to_the_released_256():
    released = ILAAlign(width=8, grid=4, patch_size=16)
    assert released.interactive_block[1].weight.shape[0] == 256  # the official width, checkpoint keys unchanged
    assert released.prediction_block[10].in_channels == 128
    torch.manual_seed(0)
    tiny = ILAAlign(width=8, grid=4, patch_size=16, hidden=16).train()
    assert tiny.interactive_block[1].weight.shape == (16, 16, 3, 3)
    assert tiny.fc.in_features == 8 and tiny.conv.in_channels == 8
    pre, cur, cls = torch.randn(2, 3, 17, 8), torch.randn(2, 3, 17, 8), torch.randn(1, 2, 4, 8)
    pair, aligned, interactive = tiny(pre, cur, cls)
    assert pair.shape == (1, 2, 3, 16) and aligned.shape == (2, 4, 17, 8) and interactive.shape == (17, 8, 8)
    with pytest.raises(ValueError, match="divisible by 4"):
        ILAAlign(width=8, grid=4, patch_size=16, hidden=30)
