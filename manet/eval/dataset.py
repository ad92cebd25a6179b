"""Sequences of a DAVIS-layout folder, as the evaluator reads them.

Layout::

    root/JPEGImages/<seq>/*.jpg       frames, natural order
    root/Annotations/<seq>/*.png      ground-truth ids (palette or greyscale PNGs), one per frame
    root/Scribbles/<seq>/001.json     optional: a human first-round scribble (DAVIS format)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from manet.errors import VideoError
from manet.inference.scribbles import Annotation, parse_davis
from manet.io.masks import load_png_masks
from manet.io.video import VideoSource


@dataclass(frozen=True)
class DavisSequence:
    """Where one sequence's files are; ``scribble_file`` is None when there is none."""

    name: str
    frames_dir: Path
    annotations_dir: Path
    scribble_file: Path | None


@dataclass(frozen=True)
class LoadedSequence:
    """A sequence in memory.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        gt: (T, H, W) uint8 ground-truth ids.
        object_ids: sorted ids > 0 present in ``gt``.
        first_annotation: the human first-round scribble, or None (the robot draws one).
    """

    name: str
    frames: np.ndarray
    gt: np.ndarray
    object_ids: tuple[int, ...]
    first_annotation: Annotation | None


def read_sequence_names(path: Path) -> list[str]:
    """Names from a text file, one a line; blank lines and ``#`` comments are skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise VideoError(f"cannot read the sequence list {path}: {error.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def find_sequences(root: Path, names: Sequence[str] | None = None) -> list[DavisSequence]:
    """The sequences of a DAVIS-layout folder, all (sorted by name) or the ``names`` given.

    Raises:
        VideoError: the folder lacks ``JPEGImages``/``Annotations``, or a named sequence is
            missing from either.
    """
    root = Path(root)
    images, annotations = root / "JPEGImages", root / "Annotations"
    if not images.is_dir() or not annotations.is_dir():
        raise VideoError(f"{root} is not a DAVIS-layout folder: it needs JPEGImages/<seq>/ and Annotations/<seq>/")
    if names is None:
        names = sorted(entry.name for entry in images.iterdir() if entry.is_dir() and (annotations / entry.name).is_dir())
    if not names:
        raise VideoError(f"{root} has no sequence with both JPEGImages/<seq> and Annotations/<seq>")
    missing = [name for name in names if not (images / name).is_dir() or not (annotations / name).is_dir()]
    if missing:
        raise VideoError(f"sequences {missing} are missing from {images} or {annotations}; check the names")
    result = []
    for name in names:
        scribble = root / "Scribbles" / name / "001.json"
        result.append(DavisSequence(name, images / name, annotations / name, scribble if scribble.is_file() else None))
    return result


def load_sequence(sequence: DavisSequence, max_frames: int | None = None) -> LoadedSequence:
    """Read frames, ground truth and the first-round scribble of a sequence.

    Args:
        max_frames: keep only the first frames (quick runs). A scribble file whose strokes
            lie beyond the kept frames is ignored.
    """
    video = VideoSource.open(sequence.frames_dir)
    count = video.num_frames if max_frames is None else min(video.num_frames, max_frames)
    gt = load_png_masks(sequence.annotations_dir)
    if gt.shape[0] < count:
        raise VideoError(f"{sequence.name}: {gt.shape[0]} annotations for {count} frames; every frame needs one")
    gt = gt[:count]
    frames = np.stack([video.frame(t) for t in range(count)])
    if gt.shape[1:] != frames.shape[1:3]:
        raise VideoError(f"{sequence.name}: annotations are {gt.shape[2]}x{gt.shape[1]} but frames are "
                         f"{frames.shape[2]}x{frames.shape[1]}")
    object_ids = tuple(int(k) for k in np.unique(gt) if k > 0)
    first = None
    if sequence.scribble_file is not None:
        first = _read_first_round(sequence.scribble_file, count, frames.shape[1], frames.shape[2])
    return LoadedSequence(sequence.name, frames, gt, object_ids, first)


def _read_first_round(path: Path, num_frames: int, height: int, width: int) -> Annotation | None:
    data: Any = json.loads(path.read_text())
    per_frame = data.get("scribbles") if isinstance(data, dict) else None
    if isinstance(per_frame, list) and len(per_frame) > num_frames:
        if not any(per_frame[:num_frames]):
            return None  # the scribbled frame was cut off by max_frames
        data = {**data, "scribbles": per_frame[:num_frames]}
    return parse_davis(data, num_frames, width, height)
