"""The one reader of DAVIS-layout folders: sequences, split files, frames, masks and scribbles.

Evaluation (:mod:`manet.eval.dataset`), training (:mod:`manet.train.data`) and mask import
(:mod:`manet.io.masks`) all read through this module, so a folder means the same to each.

Layout (DAVIS 2016 and 2017 alike)::

    root/JPEGImages/<seq>/00000.jpg    frames (.jpg, .jpeg, .png, .bmp), natural order
    root/Annotations/<seq>/00000.png   object ids, one PNG per frame with the frame's file stem
    root/Scribbles/<seq>/001.json      optional DAVIS-interactive scribbles (001, 002, ...: one per annotator)
    root/ImageSets/[...]/<split>.txt   optional split files

A sequence is a name with both a ``JPEGImages/<seq>`` and an ``Annotations/<seq>`` folder.

Mask PNGs (:func:`read_mask`) hold ids 0..255, 0 = background:

* palette PNGs (DAVIS 2017, several objects): the palette index is the id;
* greyscale PNGs: the value is the id, except that a mask holding only 0 and 255 (a DAVIS 2016
  binary mask) reads as 0 and 1;
* RGB PNGs drawn in the DAVIS palette: each colour maps back to its id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from manet.errors import ScribbleError, VideoError
from manet.inference.scribbles import Annotation, parse_davis
from manet.io.export import davis_palette
from manet.io.video import IMAGE_EXTENSIONS, natural_sort_key

PathLike = str | os.PathLike[str]
FRAMES, ANNOTATIONS, SCRIBBLES, IMAGE_SETS = "JPEGImages", "Annotations", "Scribbles", "ImageSets"
BINARY_FOREGROUND = 255


@dataclass(frozen=True)
class DavisSequence:
    """The files of one sequence: frame ``t`` pairs with annotation ``t`` (same file stem).

    ``scribbles`` are the sequence's scribble files in natural order (empty when there are none).
    """

    name: str
    frames: tuple[Path, ...]
    annotations: tuple[Path, ...]
    scribbles: tuple[Path, ...] = ()

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def first_scribble(self) -> Path | None:
        """The first annotator's scribble file (``001.json`` in DAVIS), or None."""
        return self.scribbles[0] if self.scribbles else None


