"""The three kinds of :class:`~manet.io.video.VideoSource`: array, image files, video file."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from manet.errors import VideoError
from manet.io.video import IMAGE_EXTENSIONS, VIDEO_HINT, VideoLike, VideoSource, natural_sort_key, register_opener

# Reading up to this many frames ahead without seeking is cheaper than a seek, which decodes
# from the previous keyframe (every 12 frames for mp4v, up to 250 for x264 defaults).
MAX_FORWARD_SKIP = 24
# When frames are requested backwards (t, t-1, ...), decode this many at once from one seek.
BACKWARD_CHUNK = 32
# Two timestamps (milliseconds) closer than this are the same frame.
TIMESTAMP_TOLERANCE_MS = 1e-3


class ArrayVideo(VideoSource):
    """Frames held in a caller's uint8 array, not copied: ``(T, H, W, 3)``, ``(T, H, W, 1)``,
    ``(T, H, W)`` grayscale (replicated to RGB per frame) or ``(T, H, W, 4)`` (alpha dropped).
    Editing the array afterwards changes the video."""

    def __init__(self, array: np.ndarray, *, name: str) -> None:
        _check_array(array)
        frames = array.view()
        frames.flags.writeable = False
        self._frames = frames
        num_frames, height, width = array.shape[:3]
        kind = "RGB" if array.ndim == 4 and array.shape[3] >= 3 else "grayscale"
        super().__init__(num_frames, height, width, fps=None, name=name, cache_mb=0,
                         description=f"{kind} array of {num_frames} frames, {width}x{height}")

    def _decode(self, t: int) -> np.ndarray:
        frame: np.ndarray = self._frames[t]
        if frame.ndim == 2:
            frame = frame[:, :, None]
        if frame.shape[2] == 1:
            return np.repeat(frame, 3, axis=2)
        return frame[:, :, :3]


def _check_array(array: np.ndarray) -> None:
    shape = tuple(array.shape)
    if array.dtype == np.bool_:
        raise VideoError(f"frames are a boolean array {shape}, which looks like a mask; pass (T, H, W, 3) uint8 RGB")
    if np.issubdtype(array.dtype, np.floating):
        raise VideoError(f"frames are {array.dtype}; pass uint8 RGB in 0..255: convert with "
                         "(frames * 255).round().astype(np.uint8) if values are in [0, 1]")
    if array.dtype != np.uint8:
        raise VideoError(f"frames are {array.dtype}; pass uint8 RGB in 0..255: convert with "
                         "np.clip(frames, 0, 255).astype(np.uint8) (scale 16-bit data first)")
    if array.ndim == 3 and shape[2] in (3, 4):
        raise VideoError(f"an array of shape {shape} looks like one RGB frame; pass frames[None] for a "
                         "one-frame video, or a (T, H, W, 3) stack of frames")
    if array.ndim not in (3, 4) or (array.ndim == 4 and shape[3] not in (1, 3, 4)):
        raise VideoError(f"frames must have shape (T, H, W, 3) RGB or (T, H, W) grayscale, got {shape}")
    if 0 in shape[:3]:
        raise VideoError(f"frames array {shape} is empty: it needs at least one frame of at least 1x1 pixels")


class ImageFolderVideo(VideoSource):
    """Frames stored one per image file (jpg/png/bmp), in the given order.

    All files must have the same size; this is checked on open from the image headers only.
    Grayscale images become RGB, alpha is dropped, EXIF orientation is ignored (pixels as stored).
    """

    def __init__(self, files: list[Path], *, name: str, cache_mb: float, description: str) -> None:
        sizes = [_image_size(path) for path in files]
        for index, size in enumerate(sizes):
            if size != sizes[0]:
                raise VideoError(f"frame {index} ({files[index].name}) is {size[0]}x{size[1]} but frame 0 "
                                 f"({files[0].name}) is {sizes[0][0]}x{sizes[0][1]}: resize them to one size")
        self._files = files
        width, height = sizes[0]
        plural = "s" if len(files) > 1 else ""
        super().__init__(len(files), height, width, fps=None, name=name, cache_mb=cache_mb,
                         description=f"{description} ({len(files)} image{plural}, {width}x{height})")

    def _decode(self, t: int) -> np.ndarray:
        path = self._files[t]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is None:
            raise VideoError(f"cannot decode image {path}: the file is corrupt or changed; replace it")
        if bgr.shape[:2] != (self.height, self.width):
            raise VideoError(f"image {path} is now {bgr.shape[1]}x{bgr.shape[0]}, expected "
                             f"{self.width}x{self.height}: it changed since the folder was opened")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image header, without decoding pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as error:
        raise VideoError(f"cannot read image {path} ({error}); remove or replace the file") from None


class _Capture:
    """The single place that talks to OpenCV's decoder (tests replace its methods to inject faults)."""

    def __init__(self, path: Path) -> None:
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise VideoError(f"cannot read video {path}: the file is corrupt, incomplete or in a format this "
                             "OpenCV cannot decode; re-encode it (ffmpeg -i in -c:v libx264 out.mp4) or "
                             "extract its frames to a folder of jpg/png images")
        self._capture = capture

    def grab(self) -> bool:
        return bool(self._capture.grab())

    def retrieve(self) -> np.ndarray | None:
        ok, frame = self._capture.retrieve()
        return frame if ok else None

    def seek(self, t: int) -> None:
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, t)

    def timestamp_ms(self) -> float:
        return float(self._capture.get(cv2.CAP_PROP_POS_MSEC))

    def fps(self) -> float | None:
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        return fps if math.isfinite(fps) and fps > 0 else None

    def release(self) -> None:
        self._capture.release()


