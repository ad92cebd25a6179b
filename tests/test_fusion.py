"""Round fusion: the temporal weights and the per-frame probability blend."""

from __future__ import annotations

import pytest
import torch

from manet.inference.fusion import PROBABILITY_FLOOR, fuse_frame, new_round_weight


def test_weight_is_one_at_the_new_frame_and_zero_at_an_earlier_annotated_frame() -> None:
    assert new_round_weight(30, 30, [10]) == 1.0
    assert new_round_weight(10, 30, [10]) == 0.0
    assert new_round_weight(20, 30, [10]) == pytest.approx(0.5)
    # Nearer to the new frame: the new round weighs more; the nearest earlier frame counts.
    assert new_round_weight(25, 30, [10, 0]) == pytest.approx(15 / 20)
    assert new_round_weight(25, 30, [0, 40]) == pytest.approx(15 / 20)


def test_weight_without_earlier_frames_is_one_and_power_sharpens() -> None:
    assert new_round_weight(3, 30, []) == 1.0
    assert new_round_weight(25, 30, [10], power=2.0) == pytest.approx(225 / (225 + 25))


def test_fuse_frame_blends_probabilities() -> None:
    new = torch.tensor([[[0.0]], [[4.0]]])        # object likely
    previous = torch.tensor([[[4.0]], [[0.0]]])   # background likely
    fused = fuse_frame(new, previous, 0.25)
    expected = 0.25 * new.softmax(0) + 0.75 * previous.softmax(0)
    torch.testing.assert_close(fused.softmax(0), expected / expected.sum(0), atol=1e-4, rtol=0)
    assert int(fused.argmax(0)) == 0  # the earlier round wins where it weighs more
    assert int(fuse_frame(new, previous, 0.75).argmax(0)) == 1


def test_fuse_frame_keeps_new_round_at_weight_one_and_without_previous() -> None:
    new = torch.randn(3, 4, 5)
    assert torch.equal(fuse_frame(new, None, 0.3), new)
    assert torch.equal(fuse_frame(new, torch.randn(3, 4, 5), 1.0), new)


def test_fuse_frame_with_an_object_new_in_this_round() -> None:
    new = torch.tensor([[[0.0]], [[0.0]], [[5.0]]])
    previous = torch.tensor([[[3.0]], [[0.0]]])  # the third object did not exist yet
    fused = fuse_frame(new, previous, 0.5)
    probabilities = fused.exp()
    assert probabilities[2] == pytest.approx(0.5 * new.softmax(0)[2].item(), abs=1e-4)
    assert probabilities.min() >= PROBABILITY_FLOOR * 0.999


def test_fuse_frame_rejects_logits_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        fuse_frame(torch.zeros(2, 4, 4), torch.zeros(3, 4, 4), 0.5)
    with pytest.raises(ValueError, match="do not fit"):
        fuse_frame(torch.zeros(2, 4, 4), torch.zeros(2, 5, 4), 0.5)
