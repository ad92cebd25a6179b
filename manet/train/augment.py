"""Augmentation and mask perturbation for training, in plain numpy/cv2.

Every random choice is drawn from an explicit ``np.random.Generator`` so a sample is a pure
function of its seed. Geometry is expressed as 2x3 affine matrices that map source pixel
coordinates to crop coordinates, so scale, flip, crop and padding cost one ``cv2.warpAffine``.

Conventions: crop sizes are ``(height, width)``; boxes are ``(x0, y0, x1, y1)`` with exclusive
``x1, y1``; id masks are uint8 with 0 = background and 1..n = objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the geometric, photometric and compositing augmentation.

    ``brightness``/``contrast``/``saturation`` = b draws a factor in [1 - b, 1 + b].
    ``min_object_pixels``: an object with fewer pixels than this in the reference frame of a
    sample is dropped (relabelled background: with no reference it cannot be tracked).
    ``paste_size_range``: longest side of a pasted object as a fraction of the crop's shorter
    side. ``max_paste_speed``: drift of a pasted object, crop pixels per frame of time offset.
    """

    scale_range: tuple[float, float] = (0.8, 1.25)
    flip_probability: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    min_object_pixels: int = 64
    paste_size_range: tuple[float, float] = (0.25, 0.7)
    max_paste_speed: float = 4.0

    @classmethod
    def none(cls) -> AugmentConfig:
        """No flip, no scaling, no colour change (crop choice and compositing still apply)."""
        return cls(scale_range=(1.0, 1.0), flip_probability=0.0, brightness=0.0, contrast=0.0,
                   saturation=0.0)


@dataclass(frozen=True)
class PerturbConfig:
    """How a ground-truth mask is damaged to look like a previous prediction.

    Per object, each step fires with its probability: dilation or erosion by up to
    ``max_morph_radius`` px, a shift of up to ``max_shift`` px (both also at most
    ``size_relative_limit`` times the square root of the object's area, so small objects are
    not wiped out), a dropped blob (hole), an added blob (false positive next to the object).
    Blob radii are ``blob_size_range`` times the square root of the object's area. With
    ``swap_probability`` one object's pixels (all or a blob) take another object's id.
    """

    size_relative_limit: float = 0.12
    morph_probability: float = 0.6
    max_morph_radius: int = 6
    shift_probability: float = 0.5
    max_shift: int = 6
    drop_blob_probability: float = 0.3
    add_blob_probability: float = 0.3
    blob_size_range: tuple[float, float] = (0.1, 0.35)
    swap_probability: float = 0.1


# ---------------------------------------------------------------- geometry

def crop_transform(scale: float, flip: bool, origin: tuple[float, float],
                   source_width: int) -> npt.NDArray[np.float64]:
    """Affine map source pixel -> crop pixel: scale, optional horizontal flip, then crop.

    ``origin`` is the crop's top-left corner in the scaled (and flipped) frame; negative or
    overhanging origins pad.
    """
    ox, oy = origin
    if flip:
        row_x = [-scale, 0.0, scale * (source_width - 1) - ox]
    else:
        row_x = [scale, 0.0, -ox]
    return np.array([row_x, [0.0, scale, -oy]], dtype=np.float64)


def object_transform(scale: float, flip: bool, anchor: tuple[float, float],
                     position: tuple[float, float]) -> npt.NDArray[np.float64]:
    """Affine map that scales (and flips) about source point ``anchor`` and puts it at ``position``."""
    ax, ay = anchor
    px, py = position
    sx = -scale if flip else scale
    return np.array([[sx, 0.0, px - sx * ax], [0.0, scale, py - scale * ay]], dtype=np.float64)


def transform_box(matrix: npt.NDArray[np.float64], box: Box) -> Box:
    """Bounding box of ``box``'s corners under a scale/flip/translate ``matrix``."""
    x0, y0, x1, y1 = box
    xs = (matrix[0, 0] * x0 + matrix[0, 2], matrix[0, 0] * x1 + matrix[0, 2])
    ys = (matrix[1, 1] * y0 + matrix[1, 2], matrix[1, 1] * y1 + matrix[1, 2])
    return (min(xs), min(ys), max(xs), max(ys))


