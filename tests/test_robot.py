"""The simulated user: strokes inside error regions, right ids, deterministic, fast."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from manet.inference.scribbles import parse_davis, rasterize
from manet.simulate.robot import (
    RobotConfig,
    annotation_to_davis,
    error_strokes,
    first_round_annotation,
    robot_annotation,
    robot_scribbles,
)
from manet.simulate.skeleton import longest_paths


def _ellipse(shape: tuple[int, int], centre: tuple[int, int], axes: tuple[int, int], angle: float = 0.0,
             value: int = 1, canvas: np.ndarray | None = None) -> np.ndarray:
    canvas = np.zeros(shape, dtype=np.uint8) if canvas is None else canvas
    cv2.ellipse(canvas, centre, axes, angle, 0, 360, value, -1)
    return canvas


def _assert_inside(scribble_points: np.ndarray, region: np.ndarray) -> None:
    """Every point's pixel and every rasterised stroke pixel lies in ``region``."""
    pixels = np.floor(scribble_points).astype(int)
    assert region[pixels[:, 1], pixels[:, 0]].all()


def _assert_drawn_inside(scribbles, gt: np.ndarray, pred: np.ndarray) -> None:
    for scribble in scribbles:
        region = (gt == scribble.object_id) & (pred != scribble.object_id)
        _assert_inside(scribble.points, region)
        drawn = rasterize([scribble], gt.shape, gt.shape) >= 0
        assert drawn.any() and not (drawn & ~region).any()


def _random_case(rng: np.random.Generator, shape=(72, 108)) -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros(shape, dtype=np.uint8)
    pred = np.zeros(shape, dtype=np.uint8)
    for object_id in (1, 2):
        centre = (int(rng.integers(15, shape[1] - 15)), int(rng.integers(15, shape[0] - 15)))
        axes = (int(rng.integers(4, 20)), int(rng.integers(3, 14)))
        angle = float(rng.uniform(0, 180))
        _ellipse(shape, centre, axes, angle, object_id, gt)
        shift = rng.integers(-8, 9, size=2)
        moved = (centre[0] + int(shift[0]), centre[1] + int(shift[1]))
        _ellipse(shape, moved, (axes[0] + int(rng.integers(-3, 4)), axes[1]), angle, object_id, pred)
    return gt, pred


def test_every_stroke_pixel_lies_inside_its_error_region() -> None:
    rng = np.random.default_rng(0)
    total = 0
    for case in range(40):
        gt, pred = _random_case(rng)
        scribbles = robot_scribbles(gt, pred, [1, 2], np.random.default_rng(case))
        _assert_drawn_inside(scribbles, gt, pred)
        total += len(scribbles)
    assert total > 40  # the cases really produced strokes


def test_perfect_prediction_gives_no_strokes() -> None:
    gt, _ = _random_case(np.random.default_rng(1))
    assert robot_scribbles(gt, gt.copy(), [1, 2], np.random.default_rng(0)) == []


def test_background_stroke_lands_on_false_positives() -> None:
    gt = _ellipse((64, 96), (30, 32), (12, 8))
    pred = gt.copy()
    _ellipse((64, 96), (75, 30), (10, 14), canvas=pred)  # a wrong blob far from the object
    scribbles = robot_scribbles(gt, pred, [1], np.random.default_rng(0))
    assert [s.object_id for s in scribbles] == [0]
    false_positive = (gt == 0) & (pred == 1)
    _assert_inside(scribbles[0].points, false_positive)
    assert len(scribbles[0].points) >= 5


def test_disc_shaped_error_gets_a_short_stroke() -> None:
    gt = _ellipse((64, 96), (48, 32), (6, 6))
    pred = np.zeros_like(gt)
    scribbles = robot_scribbles(gt, pred, [1], np.random.default_rng(0))
    assert len(scribbles) == 1 and scribbles[0].object_id == 1
    points = scribbles[0].points
    assert len(points) >= 3
    assert np.linalg.norm(points[-1] - points[0]) >= 3.0
    _assert_drawn_inside(scribbles, gt, pred)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_tiny_round_errors_still_get_a_stroke(radius: int) -> None:
    gt = _ellipse((32, 32), (16, 16), (radius, radius))
    scribbles = robot_scribbles(gt, np.zeros_like(gt), [1], np.random.default_rng(0),
                                RobotConfig(min_error_area=1))
    assert len(scribbles) == 1
    _assert_drawn_inside(scribbles, gt, np.zeros_like(gt))


