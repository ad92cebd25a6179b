"""User annotations: typed scribbles, the DAVIS interactive JSON format, and rasterisation.

Coordinates: a :class:`Scribble` holds points in pixels of the *original* video frame,
``x`` to the right in ``[0, W]``, ``y`` down in ``[0, H]``. The DAVIS interactive format holds
the same points normalised by ``(W, H)`` so it applies at any resolution.

Object ids are user ids: 0 is background, 1..255 are objects. They are never tensor channel
indices; the session maps ids to channels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from manet.errors import FrameIndexError, ScribbleError

MAX_OBJECT_ID = 255
UNLABELLED = -1
# A click is a disc whose radius is this fraction of the frame's short side (tuned on the dev
# split with the simulated user's strokes replaced by clicks at their midpoints).
CLICK_RADIUS_FRACTION = 0.04


def click_radius(height: int, width: int, fraction: float = CLICK_RADIUS_FRACTION) -> float:
    """Radius in pixels of a click on a ``height`` x ``width`` frame."""
    return max(1.0, fraction * min(height, width))


def _number(value: Any, what: str) -> float:
    """``value`` as a float; bools, strings, containers and overflowing ints raise ScribbleError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ScribbleError(f"{what} must be a number, got {value!r:.40}")
    try:
        return float(value)
    except OverflowError as error:
        raise ScribbleError(f"{what} {value!r:.40} is too large") from error


