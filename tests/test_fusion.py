"""Round fusion: the temporal weights and the per-frame probability blend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
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
    # Annotating the same frame again supersedes its earlier annotation.
    assert new_round_weight(3, 30, [30]) == 1.0
    assert new_round_weight(20, 30, [30, 10]) == pytest.approx(0.5)
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


FIRST_ROUND = [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[40, 5], [46, 10]], radius=1.5)]
SECOND_ROUND = [Scribble(1, [[14, 22]], radius=2.0), Scribble(0, [[2, 2], [8, 4]])]


def test_temporal_fusion_in_a_session(tiny_model) -> None:
    video = moving_square_video(frames=7, height=32, width=48)
    replaced = manet.Session(tiny_model, video)
    fused = manet.Session(tiny_model, video, manet.SessionConfig(round_fusion="temporal"))
    for session in (replaced, fused):
        session.run_round(FIRST_ROUND, frame=1)
    after_first = fused.masks
    for session in (replaced, fused):
        session.run_round(SECOND_ROUND, frame=4)
    first, second = fused.rounds
    # At the frame annotated in round 1 the earlier result stays; at round 2's frame the new one.
    assert np.array_equal(fused.mask(1), after_first[1])
    assert torch.equal(second.logits[4], replaced.rounds[1].logits[4])
    # The frame after the new one is propagated from the (unfused) interactive frame in both
    # sessions, so its fused logits are the blend of the replacing round's and round 1's.
    weight = new_round_weight(5, 4, [1])
    assert 0.0 < weight < 1.0
    expected = fuse_frame(replaced.rounds[1].logits[5].float(), first.logits[5].float(), weight)
    torch.testing.assert_close(second.logits[5].float().softmax(0), expected.softmax(0), atol=2e-3, rtol=0)
    # Undo returns to round 1 exactly.
    fused.undo()
    assert np.array_equal(fused.masks, after_first)


def test_round_fusion_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="round_fusion"):
        manet.SessionConfig(round_fusion="midpoint")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fusion_power"):
        manet.SessionConfig(fusion_power=0.0)