def test_thin_sliver_error_is_followed() -> None:
    gt = np.zeros((40, 80), dtype=np.uint8)
    gt[10:30, 10:70] = 1
    pred = gt.copy()
    pred[10, 10:70] = 0  # a one-pixel-high miss along the top edge
    scribbles = robot_scribbles(gt, pred, [1], np.random.default_rng(0))
    assert [s.object_id for s in scribbles] == [1]
    _assert_drawn_inside(scribbles, gt, pred)
    assert np.ptp(scribbles[0].points[:, 0]) > 40  # runs along the sliver


def test_multi_object_ids_go_to_their_own_errors() -> None:
    shape = (64, 96)
    gt = _ellipse(shape, (25, 32), (12, 9), value=1)
    _ellipse(shape, (70, 32), (12, 9), value=2, canvas=gt)
    pred = np.zeros(shape, dtype=np.uint8)
    pred[gt == 1] = 1
    pred[:, :30][gt[:, :30] == 1] = 0  # object 1 half missed; object 2 entirely missed
    pred[50:60, 40:55] = 2  # object 2 predicted on the background
    scribbles = robot_scribbles(gt, pred, [1, 2], np.random.default_rng(0))
    ids = [s.object_id for s in scribbles]
    assert ids == sorted(ids) and set(ids) == {0, 1, 2}
    _assert_drawn_inside(scribbles, gt, pred)
    for scribble in scribbles:
        mean_x = scribble.points[:, 0].mean()
        if scribble.object_id == 1:
            assert mean_x < 30
        if scribble.object_id == 2:
            assert mean_x > 55


def test_same_seed_same_strokes() -> None:
    gt, pred = _random_case(np.random.default_rng(5))
    config = RobotConfig(radius_jitter=0.3)
    first = robot_scribbles(gt, pred, [1, 2], np.random.default_rng(11), config)
    second = robot_scribbles(gt, pred, [1, 2], np.random.default_rng(11), config)
    assert [s.object_id for s in first] == [s.object_id for s in second]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.points, b.points)


def _dumbbell() -> np.ndarray:
    """Two discs of radius 40 joined by a bar 28 px wide: an opening of radius 12 keeps the bar, one
    of 16 (the cap for a region this large) cuts it."""
    region = np.zeros((120, 320), dtype=np.uint8)
    cv2.circle(region, (60, 60), 40, 1, -1)
    cv2.circle(region, (260, 60), 40, 1, -1)
    region[46:74, 60:260] = 1
    return region.astype(bool)


def test_radius_jitter_varies_strokes_with_the_seed_also_at_the_cap() -> None:
    region = _dumbbell()
    assert RobotConfig().kernel_ratio * np.sqrt(region.sum()) > RobotConfig().max_radius  # capped
    def drawn(config: RobotConfig, seed: int) -> frozenset[tuple[int, int]]:
        """The pixels the strokes pass through (a path may be walked either way)."""
        strokes = error_strokes(region, np.random.default_rng(seed), config)
        return frozenset(map(tuple, np.floor(np.concatenate(strokes)).astype(int).tolist()))

    assert len({drawn(RobotConfig(), seed) for seed in range(8)}) == 1  # no jitter: the seed changes nothing
    jittered = RobotConfig(radius_jitter=0.3)
    counts = {len(error_strokes(region, np.random.default_rng(seed), jittered)) for seed in range(8)}
    # Radii below the cap keep the bar (one stroke along it), radii at the cap cut it (a stroke in
    # each disc): both happen among the seeds.
    assert counts == {1, 2}
    assert len({drawn(jittered, seed) for seed in range(8)}) > 2
    for seed in range(8):
        for points in error_strokes(region, np.random.default_rng(seed), jittered):
            _assert_inside(points, region)


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 1.5, float("nan")])
def test_radius_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match="radius_jitter must lie in"):
        RobotConfig(radius_jitter=jitter)