def warp_image(image: UInt8Array, matrix: npt.NDArray[np.float64], crop_size: tuple[int, int],
               replicate_border: bool = False) -> UInt8Array:
    """(H,W,3) uint8 -> (h,w,3) uint8 by bilinear sampling; outside the source is 0 (or replicated)."""
    border = cv2.BORDER_REPLICATE if replicate_border else cv2.BORDER_CONSTANT
    out = cv2.warpAffine(image, matrix, (crop_size[1], crop_size[0]), flags=cv2.INTER_LINEAR,
                         borderMode=border, borderValue=(0, 0, 0))
    return np.asarray(out, dtype=np.uint8)


def warp_mask(mask: UInt8Array, matrix: npt.NDArray[np.float64],
              crop_size: tuple[int, int]) -> UInt8Array:
    """(H,W) uint8 ids -> (h,w) uint8 ids by nearest sampling; outside the source is 0."""
    out = cv2.warpAffine(mask, matrix, (crop_size[1], crop_size[0]), flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.asarray(out, dtype=np.uint8)


def mask_box(mask: npt.NDArray[np.bool_]) -> Box | None:
    """Bounding box of the True pixels, or None when there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """Smallest box holding both (None counts as empty)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def crop_target(anchor: Box | None, reference: Box | None, crop_size: tuple[int, int],
                margin: float = 4.0) -> Box | None:
    """The box a crop should contain: the anchor frame's objects, with the reference frame's
    too and a ``margin`` of context when they fit (first fitting of: both + margin, both,
    anchor + margin; else the anchor box, which the crop then shows most of)."""
    def padded(box: Box | None) -> Box | None:
        return None if box is None else (box[0] - margin, box[1] - margin, box[2] + margin,
                                         box[3] + margin)

    def fits(box: Box | None) -> bool:
        return box is not None and box[2] - box[0] <= crop_size[1] and box[3] - box[1] <= crop_size[0]

    both = union_box(anchor, reference)
    return next((b for b in (padded(both), both, padded(anchor)) if fits(b)), anchor)


def _choose_axis_origin(length: float, crop: int, lo: float | None, hi: float | None,
                        rng: np.random.Generator) -> float:
    """Crop start on one axis: inside the padded range, holding [lo, hi) when it fits."""
    first, last = min(0.0, length - crop), max(0.0, length - crop)
    if lo is not None and hi is not None and min(hi, length) > max(lo, 0.0):
        lo, hi = max(lo, 0.0), min(hi, length)  # only the part inside the frame can be shown
        # Contain [lo, hi) if it fits in the crop, else stay inside it (show most of it).
        want = (hi - crop, lo) if hi - lo <= crop else (lo, hi - crop)
        a, b = max(first, want[0]), min(last, want[1])
        if a > b:  # rounding at the frame's edge: take the feasible start nearest the wish
            a = b = first if want[1] < first else last
        first, last = a, b
    return float(rng.uniform(first, last)) if last > first else first


def choose_crop_origin(scaled_size: tuple[float, float], crop_size: tuple[int, int],
                       target: Box | None, rng: np.random.Generator) -> tuple[float, float]:
    """Top-left corner (x, y) of a crop in a frame of ``scaled_size`` (w, h).

    The crop contains the part of ``target`` (a box in scaled coordinates) inside the frame
    when it fits, else lies inside it; with no target the corner is uniform. A frame smaller
    than the crop is padded at a random split (the corner goes negative).
    """
    width, height = scaled_size
    x_lo, y_lo, x_hi, y_hi = target if target is not None else (None, None, None, None)
    ox = _choose_axis_origin(width, crop_size[1], x_lo, x_hi, rng)
    oy = _choose_axis_origin(height, crop_size[0], y_lo, y_hi, rng)
    return (ox, oy)


# ---------------------------------------------------------------- photometric and pasting

_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def color_jitter(images: FloatArray, rng: np.random.Generator, config: AugmentConfig) -> FloatArray:
    """(N,H,W,3) float32 RGB in [0,255] -> same shape in [0,1], one jitter for all N frames.

    With factors b, c, s drawn once and shared by the frames, and grey(x) = w.x (Rec. 601):
    brightness x1 = b x; contrast x2 = c x1 + (1 - c) mean(grey(x1)) over the frame;
    saturation x3 = s x2 + (1 - s) grey(x2); then clipped to [0,1]. The chain is affine per
    frame, so it runs as one ``cv2.transform``.
    """
    def factor(amount: float) -> float:
        return float(rng.uniform(1.0 - amount, 1.0 + amount)) if amount > 0 else 1.0

    brightness, contrast, saturation = (factor(config.brightness), factor(config.contrast),
                                        factor(config.saturation))
    mix = saturation * np.eye(3) + (1.0 - saturation) * np.outer(np.ones(3), _GREY_WEIGHTS)
    out = np.empty_like(images)
    for index, image in enumerate(images):
        # mix maps a grey vector to itself (weights sum to 1), so the mean term passes unchanged.
        mean_grey = brightness * float(np.dot(cv2.mean(image)[:3], _GREY_WEIGHTS))
        matrix = np.empty((3, 4), dtype=np.float64)
        matrix[:, :3] = contrast * brightness * mix / 255.0
        matrix[:, 3] = (1.0 - contrast) * mean_grey / 255.0
        out[index] = cv2.transform(image, matrix)
    return np.clip(out, 0.0, 1.0, out=out)


def paste_layer(image: FloatArray, ids: UInt8Array, layer_image: UInt8Array,
                layer_mask: BoolArray, new_id: int) -> None:
    """Paint a pasted object onto one frame, in place: ``image`` (H,W,3) float32 in [0,255],
    ``ids`` (H,W) uint8, ``layer_image`` (H,W,3) uint8, ``layer_mask`` (H,W) bool.

    Inside ``layer_mask`` the image becomes exactly ``layer_image`` and the id ``new_id``
    (occluding what was there); a 2-pixel feather just outside softens the seam so the edge
    is no give-away.
    """
    box = mask_box(layer_mask)
    if box is None:
        return
    height, width = layer_mask.shape
    x0, y0 = max(int(box[0]) - 3, 0), max(int(box[1]) - 3, 0)
    x1, y1 = min(int(box[2]) + 3, width), min(int(box[3]) + 3, height)
    region = layer_mask[y0:y1, x0:x1]
    solid = region.astype(np.float32)
    alpha = np.maximum(cv2.GaussianBlur(solid, (5, 5), 0), solid)[..., None]
    target = image[y0:y1, x0:x1]
    target += alpha * (layer_image[y0:y1, x0:x1].astype(np.float32) - target)
    ids[y0:y1, x0:x1][region] = new_id


def donor_frames(offsets: list[int], num_frames: int, rng: np.random.Generator) -> list[int]:
    """Frames of a donor sequence at the given time offsets from a random base frame.

    Offsets are kept when the donor is long enough, else squeezed proportionally into it.
    """
    scaled = np.array(offsets, dtype=np.float64)
    span = float(scaled.max() - scaled.min())
    if span > num_frames - 1:
        scaled = np.round(scaled * (num_frames - 1) / span)
    low, high = int(-scaled.min()), int(num_frames - 1 - scaled.max())
    base = int(rng.integers(low, high + 1))
    return [int(base + o) for o in scaled]


def paste_transforms(box: Box, offsets: list[int], crop_size: tuple[int, int],
                     rng: np.random.Generator, config: AugmentConfig) -> list[npt.NDArray[np.float64]]:
    """Per frame, the donor -> crop map of a pasted object whose bounding box is ``box``.

    The object is scaled about its box centre so its longest side is ``paste_size_range`` of
    the crop's shorter side, maybe flipped, placed at a random point of the crop at offset 0
    and drifted linearly with the time offset (at most half the crop over the clip).
    """
    crop_h, crop_w = crop_size
    side = min(crop_h, crop_w)
    longest = max(box[2] - box[0], box[3] - box[1])
    scale = float(np.clip(rng.uniform(*config.paste_size_range) * side / longest, 0.2, 2.0))
    flip = bool(rng.random() < 0.5)
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    px, py = rng.uniform(0.15, 0.85) * crop_w, rng.uniform(0.15, 0.85) * crop_h
    longest_offset = max(1, max(abs(o) for o in offsets))
    speed = min(rng.uniform(0.0, config.max_paste_speed), 0.5 * side / longest_offset)
    angle = rng.uniform(0.0, 2 * np.pi)
    vx, vy = speed * np.cos(angle), speed * np.sin(angle)
    return [object_transform(scale, flip, centre, (px + vx * o, py + vy * o)) for o in offsets]


# ---------------------------------------------------------------- mask perturbation

@lru_cache(maxsize=32)
def _disk(radius: int) -> UInt8Array:
    size = 2 * radius + 1
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), dtype=np.uint8)


