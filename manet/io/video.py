"""One video as a sequence of RGB uint8 frames, decoded lazily.

:meth:`VideoSource.open` accepts a video file readable by OpenCV, a folder of images, a
``(T, H, W, 3)`` uint8 RGB array (or grayscale ``(T, H, W)`` / ``(T, H, W, 1)``), a single image
file (a one-frame video), or an existing :class:`VideoSource`, which it returns unchanged.

Every source gives frames as ``(H, W, 3)`` uint8 RGB arrays, read-only because they may be shared
with a cache or with the caller's array. Video files are scanned once on open to count frames
exactly (container frame counts can be wrong); frames are then decoded on demand, with an LRU
cache bounded in megabytes, so a long video never sits in memory whole. All frame reads hold a
lock, so one source can serve a display thread and a propagation thread at the same time.
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, SupportsIndex, TypeVar, Union

import cv2
import numpy as np

from manet.errors import FrameIndexError, VideoError
from manet.io._cache import DecodeStats, FrameCache

DEFAULT_CACHE_MB = 128.0
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_HINT = "pass a video file (mp4, avi, mov, mkv, ...), a folder of jpg/png frames, or a (T, H, W, 3) uint8 array"

VideoLike = Union[str, "os.PathLike[str]", np.ndarray, "VideoSource"]
# typing.Self is Python 3.11+; a bound type variable says the same on 3.10.
_Source = TypeVar("_Source", bound="VideoSource")


class Opener(Protocol):
    """Makes the concrete source for a non-VideoSource argument of :meth:`VideoSource.open`."""

    def __call__(self, source: VideoLike, *, cache_mb: float, name: str | None) -> VideoSource: ...


# The concrete sources (manet.io._sources) subclass VideoSource, so this module cannot import them without
# an import circle: they register their opener here instead, when manet.io (and so any of its modules) is
# first imported.
_opener: Opener | None = None


def register_opener(opener: Opener) -> None:
    """Install the function :meth:`VideoSource.open` hands non-VideoSource arguments to."""
    global _opener
    _opener = opener


def natural_sort_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``frame2`` before ``frame10`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts))


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an image ``(H, W)`` or ``(H, W, C)`` to ``size = (h, w)``; dtype is kept.

    Uses area averaging when neither side grows (no aliasing on downscale), bilinear otherwise.
    Not for id masks: those need nearest-neighbour interpolation.
    """
    height, width = (int(size[0]), int(size[1]))
    if height <= 0 or width <= 0:
        raise VideoError(f"resize target must be positive (h, w), got {size}")
    if frame.ndim not in (2, 3) or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise VideoError(f"resize_frame expects a non-empty (H, W) or (H, W, C) image, got shape {frame.shape}")
    if (height, width) == frame.shape[:2]:
        return frame.copy()
    shrink = height <= frame.shape[0] and width <= frame.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(frame), (width, height), interpolation=interpolation)
    if frame.ndim == 3 and resized.ndim == 2:  # OpenCV drops a trailing channel axis of size 1
        resized = resized[:, :, None]
    return resized


