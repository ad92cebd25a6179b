"""Write object-id masks to disk: indexed PNGs, COCO JSON, an overlay video, npz.

Input masks are ``(T, H, W)`` uint8 object ids, 0 = background (bool and other integer arrays
with values in 0..255 are converted). Every writer first writes a hidden temporary file (or
folder) next to the target and then renames it into place, so an interrupted export leaves any
previous file untouched and no partial file behind.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, SupportsIndex

import cv2
import numpy as np
from PIL import Image

from manet.errors import VideoError
from manet.io import rle
from manet.io.video import VideoLike, VideoSource

Progress = Callable[[int, int], None]
ColourSpec = np.ndarray | Mapping[int, tuple[int, int, int]] | None
DEFAULT_FPS = 25.0
_FRAME_PNG = re.compile(r"^\d+\.png$")


class FrameSource(Protocol):
    """Anything that serves RGB frames like a :class:`VideoSource` (e.g. a ``manet.Session``)."""

    @property
    def num_frames(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def width(self) -> int: ...

    def frame(self, t: SupportsIndex) -> np.ndarray: ...


def davis_palette(num_colours: int = 256) -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map: ``(num_colours, 3)`` uint8 RGB, id 0 black, 1 dark red, ...

    Bits 0, 1, 2 of an id go to the most significant bit of R, G, B; bits 3, 4, 5 to the next
    bit, and so on, which keeps small ids far apart in colour.
    """
    ids = np.arange(num_colours, dtype=np.int64)
    palette = np.zeros((num_colours, 3), dtype=np.int64)
    for level in range(8):
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * level + channel)) & 1) << (7 - level)
    return palette.astype(np.uint8)


def as_id_masks(masks: Any) -> np.ndarray:
    """Check and convert ``masks`` to a ``(T, H, W)`` uint8 id array (no copy when already uint8)."""
    array = np.asarray(masks)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise VideoError(f"masks are {array.dtype}; pass integer object ids (0 = background): "
                         "for probabilities use (probs > 0.5).astype(np.uint8)")
    if array.ndim == 2:
        raise VideoError(f"got one mask {array.shape}; pass a (T, H, W) stack: masks[None] for a single frame")
    if array.ndim != 3 or 0 in array.shape:
        raise VideoError(f"masks must have shape (T, H, W) with T, H, W >= 1, got {array.shape}")
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise VideoError(f"mask ids must be in 0..255, got {array.min()}..{array.max()}")
        array = array.astype(np.uint8)
    return array


def object_ids_of(masks: np.ndarray) -> list[int]:
    """Sorted nonzero ids present in ``masks``."""
    present = np.flatnonzero(np.bincount(masks.ravel(), minlength=256))
    return [int(k) for k in present if k != 0]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else delete it.

    The temporary name keeps the suffix (video writers choose the container from it). The
    caller creates the file at the yielded path. Parent folders are created.
    """
    target = Path(path)
    with _temporary_sibling(target) as temporary:
        yield temporary
        os.replace(temporary, target)


@contextmanager
def _temporary_sibling(target: Path) -> Iterator[Path]:
    """A fresh hidden name in ``target``'s folder, deleted (file or folder) if the block raises."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.partial{target.suffix}")
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise


def export_png_folder(masks: Any, folder: str | os.PathLike[str], palette: np.ndarray | None = None,
                      progress: Progress | None = None) -> Path:
    """Write ``folder/00000.png, 00001.png, ...``: indexed PNGs whose pixel values are the ids.

    ``palette`` is ``(N <= 256, 3)`` uint8 RGB (default :func:`davis_palette`). An existing
    ``folder`` is replaced as a whole, but only if it holds nothing except numbered PNGs.
    ``progress(done, total)`` is called after each frame. Returns the folder path.
    """
    array = as_id_masks(masks)
    palette_bytes = _full_palette(palette).tobytes()
    target = Path(folder)
    _check_replaceable_folder(target)
    with _temporary_sibling(target) as temporary:
        temporary.mkdir()
        for t, mask in enumerate(array):
            image = Image.fromarray(np.ascontiguousarray(mask))
            image.putpalette(palette_bytes)
            image.save(temporary / f"{t:05d}.png")
            if progress is not None:
                progress(t + 1, len(array))
        _swap_folder(temporary, target)
    return target


