"""Read object-id masks: PNG images (indexed or grayscale), npz and COCO JSON exports.

Every loader returns uint8 ids, 0 = background: ``(H, W)`` for one frame, ``(T, H, W)`` for a video.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from manet.errors import VideoError
from manet.io import rle
from manet.io.export import as_id_masks, davis_palette
from manet.io.video import natural_sort_key

PathLike = str | os.PathLike[str]


def load_mask_image(path: PathLike) -> np.ndarray:
    """One mask image as (H, W) uint8 ids.

    Indexed (palette) PNGs give their indices; grayscale images their values; RGB images are
    mapped back through the DAVIS palette (an error names any colour that is not in it).
    """
    try:
        with Image.open(path) as image:
            image.load()
            return _ids_from_image(image, Path(path))
    except (UnidentifiedImageError, OSError) as error:
        raise VideoError(f"cannot read mask image {path} ({error}); pass a PNG of object ids") from None


def load_png_masks(folder_or_files: PathLike | Sequence[PathLike]) -> np.ndarray:
    """(T, H, W) uint8 ids from a folder of PNGs (natural order) or a list of image paths."""
    if isinstance(folder_or_files, (str, os.PathLike)):
        folder = Path(folder_or_files)
        if not folder.is_dir():
            raise VideoError(f"{folder} is not a folder; pass a folder of PNG masks or a list of files")
        files = sorted((entry for entry in folder.iterdir()
                        if entry.suffix.lower() == ".png" and not entry.name.startswith(".")),
                       key=lambda entry: natural_sort_key(entry.name))
        if not files:
            raise VideoError(f"folder {folder} holds no .png mask images")
    else:
        files = [Path(item) for item in folder_or_files]
        if not files:
            raise VideoError("no mask files given")
    first = load_mask_image(files[0])
    masks = np.empty((len(files), *first.shape), dtype=np.uint8)
    masks[0] = first
    for t, path in enumerate(files[1:], start=1):
        mask = load_mask_image(path)
        if mask.shape != first.shape:
            raise VideoError(f"mask {t} ({path.name}) is {mask.shape[1]}x{mask.shape[0]} but mask 0 "
                             f"({files[0].name}) is {first.shape[1]}x{first.shape[0]}: masks must share one size")
        masks[t] = mask
    return masks


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


def _ids_from_image(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode == "P":
        return np.array(image, dtype=np.uint8)
    if image.mode in ("L", "1", "LA"):
        return np.array(image.getchannel(0), dtype=np.uint8)
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.array(image)
        if values.min() < 0 or values.max() > 255:
            raise VideoError(f"mask {path} has ids up to {values.max()}; ids must be 0..255")
        return values.astype(np.uint8)
    if image.mode in ("RGB", "RGBA"):
        return _ids_from_colours(np.array(image.convert("RGB")), path)
    raise VideoError(f"mask {path} has unsupported mode {image.mode}: save masks as indexed or grayscale PNG")


def _ids_from_colours(rgb: np.ndarray, path: Path) -> np.ndarray:
    """Map DAVIS-palette colours back to ids."""
    palette = davis_palette().astype(np.int64)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    pixels = rgb.astype(np.int64)
    codes = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    colours, inverse = np.unique(codes, return_inverse=True)
    ids = np.full(colours.shape, -1, dtype=np.int64)
    lookup = {int(key): index for index, key in enumerate(keys)}
    for position, code in enumerate(colours):
        ids[position] = lookup.get(int(code), -1)
    if (ids < 0).any():
        code = int(colours[np.flatnonzero(ids < 0)[0]])
        raise VideoError(f"mask {path} is an RGB image with colour {(code >> 16, (code >> 8) & 255, code & 255)} "
                         "outside the DAVIS palette; save masks as indexed or grayscale PNG of ids")
    return ids[inverse].reshape(codes.shape).astype(np.uint8)


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
