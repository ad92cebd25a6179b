"""J, F and the DAVIS interactive summary against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from manet.eval.metrics import (
    boundary_f,
    boundary_f_single,
    boundary_map,
    boundary_tolerance_pixels,
    interactive_summary,
    jaccard,
)


def test_jaccard_hand_values() -> None:
    gt = np.zeros((1, 4, 4), dtype=np.uint8)
    pred = np.zeros((1, 4, 4), dtype=np.uint8)
    gt[0, 0, 0:4] = 1  # 4 pixels
    pred[0, 0, 2:4] = 1  # 2 of them ...
    pred[0, 1, 0:4] = 1  # ... plus 4 wrong ones: J = 2 / 8
    gt[0, 3, 0:2] = 2  # object 2 missed entirely: J = 0
    scores = jaccard(gt, pred, [1, 2, 3])  # object 3 absent from both: J = 1
    np.testing.assert_allclose(scores, [[2 / 8, 0.0, 1.0]])


def test_jaccard_matches_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, size=(5, 12, 9)).astype(np.uint8)
    pred = rng.integers(0, 3, size=(5, 12, 9)).astype(np.uint8)
    pred[2] = 0  # a frame with no prediction
    gt[3][gt[3] == 2] = 0
    pred[3][pred[3] == 2] = 0  # object 2 absent from both on frame 3
    expected = np.empty((5, 2))
    for t in range(5):
        for column, k in enumerate((1, 2)):
            union = np.logical_or(gt[t] == k, pred[t] == k).sum()
            inter = np.logical_and(gt[t] == k, pred[t] == k).sum()
            expected[t, column] = 1.0 if union == 0 else inter / union
    np.testing.assert_allclose(jaccard(gt, pred, [1, 2]), expected)
    assert expected[3, 1] == 1.0 and expected[2, 0] == 0.0


def test_jaccard_accepts_a_single_frame() -> None:
    mask = np.ones((3, 3), dtype=np.uint8)
    assert jaccard(mask, mask, [1]).shape == (1, 1)


def test_boundary_map_is_the_inner_contour_and_ignores_the_image_edge() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    assert boundary_map(mask).sum() == 12  # 4x4 square: 16 - 4 interior
    edge = np.zeros((8, 8), dtype=bool)
    edge[:, :3] = True  # touches the left, top and bottom edges
    np.testing.assert_array_equal(np.flatnonzero(boundary_map(edge).any(axis=0)), [2])


def _square(offset: int) -> np.ndarray:
    mask = np.zeros((12, 14), dtype=bool)
    mask[2:8, 2 + offset:8 + offset] = True
    return mask


def test_boundary_f_hand_values() -> None:
    # 6x6 squares; a 1-pixel shift stays inside the 1-pixel tolerance.
    assert boundary_f_single(_square(0), _square(1), radius=1) == pytest.approx(1.0)
    # A 2-pixel shift: of 20 contour pixels, 5 on the top, 5 on the bottom and 2 on the near
    # side are within 1 pixel of the other contour; the far side has none -> P = R = 12/20.
    assert boundary_f_single(_square(0), _square(2), radius=1) == pytest.approx(0.6)


def test_boundary_f_empty_cases() -> None:
    empty = np.zeros((12, 14), dtype=bool)
    assert boundary_f_single(empty, empty, 1) == 1.0
    assert boundary_f_single(_square(0), empty, 1) == 0.0
    assert boundary_f_single(empty, _square(0), 1) == 0.0


def test_boundary_f_per_frame_and_object() -> None:
    gt = np.zeros((2, 12, 14), dtype=np.uint8)
    pred = np.zeros((2, 12, 14), dtype=np.uint8)
    gt[:, _square(0)] = 1
    pred[0, _square(0)] = 1
    pred[1, _square(2)] = 1
    scores = boundary_f(gt, pred, [1, 2], tolerance=1)
    np.testing.assert_allclose(scores, [[1.0, 1.0], [0.6, 1.0]])


def test_boundary_tolerance_is_a_fraction_of_the_diagonal() -> None:
    assert boundary_tolerance_pixels(240, 427) == 4  # ceil(0.008 * 489.8)
    assert boundary_tolerance_pixels(480, 854) == 8  # ceil(0.008 * 979.6)
    assert boundary_tolerance_pixels(10, 10, tolerance=3) == 3


def test_summary_of_one_run() -> None:
    # Curve (0,0) (10,.5) (30,.7) (60,.8), flat to 240 s:
    # area = 2.5 + 12 + 22.5 + 0.8 * 180 = 181.
    summary = interactive_summary([np.array([[0.5], [0.7], [0.8]])], [[10.0, 20.0, 30.0]])
    assert summary.auc == pytest.approx(181 / 240)
    assert summary.jaccard_at_threshold == pytest.approx(0.8)
    assert summary.curve_seconds == (0.0, 10.0, 30.0, 60.0, 240.0)
    assert summary.curve_jaccard == pytest.approx((0.0, 0.5, 0.7, 0.8, 0.8))


def test_summary_interpolates_j_at_60() -> None:
    # Cumulative times 20, 50, 90: 60 s lies a quarter of the way from 50 to 90.
    summary = interactive_summary([np.array([[0.5], [0.7], [0.8]])], [[20.0, 30.0, 40.0]])
    assert summary.jaccard_at_threshold == pytest.approx(0.725)
    assert summary.auc == pytest.approx((5 + 18 + 30 + 120) / 240)


def test_summary_weights_objects_equally_and_averages_time_over_runs() -> None:
    run_a = np.array([[0.4], [0.6]])  # one object
    run_b = np.array([[0.1, 0.7], [0.5, 0.9]])  # two objects
    summary = interactive_summary([run_a, run_b], [[10.0, 10.0], [30.0, 10.0]])
    assert summary.round_jaccard == pytest.approx((0.4, 2 / 3))
    assert summary.round_seconds == pytest.approx((20.0, 10.0))
    assert summary.end_seconds == pytest.approx(360.0)  # 240 s x 1.5 objects on average
    area = 0.4 * 20 / 2 + (0.4 + 2 / 3) / 2 * 10 + (2 / 3) * 330
    assert summary.auc == pytest.approx(area / 360)
    assert interactive_summary([run_a, run_b], [[10.0, 10.0], [30.0, 10.0]],
                               threshold_seconds=25).jaccard_at_threshold == pytest.approx(0.4 + (2 / 3 - 0.4) / 2)


def test_summary_cuts_a_slow_model_at_the_budget() -> None:
    summary = interactive_summary([np.array([[0.5], [0.9]])], [[200.0, 200.0]])
    # Cut at 240 s where the curve reads 0.5 + 0.4 * 40 / 200 = 0.58.
    assert summary.curve_seconds == (0.0, 200.0, 240.0)
    assert summary.auc == pytest.approx((50 + (0.5 + 0.58) / 2 * 40) / 240)
    assert summary.jaccard_at_threshold == pytest.approx(0.15)


def test_summary_without_budget_ends_at_rounds_times_slowest_round() -> None:
    summary = interactive_summary([np.array([[0.5], [0.7]])], [[10.0, 30.0]], seconds_per_object=None)
    assert summary.end_seconds == 60.0
    assert summary.auc == pytest.approx((2.5 + 18 + 14) / 60)


def test_summary_rejects_ragged_runs() -> None:
    with pytest.raises(ValueError, match="same number of rounds"):
        interactive_summary([np.zeros((2, 1)), np.zeros((3, 1))], [[1, 1], [1, 1, 1]])
