"""DAVIS metrics: region similarity J, boundary accuracy F, and the interactive summary.

J (Jaccard) and F (boundary F-measure) are per frame and per object, as in Perazzi et al.,
"A Benchmark Dataset and Evaluation Methodology for Video Object Segmentation" (CVPR 2016).
The summary of an interactive run (AUC and J@60s) follows the DAVIS 2018 interactive track
(Caelles et al., "The 2018 DAVIS Challenge on Video Object Segmentation"); its exact
convention is documented on :func:`interactive_summary`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from manet.simulate.region import as_video, jaccard

__all__ = [
    "BOUNDARY_TOLERANCE", "DAVIS_SECONDS_PER_OBJECT", "DAVIS_THRESHOLD_SECONDS", "InteractiveSummary", "boundary_f",
    "boundary_f_single", "boundary_map", "boundary_tolerance_pixels", "interactive_summary", "jaccard",
]

BOUNDARY_TOLERANCE = 0.008  # fraction of the image diagonal (the DAVIS default)
DAVIS_THRESHOLD_SECONDS = 60.0
DAVIS_SECONDS_PER_OBJECT = 240.0  # 8 interactions x 30 s per interaction and object


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Inner contour of a (H, W) bool mask: its pixels with a 4-neighbour outside the mask.

    The image edge is not a contour: an object cut by the frame border has no boundary there.
    """
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(mask.astype(np.uint8), cross, borderType=cv2.BORDER_REPLICATE)
    return mask & ~eroded.astype(bool)


