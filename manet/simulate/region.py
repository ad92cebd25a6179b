"""Region similarity J (Jaccard): the score the simulated user picks frames by, and the one
evaluation reports (:mod:`manet.eval.metrics` re-exports it)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def as_video(masks: np.ndarray) -> np.ndarray:
    """(H, W) -> (1, H, W); (T, H, W) unchanged."""
    return masks[None] if masks.ndim == 2 else masks


def jaccard(gt: np.ndarray, pred: np.ndarray, object_ids: Iterable[int]) -> np.ndarray:
    """Region similarity per frame and object.

    Args:
        gt, pred: (T, H, W) or (H, W) integer id maps (0 = background).
        object_ids: ids (> 0) to score, in output column order.

    Returns:
        (T, K) float64 in [0, 1]: |gt == k & pred == k| / |gt == k | pred == k|, and 1 where
        the object is absent from both (nothing to find, nothing wrongly found).
    """
    gt, pred = as_video(np.asarray(gt)), as_video(np.asarray(pred))
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred shapes differ: {gt.shape} vs {pred.shape}")
    ids = [int(k) for k in object_ids]
    scores = np.ones((gt.shape[0], len(ids)), dtype=np.float64)
    for column, object_id in enumerate(ids):
        truth, guess = gt == object_id, pred == object_id
        intersection = np.count_nonzero(truth & guess, axis=(1, 2))
        union = np.count_nonzero(truth | guess, axis=(1, 2))
        present = union > 0
        scores[present, column] = intersection[present] / union[present]
    return scores