def read_split(path: PathLike) -> list[str]:
    """Sequence names from a split file, in file order, each once.

    One name a line; blank lines and ``#`` comments are skipped. A DAVIS 2016 image-set line
    (``/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png``) names the folder
    its first path lies in.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise VideoError(f"cannot read the split file {path} ({error.strerror}): pass a text file with "
                         "one sequence name a line") from None
    names: dict[str, None] = {}  # ordered set
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        first = text.split()[0]
        names[Path(first).parent.name if "/" in first else first] = None
    return list(names)


def find_split(root: PathLike, split: PathLike) -> Path:
    """The split file ``split`` names: a path to a file, or the stem of a file under ``root/ImageSets``.

    Raises:
        VideoError: no such file, or several image sets share that stem.
    """
    if Path(split).is_file():
        return Path(split)
    image_sets = Path(root) / IMAGE_SETS
    found = sorted(image_sets.rglob(f"{Path(split).name}.txt")) if image_sets.is_dir() else []
    if len(found) == 1:
        return found[0]
    if found:
        raise VideoError(f"several split files are called {split!r}: {[str(p) for p in found]}; pass one path")
    known = sorted(p.stem for p in image_sets.rglob("*.txt")) if image_sets.is_dir() else []
    raise VideoError(f"split {str(split)!r} is neither a file nor a split in {image_sets} (found {known}): "
                     "pass a text file with one sequence name a line")


def list_sequences(root: PathLike) -> list[str]:
    """Names of every sequence in ``root`` (both folders present), sorted."""
    root = Path(root)
    images, annotations = root / FRAMES, root / ANNOTATIONS
    if not images.is_dir() or not annotations.is_dir():
        raise VideoError(f"{root} is not a DAVIS-layout folder: it needs {FRAMES}/<seq>/ and {ANNOTATIONS}/<seq>/")
    names = sorted(entry.name for entry in images.iterdir()
                   if entry.is_dir() and not entry.name.startswith(".") and (annotations / entry.name).is_dir())
    if not names:
        raise VideoError(f"{root} has no sequence with both {FRAMES}/<seq> and {ANNOTATIONS}/<seq>")
    return names


def sequence_names(root: PathLike, sequences: Sequence[str] | PathLike | None = None) -> list[str]:
    """Which sequences to use: every one (None), the names given, or those of a split
    (a path or an image-set name, see :func:`find_split`)."""
    if sequences is None:
        return list_sequences(root)
    if isinstance(sequences, (str, os.PathLike)):
        return read_split(find_split(root, sequences))
    return list(sequences)


def index_sequence(root: PathLike, name: str) -> DavisSequence:
    """The files of sequence ``name``.

    Raises:
        VideoError: a folder is missing, the sequence has no frame, or a frame has no annotation.
    """
    root = Path(root)
    frame_dir, mask_dir = root / FRAMES / name, root / ANNOTATIONS / name
    if not frame_dir.is_dir() or not mask_dir.is_dir():
        raise VideoError(f"sequence {name!r} needs {frame_dir} and {mask_dir}: check the name and the DAVIS "
                         "folder layout")
    frames = tuple(_files(frame_dir, IMAGE_EXTENSIONS))
    if not frames:
        raise VideoError(f"sequence {name!r} has no frames in {frame_dir} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    annotations = tuple(mask_dir / f"{frame.stem}.png" for frame in frames)
    missing = [path.name for path in annotations if not path.is_file()]
    if missing:
        raise VideoError(f"sequence {name!r}: annotations missing for {len(missing)} of {len(frames)} frames "
                         f"({', '.join(missing[:5])}): every frame needs an annotation PNG of the same stem")
    scribble_dir = root / SCRIBBLES / name
    scribbles = tuple(_files(scribble_dir, (".json",))) if scribble_dir.is_dir() else ()
    return DavisSequence(name, frames, annotations, scribbles)


def find_sequences(root: PathLike, sequences: Sequence[str] | PathLike | None = None) -> list[DavisSequence]:
    """Index the sequences :func:`sequence_names` selects, in that order.

    Raises:
        VideoError: ``root`` is not a DAVIS-layout folder, or named sequences are missing
            (all of them are listed).
    """
    root = Path(root)
    names = sequence_names(root, sequences)
    if not names:
        raise VideoError("no sequence names given: name at least one sequence")
    missing = [name for name in names
               if not (root / FRAMES / name).is_dir() or not (root / ANNOTATIONS / name).is_dir()]
    if missing:
        raise VideoError(f"sequences {missing} are missing from {root / FRAMES} or {root / ANNOTATIONS}: "
                         "check the names; each needs both folders")
    return [index_sequence(root, name) for name in names]


def read_frame(path: PathLike) -> np.ndarray:
    """One frame as a (H, W, 3) uint8 RGB array, decoded as :class:`~manet.io.video.VideoSource` does."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise VideoError(f"cannot decode frame {path}: check the file is a readable JPEG/PNG")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def read_mask(path: PathLike) -> np.ndarray:
    """One mask image as (H, W) uint8 ids (see the module docstring for the rules)."""
    try:
        with Image.open(path) as image:
            image.load()
            return _ids_from_image(image, Path(path))
    except (UnidentifiedImageError, OSError) as error:
        raise VideoError(f"cannot read mask image {path} ({error}); pass a PNG of object ids") from None