def boundary_tolerance_pixels(height: int, width: int, tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Match radius in pixels: ``ceil(tolerance * diagonal)`` for a fraction, else ``tolerance``."""
    if tolerance >= 1:
        return round(tolerance)
    return max(1, math.ceil(tolerance * math.hypot(height, width)))


def boundary_f_single(truth: np.ndarray, guess: np.ndarray, radius: int) -> float:
    """Boundary F-measure of two (H, W) bool masks with a match radius in pixels.

    Precision: share of predicted contour pixels within ``radius`` of the true contour;
    recall: share of true contour pixels within ``radius`` of the predicted one;
    F = 2PR / (P + R). Both contours empty gives 1; exactly one empty gives 0.
    """
    truth_edge, guess_edge = boundary_map(truth), boundary_map(guess)
    truth_count, guess_count = int(truth_edge.sum()), int(guess_edge.sum())
    if truth_count == 0 and guess_count == 0:
        return 1.0
    if truth_count == 0 or guess_count == 0:
        return 0.0
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    truth_zone = cv2.dilate(truth_edge.astype(np.uint8), disc).astype(bool)
    guess_zone = cv2.dilate(guess_edge.astype(np.uint8), disc).astype(bool)
    precision = np.count_nonzero(guess_edge & truth_zone) / guess_count
    recall = np.count_nonzero(truth_edge & guess_zone) / truth_count
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def boundary_f(gt: np.ndarray, pred: np.ndarray, object_ids: Iterable[int],
               tolerance: float = BOUNDARY_TOLERANCE) -> np.ndarray:
    """Boundary accuracy per frame and object.

    Args:
        gt, pred: (T, H, W) or (H, W) integer id maps.
        object_ids: ids (> 0) to score.
        tolerance: match radius as a fraction of the image diagonal (< 1) or in pixels.

    Returns:
        (T, K) float64 in [0, 1], see :func:`boundary_f_single`.
    """
    gt, pred = as_video(np.asarray(gt)), as_video(np.asarray(pred))
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred shapes differ: {gt.shape} vs {pred.shape}")
    ids = [int(k) for k in object_ids]
    radius = boundary_tolerance_pixels(gt.shape[1], gt.shape[2], tolerance)
    scores = np.empty((gt.shape[0], len(ids)), dtype=np.float64)
    for t in range(gt.shape[0]):
        for column, object_id in enumerate(ids):
            scores[t, column] = boundary_f_single(gt[t] == object_id, pred[t] == object_id, radius)
    return scores


@dataclass(frozen=True)
class InteractiveSummary:
    """The DAVIS interactive summary of a run.

    Attributes:
        auc: area under the J-over-time curve divided by ``end_seconds``, in [0, 1].
        jaccard_at_threshold: J of the curve at ``threshold_seconds`` (linear interpolation).
        threshold_seconds: 60 s in the benchmark.
        end_seconds: where the curve ends (the time budget).
        curve_seconds, curve_jaccard: the curve's points, from (0, 0) to the end point.
        round_jaccard: mean J after each round (over every object of every sequence).
        round_seconds: mean seconds spent in each round (over sequences).
    """

    auc: float
    jaccard_at_threshold: float
    threshold_seconds: float
    end_seconds: float
    curve_seconds: tuple[float, ...]
    curve_jaccard: tuple[float, ...]
    round_jaccard: tuple[float, ...]
    round_seconds: tuple[float, ...]


def interactive_summary(object_jaccard: Sequence[np.ndarray], seconds: Sequence[Sequence[float]],
                        threshold_seconds: float = DAVIS_THRESHOLD_SECONDS,
                        seconds_per_object: float | None = DAVIS_SECONDS_PER_OBJECT) -> InteractiveSummary:
    """AUC and J@60s of an interactive run, with the DAVIS 2018 interactive track's convention.

    Args:
        object_jaccard: per run (a sequence started from one first-round scribble) an
            (R, K_s) array: J averaged over frames, per round and object. Every run has the
            same R; a run that stopped early repeats its last row (and spends 0 s, below).
        seconds: per run, R wall-clock seconds of the model per round.
        threshold_seconds: where J is read off the curve (60 s in the benchmark).
        seconds_per_object: time budget per object. The curve ends at this times the mean
            number of objects per run (benchmark: 8 interactions x 30 s = 240 s per object).
            ``None``: end at R times the longest single round, the benchmark's rule when no
            budget is set.

    The convention (as the benchmark's summary computes it):
      * the J of round r is the mean over every (run, object) pair, so each object counts
        the same, whichever sequence it is in;
      * the time of round r is the cumulative sum over rounds of the per-round seconds
        averaged over runs;
      * the curve is piecewise linear through (0, 0), (time_1, J_1), ..., (time_R, J_R),
        then flat at J_R up to the end point;
      * AUC = trapezoidal area under that curve / end point;
      * J@threshold = linear interpolation of the curve at the threshold.
    If the measured time passes the end point (a model slower than the budget), the curve
    is cut at the end point, where its value is interpolated.
    """
    if len(object_jaccard) == 0 or len(object_jaccard) != len(seconds):
        raise ValueError("give one J array and one seconds list per run, and at least one run")
    rounds = {np.asarray(j).shape[0] for j in object_jaccard} | {len(s) for s in seconds}
    if len(rounds) != 1:
        raise ValueError(f"every run needs the same number of rounds, got {sorted(rounds)}")
    all_objects = np.concatenate([np.asarray(j, dtype=np.float64) for j in object_jaccard], axis=1)
    round_jaccard = all_objects.mean(axis=1)
    round_seconds = np.asarray(seconds, dtype=np.float64).mean(axis=0)
    time = np.concatenate([[0.0], np.cumsum(round_seconds)])
    value = np.concatenate([[0.0], round_jaccard])
    if seconds_per_object is None:
        end = float(len(round_seconds) * np.max(np.asarray(seconds, dtype=np.float64)))
    else:
        end = float(seconds_per_object * np.mean([np.asarray(j).shape[1] for j in object_jaccard]))
    time, value = _close_curve(time, value, end)
    auc = float(np.trapezoid(value, time) / end) if end > 0 else 0.0
    return InteractiveSummary(
        auc=auc,
        jaccard_at_threshold=float(np.interp(threshold_seconds, time, value)),
        threshold_seconds=float(threshold_seconds),
        end_seconds=end,
        curve_seconds=tuple(float(t) for t in time),
        curve_jaccard=tuple(float(v) for v in value),
        round_jaccard=tuple(float(v) for v in round_jaccard),
        round_seconds=tuple(float(s) for s in round_seconds),
    )


def _close_curve(time: np.ndarray, value: np.ndarray, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Extend the curve flat to ``end``, or cut it there when it runs past."""
    if time[-1] <= end:
        return np.append(time, end), np.append(value, value[-1])
    keep = time < end
    return np.append(time[keep], end), np.append(value[keep], np.interp(end, time, value))
