"""Read object-id masks: PNG images (palette, greyscale or DAVIS-palette RGB), npz and COCO JSON exports.

PNG masks follow the one rule set of :mod:`manet.io.davis`, which datasets are read with too.

Every loader returns uint8 ids, 0 = background: ``(H, W)`` for one frame, ``(T, H, W)`` for a video.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from manet.errors import VideoError
from manet.io import davis, rle
from manet.io.export import as_id_masks
from manet.io.video import natural_sort_key

PathLike = str | os.PathLike[str]


def load_mask_image(path: PathLike) -> np.ndarray:
    """One mask image as (H, W) uint8 ids, by the rules of :func:`manet.io.davis.read_mask`.

    Palette PNGs give their indices; greyscale images their values (a mask of only 0 and 255 reads
    as 0/1); RGB images are mapped back through the DAVIS palette (an error names any colour that
    is not in it).
    """
    return davis.read_mask(path)


def load_png_masks(folder_or_files: PathLike | Sequence[PathLike]) -> np.ndarray:
    """(T, H, W) uint8 ids from a folder of PNGs (natural order) or a list of image paths."""
    if isinstance(folder_or_files, (str, os.PathLike)):
        return davis.read_masks(davis.mask_files(folder_or_files))
    return davis.read_masks(folder_or_files)


def load_npz_masks(path: PathLike) -> np.ndarray:
    """(T, H, W) uint8 ids from an npz written by :func:`~manet.io.export.export_npz` (key ``masks``),
    or from any npz holding exactly one array."""
    with _open_npz(path) as archive:
        if "masks" in archive.files:
            return as_id_masks(archive["masks"])
        if len(archive.files) == 1:
            return as_id_masks(archive[archive.files[0]])
        raise VideoError(f"{path} has no 'masks' array (it has {', '.join(archive.files)})")


def load_npz_names(path: PathLike) -> dict[int, str]:
    """Object id -> name stored by :func:`~manet.io.export.export_npz` (empty if absent)."""
    with _open_npz(path) as archive:
        if "object_ids" not in archive.files or "names" not in archive.files:
            return {}
        return {int(k): str(name) for k, name in zip(archive["object_ids"], archive["names"])}


def load_coco(path: PathLike) -> np.ndarray:
    """(T, H, W) uint8 ids from a COCO JSON with one image per frame.

    Frames are ordered by the images' ``frame_index`` if present, else by ``file_name`` in
    natural order. A pixel covered by several annotations takes the last one's id, which is
    ``object_id`` if present, else ``category_id``. Segmentations may be RLE or polygons.
    """
    document = _read_json(path)
    images = sorted(document.get("images", []), key=_image_order)
    if not images:
        raise VideoError(f"{path} lists no images; pass a COCO file with one image per frame")
    height, width = int(images[0]["height"]), int(images[0]["width"])
    if any((int(image["height"]), int(image["width"])) != (height, width) for image in images):
        raise VideoError(f"images in {path} differ in size; a video needs one frame size")
    frame_of = {image["id"]: t for t, image in enumerate(images)}
    masks = np.zeros((len(images), height, width), dtype=np.uint8)
    for annotation in document.get("annotations", []):
        if annotation.get("image_id") not in frame_of:
            raise VideoError(f"annotation {annotation.get('id')} refers to unknown image {annotation.get('image_id')}")
        object_id = int(annotation.get("object_id", annotation.get("category_id", 0)))
        if not 1 <= object_id <= 255:
            raise VideoError(f"annotation {annotation.get('id')} has object id {object_id}; ids must be 1..255")
        binary = _segmentation_mask(annotation.get("segmentation"), height, width)
        masks[frame_of[annotation["image_id"]]][binary != 0] = object_id
    return masks


def _open_npz(path: PathLike) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise VideoError(f"cannot read npz {path} ({error})") from None


def _read_json(path: PathLike) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise VideoError(f"cannot read COCO JSON {path} ({error})") from None
    if not isinstance(document, dict):
        raise VideoError(f"{path} is not a COCO JSON object")
    return document


def _image_order(image: dict[str, Any]) -> tuple[Any, ...]:
    if "frame_index" in image:
        return (0, int(image["frame_index"]))
    return (1, natural_sort_key(str(image.get("file_name", ""))), image.get("id", 0))


def _segmentation_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        if size is not None and [int(s) for s in size] != [height, width]:
            raise VideoError(f"an RLE of size {size} does not match its image {height}x{width}")
        return rle.decode({"size": [height, width], "counts": segmentation.get("counts")})
    if isinstance(segmentation, list):
        return _polygons_mask(segmentation, height, width)
    raise VideoError("each annotation needs a 'segmentation' (RLE dict or polygon list)")


def _polygons_mask(polygons: list[Any], height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    for polygon in polygons:
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(points) >= 3:
            cv2.fillPoly(mask, [np.rint(points).astype(np.int32)], 1)
    return mask
