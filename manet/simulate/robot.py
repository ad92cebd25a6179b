"""A simulated user that draws correction scribbles, as the DAVIS interactive benchmark's robot.

For every object id ``k`` (background 0 included) the error region on the chosen frame is
``gt == k and pred != k``: a missed part of object ``k``, or for ``k = 0`` a false positive.
The region is opened with a disc whose radius grows with the region (``kernel_ratio`` times
the square root of its area, at most ``max_radius``) and shrinks until something survives,
so thin slivers along boundaries are ignored when there is a sizeable error to fix. The
opened region is skeletonised, the skeleton becomes a graph, and each piece with at least
``min_nodes`` pixels gives one stroke along its longest path, smoothed with a moving
average. When the opening leaves only round blobs whose skeleton collapses to a dot, a
short stroke through the region's deepest point along its main axis is drawn instead.

Every stroke point lies inside its error region; points are in original-frame pixels,
pixel ``(row, col)`` drawn at its centre ``(col + 0.5, row + 0.5)``. A first-round scribble
is the same robot against an all-background prediction, so it has object strokes only.
Everything is deterministic for a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from manet.errors import ScribbleError
from manet.inference.scribbles import MAX_OBJECT_ID, Annotation, Scribble, make_annotation, to_davis
from manet.optional import require
from manet.simulate.next_frame import frames_by_jaccard, largest_objects_frame
from manet.simulate.skeleton import longest_paths

# A smoothed point is kept only where every 8-neighbour of its pixel is inside the region,
# so the line to the next (adjacent) point cannot leave the region either.
_SAFE_DEPTH = 1.5


@dataclass(frozen=True)
class RobotConfig:
    """How the simulated user draws.

    Attributes:
        kernel_ratio: opening radius as a fraction of sqrt(error area).
        max_radius: cap of the opening radius, in pixels.
        min_nodes: skeleton pieces with fewer pixels give no stroke.
        min_error_area: error regions with fewer pixels are ignored (annotation noise).
        smoothing: moving-average window, in path points (1 = no smoothing).
        radius_jitter: for variety (training, or evaluations averaged over seeds), the
            radius, after its cap, is scaled by a factor drawn uniformly from
            ``[1 - jitter, 1 + jitter]`` per error region (0 = the benchmark's fixed rule); in [0, 1).
        max_strokes_per_object: keep only the longest strokes of an object (None = all).
    """

    kernel_ratio: float = 0.15
    max_radius: int = 16
    min_nodes: int = 4
    min_error_area: int = 4
    smoothing: int = 5
    radius_jitter: float = 0.0
    max_strokes_per_object: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.radius_jitter < 1.0:
            raise ValueError(f"radius_jitter must lie in [0, 1) (a fraction of the opening radius), "
                             f"got {self.radius_jitter}")


def require_drawing(purpose: str) -> None:
    """Fail now, naming the install command, where drawing strokes would fail later: the robot
    needs scipy and scikit-image (the ``eval`` extra)."""
    for module in ("skimage.morphology", "scipy.sparse.csgraph"):
        require(module, f"{purpose} (its simulated user)")


def robot_scribbles(gt: np.ndarray, pred: np.ndarray, object_ids: Iterable[int],
                    rng: np.random.Generator, config: RobotConfig = RobotConfig()) -> list[Scribble]:
    """Correction scribbles for one frame.

    Args:
        gt: (H, W) uint8 ground-truth ids, 0 = background.
        pred: (H, W) uint8 predicted ids.
        object_ids: object ids (> 0) to correct; background (0) is always corrected too.
        rng: seeded generator; same inputs and seed give the same strokes.
        config: drawing parameters.

    Returns:
        Strokes (background ones first, then by object id), each with points inside the
        region where ``gt == id`` and ``pred != id``. Empty when the prediction is right.

    Raises:
        ScribbleError: when gt and pred are not (H, W) maps of one shape, or an id is not an
            integer in 0..255.
    """
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ScribbleError(f"gt and pred must be (H, W) id maps of one shape, got {gt.shape} and {pred.shape}")
    scribbles: list[Scribble] = []
    for object_id in sorted({0, *(_object_id(k) for k in object_ids)}):
        error = (gt == object_id) & (pred != object_id)
        for points in error_strokes(error, rng, config):
            scribbles.append(Scribble(object_id, points))
    return scribbles


def _object_id(value: Any) -> int:
    """An object id as int; ScribbleError for non-integers and ids outside 0..255."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= MAX_OBJECT_ID:
        raise ScribbleError(f"object ids must be integers in 0..{MAX_OBJECT_ID}, got {value!r}")
    return int(value)


def error_strokes(error: np.ndarray, rng: np.random.Generator,
                  config: RobotConfig = RobotConfig()) -> list[np.ndarray]:
    """Strokes along one error region.

    Args:
        error: (H, W) bool region to correct.

    Returns:
        (N, 2) float64 arrays of ``(x, y)`` frame pixels, every point inside ``error``.
    """
    area = int(np.count_nonzero(error))
    if area < max(1, config.min_error_area):
        return []
    top, left, region = _crop(error)
    depth = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    opened = _open_until_nonempty(region, depth, _radius(area, rng, config))
    skeletonize = require("skimage.morphology", "the simulated user").skeletonize
    paths = longest_paths(skeletonize(opened), config.min_nodes, rng)
    if not paths:
        return [_blob_stroke(region, depth) + (left, top)]
    paths.sort(key=len, reverse=True)
    if config.max_strokes_per_object is not None:
        paths = paths[: config.max_strokes_per_object]
    return [_smooth(path, depth, config.smoothing) + (left, top) for path in paths]


def _crop(error: np.ndarray) -> tuple[int, int, np.ndarray]:
    """Bounding box of the region (work on the box only: the robot runs inside training)."""
    rows = np.flatnonzero(error.any(axis=1))
    cols = np.flatnonzero(error.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(top), int(left), error[top:bottom, left:right]


def _radius(area: int, rng: np.random.Generator, config: RobotConfig) -> int:
    radius = min(float(config.max_radius), config.kernel_ratio * math.sqrt(area))
    if config.radius_jitter > 0:  # after the cap, so large regions vary too
        radius *= float(rng.uniform(1.0 - config.radius_jitter, 1.0 + config.radius_jitter))
    return int(round(radius))


def _open_until_nonempty(region: np.ndarray, depth: np.ndarray, radius: int) -> np.ndarray:
    """Open with a disc of ``radius``, shrinking the disc until some pixels survive.

    A disc of radius r fits only where the distance to the outside exceeds r, so the
    search starts at most at the largest inscribed radius.
    """
    radius = min(radius, max(0, int(depth.max()) - 1))
    mask = region.astype(np.uint8)
    while radius > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, disc, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        if opened.any():
            return opened.astype(bool)
        radius -= 1
    return region


def _smooth(path: np.ndarray, depth: np.ndarray, window: int) -> np.ndarray:
    """Moving-average a pixel path into (x, y) points, keeping only smoothed points that stay
    safely inside the region; elsewhere (and at both ends) the pixel centre itself is kept."""
    centres = path[:, ::-1].astype(np.float64) + 0.5
    if window <= 1 or len(path) < 3:
        return centres
    half = min(window // 2, (len(path) - 1) // 2)
    padded = np.pad(centres, ((half, half), (0, 0)), mode="edge")
    kernel = np.full(2 * half + 1, 1.0 / (2 * half + 1))
    smoothed = np.stack([np.convolve(padded[:, i], kernel, mode="valid") for i in range(2)], axis=1)
    pixels = np.floor(smoothed).astype(np.int64)
    safe = depth[pixels[:, 1], pixels[:, 0]] > _SAFE_DEPTH
    safe[[0, -1]] = False
    return np.where(safe[:, None], smoothed, centres)


def _blob_stroke(region: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """A short stroke through the deepest pixel along the region's main axis (round blobs)."""
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    ys, xs = np.nonzero(region)
    if len(ys) > 1:
        covariance = np.cov(np.stack([xs, ys]).astype(np.float64))
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        direction = eigenvectors[:, int(np.argmax(eigenvalues))]
    else:
        direction = np.array([1.0, 0.0])
    half_length = max(1.0, float(depth[row, col]) - _SAFE_DEPTH)
    steps = np.arange(-math.floor(half_length), math.floor(half_length) + 1, dtype=np.float64)
    pixels = np.round(np.array([col, row]) + steps[:, None] * direction).astype(np.int64)
    inside = ((pixels >= 0).all(axis=1) & (pixels[:, 0] < region.shape[1]) & (pixels[:, 1] < region.shape[0]))
    pixels = pixels[inside]
    pixels = pixels[region[pixels[:, 1], pixels[:, 0]]]
    # Keep the run of consecutive pixels through the centre so the stroke does not jump a gap.
    centre = int(np.flatnonzero((pixels == (col, row)).all(axis=1))[0])
    gaps = np.flatnonzero(np.abs(np.diff(pixels, axis=0)).max(axis=1) > 1)
    first = int(gaps[gaps < centre].max() + 1) if (gaps < centre).any() else 0
    last = int(gaps[gaps >= centre].min() + 1) if (gaps >= centre).any() else len(pixels)
    _, unique = np.unique(pixels[first:last], axis=0, return_index=True)
    return pixels[first:last][np.sort(unique)].astype(np.float64) + 0.5


def robot_annotation(gt_masks: np.ndarray, pred_masks: np.ndarray, object_ids: Sequence[int],
                     rng: np.random.Generator, annotated_frames: Iterable[int] = (),
                     frame: int | None = None,
                     config: RobotConfig = RobotConfig()) -> Annotation | None:
    """The next round's correction, on the worst frame of a sequence.

    Args:
        gt_masks, pred_masks: (T, H, W) uint8 id maps.
        object_ids: object ids (> 0) of the sequence.
        annotated_frames: frames already annotated; they are not chosen again while others
            remain.
        frame: annotate this frame instead of choosing one.

    Returns:
        Strokes on the frame with the lowest mean Jaccard (the benchmark's rule); if that
        frame's errors are all too small to draw on, the next worst frame with errors, and
        already annotated frames only once no other frame has errors. ``None`` when no frame
        has anything to correct.
    """
    num_frames, height, width = gt_masks.shape
    if frame is not None:
        candidates: list[int] = [frame]
    else:
        fresh, scores = frames_by_jaccard(gt_masks, pred_masks, object_ids, annotated_frames)
        every = np.argsort(scores, kind="stable")
        candidates = [int(t) for t in fresh if scores[t] < 1.0]
        candidates += [int(t) for t in every if scores[t] < 1.0 and t not in candidates]
    for candidate in candidates:
        scribbles = robot_scribbles(gt_masks[candidate], pred_masks[candidate], object_ids, rng, config)
        if scribbles:
            return make_annotation(candidate, scribbles, num_frames, width, height)
    return None


def first_round_annotation(gt_masks: np.ndarray, frame: int | None = None,
                           rng: np.random.Generator | None = None,
                           object_ids: Sequence[int] | None = None,
                           config: RobotConfig = RobotConfig()) -> Annotation:
    """A first-round scribble: the robot against an all-background prediction.

    Args:
        gt_masks: (T, H, W) uint8 ground-truth ids.
        frame: frame to annotate; default the frame where the objects are largest (most
            objects present, then the largest share of each object's biggest extent).
        rng: defaults to ``numpy.random.default_rng(0)``.
        object_ids: defaults to every id > 0 in ``gt_masks``.

    Raises:
        ScribbleError: when the chosen frame shows none of the objects.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    ids = sorted(int(k) for k in np.unique(gt_masks) if k > 0) if object_ids is None else list(object_ids)
    if frame is None:
        frame = largest_objects_frame(gt_masks, ids)
    empty = np.zeros(gt_masks.shape[1:], dtype=gt_masks.dtype)
    scribbles = robot_scribbles(gt_masks[frame], empty, ids, rng, config)
    if not scribbles:
        raise ScribbleError(f"frame {frame} shows none of the objects {ids}: pick a frame where they are visible")
    num_frames, height, width = gt_masks.shape
    return make_annotation(frame, scribbles, num_frames, width, height)


def annotation_to_davis(annotation: Annotation, num_frames: int, height: int, width: int) -> dict[str, Any]:
    """The annotation as a DAVIS interactive scribble dict (paths normalised by (W, H))."""
    return to_davis([annotation], num_frames, width, height)