class FileVideo(VideoSource):
    """A video file decoded on demand.

    On open the file is read once without converting pixels, which gives the exact frame count
    and every frame's timestamp. Reads then go forward without seeking when they can; a seek is
    verified by comparing the landed frame's timestamp with the scanned one, and if they differ
    the file is marked unseekable and reads restart from the beginning instead (slower, exact).
    """

    def __init__(self, path: Path, *, name: str, cache_mb: float) -> None:
        self._path = path
        timestamps, first, fps = _scan(path)
        self._timestamps = timestamps
        self._seek_reliable = bool(np.all(np.diff(timestamps) > TIMESTAMP_TOLERANCE_MS))
        self._capture: _Capture | None = None
        self._next = 0
        self._verify_next = False
        self._seeks = 0
        self._decoded = 1
        height, width = first.shape[:2]
        rate = f", {fps:.4g} fps" if fps else ""
        super().__init__(len(timestamps), height, width, fps=fps, name=name, cache_mb=cache_mb,
                         description=f"video file {path} ({len(timestamps)} frames, {width}x{height}{rate})")
        first.flags.writeable = False
        self._cache.put(0, first)

    def _decode(self, t: int) -> np.ndarray:
        start = self._chunk_start(t)
        if self._capture is None:
            self._reopen()
        if not self._next <= t <= self._next + MAX_FORWARD_SKIP:
            self._move_to(start)
        while self._next < t:
            index = self._grab()
            if index >= start:
                frame = self._retrieve(index)
                frame.flags.writeable = False
                self._cache.put(index, frame)
        return self._retrieve(self._grab())

    def _chunk_start(self, t: int) -> int:
        """First frame to decode for a request of ``t``: earlier than ``t`` when reading backwards."""
        if self._last_request is None or t != self._last_request - 1:
            return t
        chunk = min(BACKWARD_CHUNK, self._cache.capacity(self.height * self.width * 3) - 1)
        return max(0, t - chunk + 1) if chunk > 1 else t

    def _move_to(self, target: int) -> None:
        """Position the (open) decoder so that the next grab returns frame ``target``."""
        assert self._capture is not None
        if target == self._next:
            return
        if self._seek_reliable:
            self._capture.seek(target)
            self._seeks += 1
            self._next = target
            self._verify_next = True
            return
        if target < self._next:
            self._reopen()
            self._seeks += 1
        while self._next < target:
            self._grab()

    def _grab(self) -> int:
        """Advance the decoder by one frame and return that frame's index."""
        assert self._capture is not None
        expected = self._next
        grabbed = self._capture.grab()
        if self._verify_next:
            self._verify_next = False
            if not grabbed or abs(self._capture.timestamp_ms() - self._timestamps[expected]) > TIMESTAMP_TOLERANCE_MS:
                self._seek_reliable = False
                self._reopen()
                while self._next < expected:
                    self._grab()
                return self._grab()
        if not grabbed:
            raise VideoError(f"frame {expected} of {self._path} can no longer be decoded; the file changed "
                             "since it was opened: open it again")
        self._next = expected + 1
        return expected

    def _retrieve(self, index: int) -> np.ndarray:
        assert self._capture is not None
        frame = self._capture.retrieve()
        if frame is None:
            raise VideoError(f"cannot decode frame {index} of {self._path}: re-encode the video")
        self._decoded += 1
        return _to_rgb(frame, index, (self.height, self.width))

    def _reopen(self) -> None:
        self._release()
        self._capture = _Capture(self._path)
        self._next = 0

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture = None
        self._next = 0
        self._verify_next = False

    def _seek_count(self) -> int:
        return self._seeks

    def _decode_count(self) -> int:
        return self._decoded