@dataclass(frozen=True)
class Scribble:
    """One stroke (or one click) for one object.

    Attributes:
        object_id: 0 for background (a negative stroke), 1..255 for an object.
        points: (N, 2) float64 array of ``(x, y)`` in original-frame pixels, N >= 1.
        radius: stroke half-width in original-frame pixels; ``None`` draws the thinnest line
            the target grid allows. A single point with a radius is a click.
    """

    object_id: int
    points: np.ndarray
    radius: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.object_id, bool) or not isinstance(self.object_id, (int, np.integer)):
            raise ScribbleError(f"object_id must be an int in [0, {MAX_OBJECT_ID}], got {self.object_id!r}")
        if not 0 <= int(self.object_id) <= MAX_OBJECT_ID:
            raise ScribbleError(
                f"object_id {self.object_id} is out of range: use 0 for background, 1..{MAX_OBJECT_ID} for objects"
            )
        try:
            points = np.asarray(self.points, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as error:
            raise ScribbleError(f"scribble points must be (x, y) number pairs, got {self.points!r:.60}") from error
        if points.ndim == 1 and points.size == 2:
            points = points.reshape(1, 2)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ScribbleError(f"scribble points must have shape (N, 2) as (x, y) pairs, got {points.shape}")
        if points.shape[0] == 0:
            raise ScribbleError("a scribble has no points: draw at least one point, or leave the stroke out")
        if not np.all(np.isfinite(points)):
            raise ScribbleError("scribble points contain NaN or infinity")
        radius = None if self.radius is None else _number(self.radius, "scribble radius")
        if radius is not None and not (math.isfinite(radius) and radius > 0):
            raise ScribbleError(f"scribble radius must be a positive number of pixels, got {self.radius!r}")
        object.__setattr__(self, "object_id", int(self.object_id))
        object.__setattr__(self, "radius", radius)
        points.setflags(write=False)
        object.__setattr__(self, "points", points)

    @classmethod
    def from_points(cls, object_id: int, points_xy: Sequence[Sequence[float]] | np.ndarray,
                    radius: float) -> list[Scribble]:
        """Clicks: one disc-shaped scribble of ``radius`` pixels per point."""
        array = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        if array.shape[0] == 0:
            raise ScribbleError("no click points given")
        return [cls(object_id, row[None, :], radius) for row in array]

    def check_inside(self, width: int, height: int) -> None:
        """Raise :class:`ScribbleError` unless every point lies inside a ``width`` x ``height`` frame."""
        x, y = self.points[:, 0], self.points[:, 1]
        if x.min() < 0 or y.min() < 0 or x.max() > width or y.max() > height:
            raise ScribbleError(
                f"scribble for object {self.object_id} has points outside the {width}x{height} frame "
                f"(x in [{x.min():.1f}, {x.max():.1f}], y in [{y.min():.1f}, {y.max():.1f}]); "
                "give pixel coordinates of the original frame"
            )


@dataclass(frozen=True)
class Box:
    """A box prompt: the object lies inside ``[x0, x1] x [y0, y1]`` (original-frame pixels).

    Outside every box of a round counts as background in that round (as the paper's round-1
    ROI does), and a cross through the box centre is a positive seed for the object.
    """

    object_id: int
    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        if isinstance(self.object_id, bool) or not isinstance(self.object_id, (int, np.integer)) \
                or not 1 <= int(self.object_id) <= MAX_OBJECT_ID:
            raise ScribbleError(f"a box needs an object id in 1..{MAX_OBJECT_ID}, got {self.object_id!r}")
        values = tuple(_number(v, "box corner") for v in (self.x0, self.y0, self.x1, self.y1))
        if not all(math.isfinite(v) for v in values):
            raise ScribbleError("box corners must be finite numbers")
        for name, value in zip(("x0", "y0", "x1", "y1"), values):
            object.__setattr__(self, name, value)
        if not (self.x1 > self.x0 and self.y1 > self.y0):
            raise ScribbleError(f"box ({self.x0}, {self.y0}) - ({self.x1}, {self.y1}) is empty: x1 > x0 and y1 > y0")
        object.__setattr__(self, "object_id", int(self.object_id))

    def seed(self) -> list[Scribble]:
        """A positive cross through the centre spanning 30% of the box each way."""
        cx, cy = (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2
        dx, dy = 0.15 * (self.x1 - self.x0), 0.15 * (self.y1 - self.y0)
        return [Scribble(self.object_id, np.array([[cx - dx, cy], [cx + dx, cy]])),
                Scribble(self.object_id, np.array([[cx, cy - dy], [cx, cy + dy]]))]

    def check_inside(self, width: int, height: int) -> None:
        if self.x0 < 0 or self.y0 < 0 or self.x1 > width or self.y1 > height:
            raise ScribbleError(f"box for object {self.object_id} reaches outside the {width}x{height} frame")


@dataclass(frozen=True)
class Annotation:
    """What a user gives in one round: prompts on a single frame.

    Attributes:
        frame: the annotated frame.
        scribbles: strokes and clicks.
        boxes: box prompts (see :class:`Box`).
        mask: a complete (H, W) uint8 id mask of the frame (an imported or painted mask), or
            None. A mask is a full annotation: it is the frame's result as given.

    Invariant: at least one of scribbles, boxes, mask is non-empty, and everything lies
    inside the frame it was validated against.
    """

    frame: int
    scribbles: tuple[Scribble, ...] = field(default_factory=tuple)
    boxes: tuple[Box, ...] = field(default_factory=tuple)
    mask: np.ndarray | None = None

    @property
    def object_ids(self) -> list[int]:
        """Sorted distinct ids (background 0 included when present)."""
        ids = {s.object_id for s in self.scribbles} | {b.object_id for b in self.boxes}
        if self.mask is not None:
            ids |= {int(v) for v in np.unique(self.mask)}
        return sorted(ids)

    def strokes(self) -> list[Scribble]:
        """Scribbles plus the boxes' positive seeds."""
        return list(self.scribbles) + [seed for box in self.boxes for seed in box.seed()]


def strokes_to_clicks(annotation: Annotation, radius: float) -> Annotation:
    """The same annotation with every stroke replaced by a click at its middle point."""
    clicks = tuple(Scribble(s.object_id, s.points[len(s.points) // 2][None, :], radius)
                   for s in annotation.scribbles)
    return Annotation(annotation.frame, clicks, annotation.boxes, annotation.mask)


def make_annotation(frame: int, scribbles: Iterable[Scribble | Box], num_frames: int,
                    width: int, height: int, mask: np.ndarray | None = None) -> Annotation:
    """Validate prompts (scribbles, clicks, boxes, or a full mask) for one frame of a
    ``num_frames`` x ``height`` x ``width`` video."""
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
        raise FrameIndexError(f"frame must be an int, got {frame!r}")
    if not 0 <= int(frame) < num_frames:
        raise FrameIndexError(f"frame {frame} is outside the video: valid frames are 0..{num_frames - 1}")
    items = tuple(scribbles)
    if mask is not None:
        mask = validate_mask(mask, width, height)
    if not items and mask is None:
        raise ScribbleError("no scribbles given: draw at least one stroke on the frame before running a round")
    for item in items:
        if not isinstance(item, (Scribble, Box)):
            raise ScribbleError(f"expected Scribble or Box objects, got {type(item).__name__}")
        item.check_inside(width, height)
    return Annotation(int(frame), tuple(i for i in items if isinstance(i, Scribble)),
                      tuple(i for i in items if isinstance(i, Box)), mask)


def validate_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A read-only (H, W) uint8 copy of an id mask, or ScribbleError saying what is wrong."""
    try:
        array = np.asarray(mask)
    except (TypeError, ValueError) as error:
        raise ScribbleError(f"a mask annotation must be an (H, W) integer array, got {type(mask).__name__}") from error
    if array.shape != (height, width):
        raise ScribbleError(f"a mask annotation must have the frame's shape ({height}, {width}), got {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ScribbleError(f"a mask holds integer object ids, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > MAX_OBJECT_ID):
        raise ScribbleError(f"mask ids must lie in 0..{MAX_OBJECT_ID}")
    result = array.astype(np.uint8).copy()
    result.setflags(write=False)
    return result


def parse_davis(data: Mapping[str, Any], num_frames: int, width: int, height: int) -> Annotation:
    """Read a DAVIS interactive scribble dict (``{"scribbles": [[{"path", "object_id"}, ...], ...]}``).

    Paths are normalised by ``(W, H)``; exactly one frame may carry strokes, since a round
    annotates one frame.
    """
    if not isinstance(data, Mapping) or "scribbles" not in data:
        raise ScribbleError('a DAVIS scribble dict needs a "scribbles" key holding one list per frame')
    per_frame = data["scribbles"]
    if not isinstance(per_frame, Sequence) or isinstance(per_frame, (str, bytes)):
        raise ScribbleError('"scribbles" must be a list with one list of strokes per frame')
    if len(per_frame) != num_frames:
        raise ScribbleError(
            f'"scribbles" has {len(per_frame)} frames but the video has {num_frames}: '
            "the scribble file belongs to another video"
        )
    for index, strokes in enumerate(per_frame):
        if not isinstance(strokes, Sequence) or isinstance(strokes, (str, bytes)):
            raise ScribbleError(f'"scribbles"[{index}] must be a list of strokes (empty for an unannotated frame)')
    frames = [index for index, strokes in enumerate(per_frame) if len(strokes)]
    if not frames:
        raise ScribbleError("the scribble dict has no strokes on any frame")
    if len(frames) > 1:
        raise ScribbleError(
            f"strokes are on frames {frames}; a round annotates one frame: split them into one round per frame"
        )
    frame = frames[0]
    scribbles = [_parse_davis_stroke(stroke, frame, width, height) for stroke in per_frame[frame]]
    return make_annotation(frame, scribbles, num_frames, width, height)


def _parse_davis_stroke(stroke: Any, frame: int, width: int, height: int) -> Scribble:
    if not isinstance(stroke, Mapping) or "path" not in stroke or "object_id" not in stroke:
        raise ScribbleError(f'frame {frame}: each stroke needs "path" and "object_id" keys, got {stroke!r:.80}')
    try:
        path = np.asarray(stroke["path"], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ScribbleError(f"frame {frame}: stroke path is not a list of [x, y] numbers") from error
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] == 0:
        raise ScribbleError(f"frame {frame}: stroke path must be a non-empty list of [x, y] pairs")
    if not np.all(np.isfinite(path)) or path.min() < 0.0 or path.max() > 1.0:
        raise ScribbleError(
            f"frame {frame}: stroke coordinates must be normalised to [0, 1] by the frame's width and height"
        )
    object_id = stroke["object_id"]
    if isinstance(object_id, float) and object_id.is_integer():
        object_id = int(object_id)
    radius = stroke.get("radius")
    return Scribble(object_id, path * np.array([width, height], dtype=np.float64),
                    None if radius is None else _number(radius, f"frame {frame}: stroke radius") * max(width, height))


def to_davis(annotations: Iterable[Annotation], num_frames: int, width: int, height: int) -> dict[str, Any]:
    """Write annotations as one DAVIS interactive dict (normalised paths, one list per frame).

    A click's radius is kept under the extra key ``"radius"`` normalised by ``max(W, H)``.
    """
    per_frame: list[list[dict[str, Any]]] = [[] for _ in range(num_frames)]
    scale = np.array([width, height], dtype=np.float64)
    for annotation in annotations:
        for scribble in annotation.scribbles:
            stroke: dict[str, Any] = {
                "path": (scribble.points / scale).tolist(),
                "object_id": scribble.object_id,
            }
            if scribble.radius is not None:
                stroke["radius"] = scribble.radius / max(width, height)
            per_frame[annotation.frame].append(stroke)
    return {"scribbles": per_frame, "annotated_frames": sorted({a.frame for a in annotations})}


def rasterize(scribbles: Sequence[Scribble], frame_size: tuple[int, int], grid_size: tuple[int, int],
              min_thickness: int = 1) -> np.ndarray:
    """Draw scribbles onto a label grid.

    Args:
        scribbles: strokes in original-frame pixels.
        frame_size: ``(H, W)`` of the original frame the points refer to.
        grid_size: ``(h, w)`` of the output grid (any resolution).
        min_thickness: line thickness in grid pixels for strokes without a radius.

    Returns:
        (h, w) int16 array: the stroke's object id where drawn, ``UNLABELLED`` (-1) elsewhere.
        Later strokes overwrite earlier ones where they cross.
    """
    height, width = frame_size
    grid_h, grid_w = grid_size
    labels = np.full((grid_h, grid_w), UNLABELLED, dtype=np.int16)
    scale = np.array([grid_w / width, grid_h / height], dtype=np.float64)
    for scribble in scribbles:
        # Pixel centres: original pixel x covers [x, x+1) and maps to grid x*scale - 0.5.
        points = scribble.points * scale - 0.5
        points = np.clip(points, 0, [grid_w - 1, grid_h - 1])
        shift = 4  # cv2 sub-pixel precision bits
        fixed = np.round(points * (1 << shift)).astype(np.int32)
        value = int(scribble.object_id)
        if scribble.radius is not None:
            # A disc wider than the grid's half-perimeter covers it all; larger ones overflow OpenCV.
            radius = max(1, round(min(scribble.radius * float(scale.mean()), float(grid_h + grid_w))))
            thickness = 2 * radius + 1
        else:
            radius, thickness = max(0, min_thickness // 2), max(1, min_thickness)
        canvas = labels.astype(np.int32)
        if fixed.shape[0] == 1 or np.all(fixed == fixed[0]):
            cv2.circle(canvas, tuple(int(v) for v in fixed[0]), radius << shift, value, -1,
                       lineType=cv2.LINE_8, shift=shift)
        else:
            cv2.polylines(canvas, [fixed.reshape(-1, 1, 2)], False, value, thickness,
                          lineType=cv2.LINE_8, shift=shift)
        labels = canvas.astype(np.int16)
    return labels


def first_round_background(labels: np.ndarray, margin: int) -> np.ndarray:
    """Fig. 6 of the paper: everything outside the enlarged bounding box of the object strokes.

    Args:
        labels: (h, w) int16 grid from :func:`rasterize` at embedding resolution.
        margin: how far to enlarge the box, in grid pixels (the paper: 20 at stride 4).

    Returns:
        (h, w) bool, True where a pixel lies outside the enlarged ROI. All False when no object
        (id > 0) stroke is present.
    """
    ys, xs = np.nonzero(labels > 0)
    outside = np.ones(labels.shape, dtype=bool)
    if ys.size == 0:
        return np.zeros(labels.shape, dtype=bool)
    top, bottom = max(0, ys.min() - margin), min(labels.shape[0], ys.max() + margin + 1)
    left, right = max(0, xs.min() - margin), min(labels.shape[1], xs.max() + margin + 1)
    outside[top:bottom, left:right] = False
    return outside