def export_coco(masks: Any, path: str | os.PathLike[str], object_names: Mapping[int, str] | None = None,
                video_name: str = "video", progress: Progress | None = None) -> Path:
    """Write a COCO-style JSON: one image per frame, one RLE annotation per (frame, present object).

    Images carry ``frame_index``; annotations carry ``object_id`` (= ``category_id``) and a
    compressed RLE ``segmentation`` that ``pycocotools.mask.decode`` reads. Categories list every
    object id present or named in ``object_names``. Returns the file path.
    """
    array = as_id_masks(masks)
    frames, height, width = array.shape
    names = _names(object_ids_of(array), object_names)
    annotations: list[dict[str, Any]] = []
    for t, mask in enumerate(array):
        for object_id in object_ids_of(mask[None]):
            annotations.append(_annotation(len(annotations) + 1, t, object_id, mask == object_id))
        if progress is not None:
            progress(t + 1, frames)
    document = {
        "info": {"description": f"object masks of {video_name}", "format": "manet-coco-1"},
        "videos": [{"id": 1, "name": video_name, "length": frames, "height": height, "width": width}],
        "images": [{"id": t + 1, "video_id": 1, "frame_index": t, "file_name": f"{video_name}/{t:05d}.jpg",
                    "height": height, "width": width} for t in range(frames)],
        "categories": [{"id": k, "name": name} for k, name in names.items()],
        "annotations": annotations,
    }
    with atomic_path(path) as temporary, open(temporary, "x", encoding="utf-8") as file:
        json.dump(document, file)
    return Path(path)


def export_npz(masks: Any, path: str | os.PathLike[str], object_ids: list[int] | None = None,
               names: Mapping[int, str] | None = None) -> Path:
    """Write ``masks`` (T, H, W) uint8, ``object_ids`` int64, ``names`` str (one per id) to an npz.

    ``object_ids`` defaults to the ids present. Read it back with
    :func:`manet.io.masks.load_npz_masks` / ``np.load(path)``. Returns the file path.
    """
    array = as_id_masks(masks)
    ids = object_ids_of(array) if object_ids is None else sorted({int(k) for k in object_ids})
    if any(not 1 <= k <= 255 for k in ids):
        raise VideoError(f"object ids must be in 1..255, got {ids}")
    labels = _names(ids, names)
    with atomic_path(path) as temporary, open(temporary, "xb") as file:
        np.savez_compressed(file, masks=array, object_ids=np.asarray(ids, dtype=np.int64),
                            names=np.asarray([labels[k] for k in ids], dtype=str),
                            format_version=np.asarray(1, dtype=np.int64))
    return Path(path)


