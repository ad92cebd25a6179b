"""Sequences of a DAVIS-layout folder in memory, as the evaluator plays them.

Folders are read by :mod:`manet.io.davis` (layout, split files and mask rules are documented
there); this module loads one sequence's frames, ground truth and first-round scribble.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manet.errors import VideoError
from manet.inference.scribbles import Annotation
from manet.io.davis import DavisSequence, find_sequences, read_frame, read_masks, read_scribbles
from manet.io.davis import read_split as read_sequence_names

__all__ = ["DavisSequence", "LoadedSequence", "find_sequences", "load_sequence", "read_sequence_names"]


@dataclass(frozen=True)
class LoadedSequence:
    """A sequence in memory.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        gt: (T, H, W) uint8 ground-truth ids.
        object_ids: sorted ids > 0 present in ``gt``.
        first_annotation: the first annotator's scribble, or None (the robot draws one).
    """

    name: str
    frames: np.ndarray
    gt: np.ndarray
    object_ids: tuple[int, ...]
    first_annotation: Annotation | None


def load_sequence(sequence: DavisSequence, max_frames: int | None = None) -> LoadedSequence:
    """Read frames, ground truth and the first-round scribble of a sequence.

    Args:
        max_frames: keep only the first frames (quick runs). A scribble file whose strokes
            lie beyond the kept frames is ignored.
    """
    count = sequence.num_frames if max_frames is None else min(sequence.num_frames, max_frames)
    decoded = [read_frame(path) for path in sequence.frames[:count]]
    sizes = sorted({frame.shape[:2] for frame in decoded})
    if len(sizes) > 1:
        raise VideoError(f"{sequence.name}: frames come in sizes {sizes} (H, W); a sequence needs one size")
    frames = np.stack(decoded)
    gt = read_masks(sequence.annotations[:count])
    if gt.shape[1:] != frames.shape[1:3]:
        raise VideoError(f"{sequence.name}: annotations are {gt.shape[2]}x{gt.shape[1]} but frames are "
                         f"{frames.shape[2]}x{frames.shape[1]}")
    object_ids = tuple(int(k) for k in np.unique(gt) if k > 0)
    first = None
    if sequence.first_scribble is not None:
        first = read_scribbles(sequence.first_scribble, count, frames.shape[1], frames.shape[2])
    return LoadedSequence(sequence.name, frames, gt, object_ids, first)