def _random_pixel(mask: BoolArray, rng: np.random.Generator) -> tuple[int, int]:
    flat = np.flatnonzero(mask)
    y, x = divmod(int(flat[rng.integers(flat.size)]), mask.shape[1])
    return x, y


def _ellipse(shape: tuple[int, int], center: tuple[int, int], radius: float,
             rng: np.random.Generator) -> BoolArray:
    canvas = np.zeros(shape, dtype=np.uint8)
    axes = (max(1, round(radius * rng.uniform(0.6, 1.4))), max(1, round(radius * rng.uniform(0.6, 1.4))))
    cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    return canvas.astype(bool)


def _shifted(mask: BoolArray, dx: int, dy: int) -> BoolArray:
    out = np.zeros_like(mask)
    height, width = mask.shape
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        mask[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def _damage_object(obj: BoolArray, rng: np.random.Generator, config: PerturbConfig) -> BoolArray:
    """One object's mask after random morphology, shift, a hole and a false-positive blob."""
    size = float(np.sqrt(obj.sum())) * config.size_relative_limit
    if rng.random() < config.morph_probability:
        largest = max(1, min(config.max_morph_radius, round(size)))
        op = cv2.dilate if rng.random() < 0.5 else cv2.erode
        obj = op(obj.astype(np.uint8), _disk(int(rng.integers(1, largest + 1)))).astype(bool)
    if rng.random() < config.shift_probability:
        shift = max(1, min(config.max_shift, round(size)))
        dx, dy = rng.integers(-shift, shift + 1, size=2)
        obj = _shifted(obj, int(dx), int(dy))
    area = int(obj.sum())
    if area == 0:
        return obj
    blob = max(2.0, float(np.sqrt(area)) * float(rng.uniform(*config.blob_size_range)))
    if rng.random() < config.drop_blob_probability:
        obj = obj & ~_ellipse(obj.shape, _random_pixel(obj, rng), blob, rng)
    if rng.random() < config.add_blob_probability and obj.any():
        x, y = _random_pixel(obj, rng)
        angle = rng.uniform(0, 2 * np.pi)
        center = (int(x + blob * np.cos(angle)), int(y + blob * np.sin(angle)))
        obj = obj | _ellipse(obj.shape, center, blob, rng)
    return obj


def _swap_objects(ids: UInt8Array, num_objects: int, rng: np.random.Generator) -> None:
    """Give a blob of one object (or all of it) another object's id, in place."""
    a, b = (int(v) + 1 for v in rng.choice(num_objects, size=2, replace=False))
    source = ids == a
    if not source.any():
        return
    if rng.random() < 0.5:
        area = float(source.sum())
        blob = _ellipse(ids.shape, _random_pixel(source, rng), max(3.0, 0.4 * np.sqrt(area)), rng)
        source &= blob
    ids[source] = b


def perturb_mask(ids: UInt8Array, num_objects: int, rng: np.random.Generator,
                 config: PerturbConfig | None = None) -> UInt8Array:
    """A damaged copy of an (H,W) uint8 id mask (0..num_objects) that simulates a prediction.

    Objects are damaged independently and repainted in random order (so dilated objects may
    overlap each other), then occasionally two objects swap a region. The result differs from
    ``ids`` whenever some object has pixels; an object may vanish (eroded away).
    """
    config = config or PerturbConfig()
    layers = [_damage_object(ids == k, rng, config) for k in range(1, num_objects + 1)]
    out = np.zeros_like(ids)
    for index in rng.permutation(num_objects):
        out[layers[index]] = index + 1
    if num_objects >= 2 and rng.random() < config.swap_probability:
        _swap_objects(out, num_objects, rng)
    if np.array_equal(out, ids) and num_objects > 0:
        present = [k for k in range(1, num_objects + 1) if (ids == k).any()]
        if present:
            k = present[int(rng.integers(len(present)))]
            out[cv2.dilate((ids == k).astype(np.uint8), _disk(2)).astype(bool)] = k
    return out