def _scan(path: Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Read ``path`` once: (timestamps in ms of every frame, frame 0 as RGB, fps or None)."""
    capture = _Capture(path)
    try:
        timestamps: list[float] = []
        first: np.ndarray | None = None
        while capture.grab():
            timestamps.append(capture.timestamp_ms())
            if first is None:
                first = capture.retrieve()
                if first is None:
                    break
        fps = capture.fps()
    finally:
        capture.release()
    if first is None:
        raise VideoError(f"video {path} has no decodable frames: check that it plays, or re-encode it")
    return np.asarray(timestamps, dtype=np.float64), _to_rgb(first, 0, first.shape[:2]), fps


def _to_rgb(frame: np.ndarray, index: int, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[:2] != size:
        raise VideoError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]} but frame 0 is {size[1]}x{size[0]}: "
                         "the video changes size mid-stream; re-encode it at one size")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def open_source(source: VideoLike, *, cache_mb: float, name: str | None) -> VideoSource:
    """The concrete source for an array, a folder of images, an image file or a video file."""
    if isinstance(source, np.ndarray):
        return ArrayVideo(source, name=name or "array")
    if isinstance(source, (str, os.PathLike)):
        return _open_path(Path(os.fspath(source)).expanduser(), cache_mb=cache_mb, name=name)
    raise VideoError(f"cannot open a video from a {type(source).__name__}: {VIDEO_HINT} "
                     "(for a list of frames use np.stack(frames))")


def _open_path(path: Path, *, cache_mb: float, name: str | None) -> VideoSource:
    if path.is_dir():
        return ImageFolderVideo(_list_images(path), name=name or path.name, cache_mb=cache_mb,
                                description=f"image folder {path}")
    if not path.exists():
        raise VideoError(f"no such file or folder: {path}; {VIDEO_HINT}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageFolderVideo([path], name=name or path.stem, cache_mb=cache_mb,
                                description=f"single image {path}")
    return FileVideo(path, name=name or path.stem, cache_mb=cache_mb)


def _list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` in natural order (hidden files skipped)."""
    entries = sorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")),
                     key=lambda entry: natural_sort_key(entry.name))
    images = [entry for entry in entries if entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS]
    if images:
        return images
    subfolders = [entry.name for entry in entries if entry.is_dir()]
    hint = ""
    if subfolders:
        hint = f"; it has subfolders ({', '.join(subfolders[:3])}): pass the one that holds the frames"
    raise VideoError(f"folder {folder} holds no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images{hint}")


register_opener(open_source)
