"""COCO run-length encoding (RLE) of binary masks, compatible with pycocotools.

A mask ``(H, W)`` is read in column-major order; ``counts`` are the lengths of alternating runs of
0 and 1, starting with 0 (so a mask whose first pixel is set starts with a run of length 0).
The compressed form turns ``counts`` into a string: from the third count on, each value is stored
as its difference from the count two before; every value is written as little-endian groups of
5 bits, each group a character ``48 + bits`` with 32 added when more groups follow, the last
group's bit 4 acting as the sign.

:func:`encode` and :func:`decode` use pycocotools when it is installed and the pure-numpy
implementation here otherwise; both produce identical strings.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from manet.errors import VideoError


@functools.cache
def _pycocotools_mask() -> types.ModuleType | None:
    try:
        from pycocotools import mask  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    module: types.ModuleType = mask
    return module


def encode(mask: np.ndarray) -> dict[str, Any]:
    """``{"size": [H, W], "counts": str}`` for a 2-D mask (nonzero = inside)."""
    coco = _pycocotools_mask()
    if coco is None:
        return encode_python(mask)
    binary = np.asfortranarray(_check_mask(mask), dtype=np.uint8)
    rle = coco.encode(binary)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode(rle: Mapping[str, Any]) -> np.ndarray:
    """(H, W) uint8 0/1 mask from a compressed (str/bytes counts) or uncompressed (list) RLE."""
    coco = _pycocotools_mask()
    if coco is None or not isinstance(rle.get("counts"), (str, bytes)):
        return decode_python(rle)
    height, width = _size(rle)
    counts = rle["counts"]
    counts = counts.encode("ascii") if isinstance(counts, str) else counts
    return np.ascontiguousarray(coco.decode({"size": [height, width], "counts": counts}), dtype=np.uint8)


def encode_python(mask: np.ndarray) -> dict[str, Any]:
    """Pure-numpy :func:`encode`."""
    binary = _check_mask(mask)
    return {"size": [int(binary.shape[0]), int(binary.shape[1])], "counts": counts_to_string(run_lengths(binary))}


def decode_python(rle: Mapping[str, Any]) -> np.ndarray:
    """Pure-numpy :func:`decode`."""
    height, width = _size(rle)
    counts = rle.get("counts")
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        runs = string_to_counts(counts)
    elif isinstance(counts, Sequence) and all(isinstance(c, (int, np.integer)) for c in counts):
        runs = [int(c) for c in counts]
    else:
        raise VideoError("RLE 'counts' must be a string or a list of ints")
    if any(run < 0 for run in runs) or sum(runs) != height * width:
        raise VideoError(f"RLE counts cover {sum(runs)} pixels but size {height}x{width} has {height * width}: "
                         "the RLE is corrupt or its 'size' is wrong")
    values = np.arange(len(runs), dtype=np.uint8) % 2
    flat = np.repeat(values, runs)
    return np.ascontiguousarray(flat.reshape((width, height)).T)


def run_lengths(mask: np.ndarray) -> list[int]:
    """Alternating 0/1 run lengths of ``mask`` in column-major order, starting with a 0-run."""
    flat = mask.ravel(order="F").astype(bool)
    if flat.size == 0:
        return []
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size])))
    counts = [int(run) for run in runs]
    return [0, *counts] if flat[0] else counts


def counts_to_string(counts: Sequence[int]) -> str:
    """Compress run lengths into the COCO RLE string."""
    chars: list[str] = []
    for index, count in enumerate(counts):
        value = int(count) - (int(counts[index - 2]) if index > 2 else 0)
        while True:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            chars.append(chr(48 + (group | 0x20 if more else group)))
            if not more:
                break
    return "".join(chars)


def string_to_counts(text: str) -> list[int]:
    """Inverse of :func:`counts_to_string`."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                raise VideoError("RLE string ends in the middle of a number: it is truncated")
            group = ord(text[position]) - 48
            if not 0 <= group < 64:
                raise VideoError(f"RLE string has an invalid character {text[position]!r}")
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += 5
            if not more and group & 0x10:
                value -= 1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _check_mask(mask: np.ndarray) -> np.ndarray:
    array: np.ndarray = np.asarray(mask)
    if array.ndim != 2:
        raise VideoError(f"RLE encodes one (H, W) mask at a time, got shape {array.shape}")
    binary: np.ndarray = array != 0
    return binary


def _size(rle: Mapping[str, Any]) -> tuple[int, int]:
    size = rle.get("size")
    if not isinstance(size, Sequence) or len(size) != 2:
        raise VideoError(f"RLE needs 'size': [height, width], got {size!r}")
    return int(size[0]), int(size[1])