def read_masks(paths: Iterable[PathLike]) -> np.ndarray:
    """(T, H, W) uint8 ids of several mask images, which must share one size."""
    files = [Path(path) for path in paths]
    if not files:
        raise VideoError("no mask files given")
    first = read_mask(files[0])
    masks = np.empty((len(files), *first.shape), dtype=np.uint8)
    masks[0] = first
    for t, path in enumerate(files[1:], start=1):
        mask = read_mask(path)
        if mask.shape != first.shape:
            raise VideoError(f"mask {t} ({path.name}) is {mask.shape[1]}x{mask.shape[0]} but mask 0 "
                             f"({files[0].name}) is {first.shape[1]}x{first.shape[0]}: masks must share one size")
        masks[t] = mask
    return masks


def mask_files(folder: PathLike) -> list[Path]:
    """The PNG files of a folder in natural order (hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(f"{folder} is not a folder; pass a folder of PNG masks or a list of files")
    files = _files(folder, (".png",))
    if not files:
        raise VideoError(f"folder {folder} holds no .png mask images")
    return files


def read_scribbles(path: PathLike, num_frames: int, height: int, width: int) -> Annotation | None:
    """A DAVIS-interactive scribble file as the annotation of a video of ``num_frames`` frames.

    A file written for a longer video is cut to ``num_frames`` (quick runs on the first frames);
    None when its strokes lie on a frame that was cut off.

    Raises:
        VideoError: the file is not a readable DAVIS scribble JSON for this video.
    """
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise VideoError(f"cannot read scribble file {path} ({error}); pass a DAVIS interactive JSON") from None
    per_frame = data.get("scribbles") if isinstance(data, dict) else None
    if isinstance(per_frame, list) and len(per_frame) > num_frames:
        if not any(per_frame[:num_frames]):
            return None
        data = {**data, "scribbles": per_frame[:num_frames]}
    try:
        return parse_davis(data, num_frames, width, height)
    except ScribbleError as error:
        raise VideoError(f"scribble file {path}: {error}") from None


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    entries = (entry for entry in folder.iterdir()
               if entry.suffix.lower() in suffixes and not entry.name.startswith(".") and entry.is_file())
    return sorted(entries, key=lambda entry: natural_sort_key(entry.name))


def _ids_from_image(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode == "P":
        return np.array(image, dtype=np.uint8)
    if image.mode in ("L", "LA", "1"):
        return _binary_as_one(np.array(image.convert("L") if image.mode == "1" else image.getchannel(0),
                                       dtype=np.uint8))
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.array(image)
        if values.min() < 0 or values.max() > 255:
            raise VideoError(f"mask {path} has ids up to {values.max()}; ids must be 0..255")
        return _binary_as_one(values.astype(np.uint8))
    if image.mode in ("RGB", "RGBA"):
        return _ids_from_colours(np.array(image.convert("RGB")), path)
    raise VideoError(f"mask {path} has unsupported mode {image.mode}: save masks as palette or greyscale PNGs")


def _binary_as_one(ids: np.ndarray) -> np.ndarray:
    """A greyscale mask of only 0 and 255 is a binary mask (DAVIS 2016): its object is id 1."""
    foreground = ids == BINARY_FOREGROUND
    if foreground.any() and not (ids[~foreground]).any():
        return foreground.astype(np.uint8)
    return ids


def _ids_from_colours(rgb: np.ndarray, path: Path) -> np.ndarray:
    """Map DAVIS-palette colours back to ids; an error names the first colour not in the palette."""
    palette = davis_palette().astype(np.int64)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    pixels = rgb.astype(np.int64)
    codes = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    colours, inverse = np.unique(codes, return_inverse=True)
    lookup = {int(key): index for index, key in enumerate(keys)}
    ids = np.array([lookup.get(int(code), -1) for code in colours], dtype=np.int64)
    if (ids < 0).any():
        code = int(colours[np.flatnonzero(ids < 0)[0]])
        raise VideoError(f"mask {path} is an RGB image with colour {(code >> 16, (code >> 8) & 255, code & 255)} "
                         "outside the DAVIS palette; save masks as palette or greyscale PNGs of ids")
    return ids[inverse].reshape(codes.shape).astype(np.uint8)