class VideoSource:
    """A video of ``num_frames`` frames of ``height`` x ``width`` RGB pixels.

    Build one with :meth:`VideoSource.open`. Subclasses implement ``_decode(t)``; this base class
    checks indices, caches decoded frames (LRU, ``cache_mb`` megabytes) and serialises access.
    """

    def __init__(self, num_frames: int, height: int, width: int, *, fps: float | None, name: str,
                 description: str, cache_mb: float) -> None:
        if not cache_mb >= 0:
            raise VideoError(f"cache_mb must be a number >= 0 (megabytes), got {cache_mb!r}")
        self._num_frames = num_frames
        self._height = height
        self._width = width
        self._fps = fps
        self._name = name
        self._description = description
        self._lock = threading.RLock()
        self._cache = FrameCache(int(cache_mb * 1024 * 1024))
        self._fingerprint: str | None = None
        self._last_request: int | None = None  # index of the previous frame() call, cached or not

    @staticmethod
    def open(source: VideoLike, *, cache_mb: float = DEFAULT_CACHE_MB, name: str | None = None) -> VideoSource:
        """Open ``source`` (see module docstring). Raises :class:`VideoError` when it cannot be used.

        ``cache_mb`` bounds the decoded-frame cache of file and folder sources; ``name`` overrides
        the display name (default: file stem, folder name, or ``"array"``).
        """
        if isinstance(source, VideoSource):
            return source
        if _opener is None:  # only when manet.io._sources failed to import, which raised already
            raise VideoError("no video sources are registered: import manet.io first")
        return _opener(source, cache_mb=cache_mb, name=name)

    @property
    def num_frames(self) -> int:
        """Number of frames T (>= 1)."""
        return self._num_frames

    @property
    def height(self) -> int:
        """Frame height H in pixels."""
        return self._height

    @property
    def width(self) -> int:
        """Frame width W in pixels."""
        return self._width

    @property
    def fps(self) -> float | None:
        """Frames per second from the container, or ``None`` for folders and arrays."""
        return self._fps

    @property
    def name(self) -> str:
        """Short display name."""
        return self._name

    @property
    def source_description(self) -> str:
        """Human-readable description of where the frames come from."""
        return self._description

    def frame(self, t: SupportsIndex) -> np.ndarray:
        """Frame ``t`` as a read-only ``(H, W, 3)`` uint8 RGB array; copy it before writing."""
        index = self._check_index(t)
        with self._lock:
            frame = self._cache.get(index)
            if frame is None:
                frame = self._decode(index)
                frame.flags.writeable = False
                self._cache.put(index, frame)
            self._last_request = index
            return frame

    def frames(self, indices: Iterable[SupportsIndex]) -> np.ndarray:
        """Frames at ``indices`` as a new writable ``(N, H, W, 3)`` uint8 array, in the given order.

        Frames are decoded in ascending index order, which is the fast order for video files.
        """
        wanted = [self._check_index(t) for t in indices]
        out = np.empty((len(wanted), self._height, self._width, 3), dtype=np.uint8)
        for position in sorted(range(len(wanted)), key=wanted.__getitem__):
            out[position] = self.frame(wanted[position])
        return out

    def __len__(self) -> int:
        return self._num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for t in range(self._num_frames):
            yield self.frame(t)

    def fingerprint(self) -> str:
        """Stable identity: ``"<T>x<H>x<W>-<hash>"``, the hash over 5 evenly spaced frames' pixels.

        It depends on pixel values only, so the same frames give the same fingerprint whichever
        kind of source holds them (a re-encoded video does not).
        """
        with self._lock:
            if self._fingerprint is None:
                digest = hashlib.blake2b(digest_size=10)
                digest.update(f"{self._num_frames},{self._height},{self._width}".encode())
                for t in sorted({round(x) for x in np.linspace(0, self._num_frames - 1, 5)}):
                    digest.update(t.to_bytes(8, "little"))
                    digest.update(np.ascontiguousarray(self.frame(t)).tobytes())
                self._fingerprint = f"{self._num_frames}x{self._height}x{self._width}-{digest.hexdigest()}"
            return self._fingerprint

    def stats(self) -> DecodeStats:
        """Decoder and cache counters, for tests and benchmarks."""
        with self._lock:
            return self._cache.stats(seeks=self._seek_count(), decoded=self._decode_count())

    def close(self) -> None:
        """Release the decoder and drop cached frames; later reads reopen the source."""
        with self._lock:
            self._cache.clear()
            self._release()

    def __enter__(self: _Source) -> _Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._description})"

    def _check_index(self, t: SupportsIndex) -> int:
        try:
            index = operator.index(t)
        except TypeError:
            raise FrameIndexError(f"frame index must be an int, got {type(t).__name__}") from None
        if not 0 <= index < self._num_frames:
            raise FrameIndexError(f"frame {index} is outside the video: use 0..{self._num_frames - 1}")
        return index

    def _decode(self, t: int) -> np.ndarray:
        """Decode frame ``t`` (a valid index) into a new ``(H, W, 3)`` uint8 RGB array."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free decoder resources (nothing by default)."""

    def _seek_count(self) -> int:
        return 0

    def _decode_count(self) -> int:
        return self._cache.misses