def overlay_frame(frame: np.ndarray, mask: np.ndarray, colours: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blend ``colours[id]`` ((256, 3) uint8) over ``frame`` (H, W, 3) uint8 where ``mask`` (H, W) > 0."""
    out = np.array(frame, dtype=np.uint8, copy=True)
    inside = mask > 0
    tint = colours[mask[inside]].astype(np.float32)
    out[inside] = np.rint(out[inside] * (1.0 - opacity) + tint * opacity).astype(np.uint8)
    return out


def export_overlay_video(masks: Any, frames_source: VideoLike | FrameSource, path: str | os.PathLike[str],
                         fps: float | None = None, opacity: float = 0.5, colours: ColourSpec = None,
                         progress: Progress | None = None, fourcc: str = "mp4v") -> Path:
    """Write the video with masks blended over it (``opacity`` in [0, 1]) via ``cv2.VideoWriter``.

    ``frames_source`` is anything :meth:`VideoSource.open` accepts, or an object with
    ``num_frames``, ``height``, ``width`` and ``frame(t)`` such as a session. ``fps`` defaults to
    the source's frame rate, else 25. ``colours`` maps ids to RGB (a mapping or an (N, 3) uint8
    array; default :func:`davis_palette`). Returns the file path.
    """
    array = as_id_masks(masks)
    video = _frame_source(frames_source)
    if array.shape != (video.num_frames, video.height, video.width):
        raise VideoError(f"masks are {array.shape} but the video is {(video.num_frames, video.height, video.width)} "
                         "(T, H, W): export masks of this video at its original size")
    if not 0.0 <= opacity <= 1.0:
        raise VideoError(f"opacity must be in [0, 1], got {opacity}")
    rate = fps if fps is not None else (_source_fps(video) or DEFAULT_FPS)
    if not rate > 0:
        raise VideoError(f"fps must be positive, got {rate}")
    palette = _colour_table(colours)
    with atomic_path(path) as temporary:
        writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter.fourcc(*fourcc), float(rate),
                                 (video.width, video.height))
        try:
            if not writer.isOpened():
                raise VideoError(f"OpenCV cannot write {Path(path).name} with codec {fourcc!r}: "
                                 "use a .mp4 or .avi file name, or another fourcc")
            for t, mask in enumerate(array):
                blended = overlay_frame(video.frame(t), mask, palette, opacity)
                writer.write(cv2.cvtColor(blended, cv2.COLOR_RGB2BGR))
                if progress is not None:
                    progress(t + 1, len(array))
        finally:
            writer.release()
    return Path(path)


def _frame_source(source: VideoLike | FrameSource) -> FrameSource:
    """``source`` itself if it serves frames, its ``.video`` if that is a VideoSource, else opened."""
    if isinstance(source, (VideoSource, np.ndarray, str, os.PathLike)):
        return VideoSource.open(source)
    inner = getattr(source, "video", None)
    if isinstance(inner, VideoSource):
        return inner
    if all(hasattr(source, name) for name in ("num_frames", "height", "width", "frame")):
        return source
    raise VideoError(f"cannot take frames from a {type(source).__name__}: pass the session, a VideoSource, "
                     "a video path or a (T, H, W, 3) uint8 array")


def _source_fps(source: FrameSource) -> float | None:
    fps = getattr(source, "fps", None)
    return float(fps) if isinstance(fps, (int, float)) and fps > 0 else None


def _annotation(annotation_id: int, t: int, object_id: int, binary: np.ndarray) -> dict[str, Any]:
    rows = np.flatnonzero(binary.any(axis=1))
    columns = np.flatnonzero(binary.any(axis=0))
    x, y = int(columns[0]), int(rows[0])
    return {"id": annotation_id, "image_id": t + 1, "frame_index": t, "category_id": object_id,
            "object_id": object_id, "segmentation": rle.encode(binary), "area": int(binary.sum()),
            "bbox": [x, y, int(columns[-1]) - x + 1, int(rows[-1]) - y + 1], "iscrowd": 0}


def _names(ids: list[int], names: Mapping[int, str] | None) -> dict[int, str]:
    given = {int(k): str(v) for k, v in (names or {}).items()}
    return {k: given.get(k, f"object {k}") for k in sorted(set(ids) | set(given))}


def _full_palette(palette: np.ndarray | None) -> np.ndarray:
    """A (256, 3) uint8 palette: ``palette`` padded with black, or the DAVIS palette."""
    if palette is None:
        return davis_palette()
    array = np.asarray(palette)
    if array.ndim != 2 or array.shape[1] != 3 or not 1 <= array.shape[0] <= 256:
        raise VideoError(f"palette must be (N, 3) RGB with 1 <= N <= 256, got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() > 255:
        raise VideoError("palette values must be integers in 0..255")
    full = np.zeros((256, 3), dtype=np.uint8)
    full[: len(array)] = array
    return full


def _colour_table(colours: ColourSpec) -> np.ndarray:
    if isinstance(colours, Mapping):
        table = davis_palette()
        for object_id, rgb in colours.items():
            if not 0 <= int(object_id) <= 255 or len(rgb) != 3:
                raise VideoError(f"colours must map ids 0..255 to (r, g, b), got {object_id}: {rgb}")
            table[int(object_id)] = np.clip(np.asarray(rgb), 0, 255)
        return table
    return _full_palette(colours)


def _check_replaceable_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder: choose another output path")
    if folder.is_dir():
        others = [entry.name for entry in folder.iterdir() if not _FRAME_PNG.match(entry.name)]
        if others:
            raise FileExistsError(f"{folder} holds files other than exported frames (e.g. {others[0]!r}); "
                                  "export into a new or empty folder")


def _swap_folder(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target``; a previous ``target`` is removed only once ``new`` is in place."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
