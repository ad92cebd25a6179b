"""Choosing the next frame: the benchmark's worst-J rule and the ground-truth-free suggestion."""

from __future__ import annotations

import numpy as np
import pytest

from manet.errors import FrameIndexError
from manet.simulate.next_frame import (
    frames_by_jaccard,
    largest_objects_frame,
    least_confident_frame,
    mask_change,
    uncertainty_scores,
    worst_frame,
)


def _video() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((4, 10, 10), dtype=np.uint8)
    gt[:, 2:8, 1:5] = 1  # 24 pixels
    gt[:, 2:8, 6:9] = 2  # 18 pixels
    pred = gt.copy()
    pred[0, 2:8, 1:3] = 0  # frame 0: object 1 J = 12/24, object 2 J = 1 -> mean 0.75
    pred[2, 2:8, 6:9] = 0  # frame 2: object 2 J = 0 -> mean 0.5
    pred[3, 2:5, 1:5] = 0  # frame 3: object 1 J = 12/24 -> mean 0.75
    return gt, pred


def test_worst_frame_is_the_lowest_mean_jaccard() -> None:
    gt, pred = _video()
    assert worst_frame(gt, pred, [1, 2]) == 2
    order, scores = frames_by_jaccard(gt, pred, [1, 2])
    np.testing.assert_allclose(scores, [0.75, 1.0, 0.5, 0.75])
    assert order.tolist() == [2, 0, 3, 1]  # ties keep frame order


def test_annotated_frames_are_skipped_until_none_is_left() -> None:
    gt, pred = _video()
    assert worst_frame(gt, pred, [1, 2], annotated_frames=[2]) == 0
    assert worst_frame(gt, pred, [1, 2], annotated_frames=[2, 0]) == 3
    assert worst_frame(gt, pred, [1, 2], annotated_frames=[0, 1, 2, 3]) == 2
    with pytest.raises(FrameIndexError):
        worst_frame(gt, pred, [1, 2], annotated_frames=[7])


def test_largest_objects_frame_prefers_all_objects_then_size() -> None:
    gt = np.zeros((3, 10, 10), dtype=np.uint8)
    gt[0, 0:8, 0:8] = 1  # biggest object 1, but object 2 missing
    gt[1, 0:2, 0:2] = 1
    gt[1, 5:7, 5:7] = 2
    gt[2, 0:4, 0:4] = 1
    gt[2, 5:7, 5:7] = 2
    assert largest_objects_frame(gt, [1, 2]) == 2


def test_mask_change_is_relative_to_object_pixels() -> None:
    before = np.zeros((2, 4, 4), dtype=np.uint8)
    after = before.copy()
    before[0, 0, :] = 1  # 4 object pixels ...
    after[0, 0, :2] = 1  # ... of which 2 are dropped
    np.testing.assert_allclose(mask_change(before, after), [0.5, 0.0])


def test_least_confident_frame() -> None:
    confidence = np.array([0.9, 0.6, 0.8, 0.6], dtype=np.float32)
    assert least_confident_frame(confidence) == 1  # earliest of the tie
    assert least_confident_frame(confidence, annotated_frames=[1]) == 3
    before = np.zeros((4, 4, 4), dtype=np.uint8)
    after = before.copy()
    before[2, 0, :] = 1  # frame 2 lost its whole mask in the last round
    assert least_confident_frame(confidence, [1], previous_masks=before, masks=after) == 2
    np.testing.assert_allclose(uncertainty_scores(confidence, before, after, change_weight=0.5),
                               [0.1, 0.4, 0.7, 0.4], rtol=1e-6)


def test_uncertainty_needs_some_input() -> None:
    with pytest.raises(ValueError, match="confidence"):
        uncertainty_scores()