def test_first_round_is_on_the_frame_with_all_objects_and_has_no_background() -> None:
    shape = (48, 64)
    gt = np.zeros((5,) + shape, dtype=np.uint8)
    for t in range(5):
        _ellipse(shape, (20, 24), (6 + t, 5 + t), value=1, canvas=gt[t])
    _ellipse(shape, (48, 24), (6, 6), value=2, canvas=gt[1])
    _ellipse(shape, (48, 24), (7, 7), value=2, canvas=gt[2])
    annotation = first_round_annotation(gt, rng=np.random.default_rng(0))
    assert annotation.frame == 2  # both objects, and object 2 at its largest
    assert annotation.object_ids == [1, 2]
    _assert_drawn_inside(annotation.scribbles, gt[2], np.zeros(shape, dtype=np.uint8))


def test_first_round_on_an_empty_frame_raises() -> None:
    gt = np.zeros((3, 20, 20), dtype=np.uint8)
    gt[0, 5:15, 5:15] = 1
    with pytest.raises(ValueError, match="none of the objects"):
        first_round_annotation(gt, frame=2)


def test_sequence_robot_picks_the_worst_unannotated_frame() -> None:
    shape = (48, 64)
    gt = np.stack([_ellipse(shape, (30, 24), (12, 10)) for _ in range(4)])
    pred = gt.copy()
    pred[1, :, :30] = 0  # frame 1: half missed (worst)
    pred[3, :, :22] = 0  # frame 3: a smaller miss
    annotation = robot_annotation(gt, pred, [1], np.random.default_rng(0))
    assert annotation is not None and annotation.frame == 1
    annotation = robot_annotation(gt, pred, [1], np.random.default_rng(0), annotated_frames=[1])
    assert annotation is not None and annotation.frame == 3
    assert robot_annotation(gt, gt.copy(), [1], np.random.default_rng(0)) is None
    # Only annotated frames are still wrong (frame 0 is perfect): back to the worst of them.
    annotation = robot_annotation(gt, pred, [1], np.random.default_rng(0), annotated_frames=[1, 2, 3])
    assert annotation is not None and annotation.frame == 1


def test_davis_dict_round_trips() -> None:
    gt, pred = _random_case(np.random.default_rng(3))
    video_gt, video_pred = np.stack([gt, gt]), np.stack([gt, pred])
    annotation = robot_annotation(video_gt, video_pred, [1, 2], np.random.default_rng(0))
    assert annotation is not None
    data = annotation_to_davis(annotation, 2, *gt.shape)
    assert data["scribbles"][0] == [] and len(data["scribbles"][1]) == len(annotation.scribbles)
    path = np.asarray(data["scribbles"][1][0]["path"])
    assert path.min() >= 0 and path.max() <= 1
    back = parse_davis(data, 2, gt.shape[1], gt.shape[0])
    np.testing.assert_allclose(back.scribbles[0].points, annotation.scribbles[0].points)


def test_longest_path_of_a_t_shape_spans_the_long_bar() -> None:
    skeleton = np.zeros((30, 40), dtype=bool)
    skeleton[5, 5:36] = True  # bar: 31 pixels
    skeleton[6:15, 20] = True  # stem: 9 pixels below the bar's middle
    skeleton[25, 2:4] = True  # a 2-pixel piece, dropped by min_nodes
    paths = longest_paths(skeleton, min_nodes=4, rng=np.random.default_rng(0))
    assert len(paths) == 1
    ends = {tuple(paths[0][0]), tuple(paths[0][-1])}
    # From the bar's end to the far end of the bar (30 px) beats bar-end to stem (15 + 9 px).
    assert ends == {(5, 5), (5, 35)}
    assert np.abs(np.diff(paths[0], axis=0)).max() == 1  # consecutive pixels are neighbours


def test_error_strokes_ignore_specks() -> None:
    error = np.zeros((20, 20), dtype=bool)
    error[3, 3] = error[10, 10] = True
    assert error_strokes(error, np.random.default_rng(0)) == []


def test_fast_enough_for_training() -> None:
    shape = (240, 427)
    gt = _ellipse(shape, (150, 120), (80, 60), value=1)
    _ellipse(shape, (330, 140), (50, 70), 30, value=2, canvas=gt)
    pred = np.zeros(shape, dtype=np.uint8)
    pred[:, 20:] = gt[:, :-20]
    robot_scribbles(gt, pred, [1, 2], np.random.default_rng(0))  # warm-up
    timings = []
    for seed in range(5):
        started = time.perf_counter()
        robot_scribbles(gt, pred, [1, 2], np.random.default_rng(seed))
        timings.append(time.perf_counter() - started)
    assert np.median(timings) < 0.05
