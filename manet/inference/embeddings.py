"""Per-video pixel embeddings, computed once (lazily, frame by frame or all at once) and cached.

Precision policy (:func:`autocast_dtype`): the encoder and the heads may run under bfloat16
autocast (about 2x faster on CPUs with AVX512-BF16/AMX) in channels-last layout; embeddings
are stored as float16 (half the memory of float32, more mantissa than bfloat16) and handed out
as float32 for matching.

Threading: the store is the only owner of the encoder. Every encoder call and every write runs
under one lock, after re-checking which frames are still missing, so no frame is embedded twice
whichever threads ask. A frame asked for on demand (:meth:`EmbeddingStore.get`,
:meth:`EmbeddingStore.ensure`) goes before the background preparation
(:meth:`EmbeddingStore.iter_prepare`), which yields between batches while such a request waits:
the interactive frame of a round is embedded at once, not after the whole video.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from types import EllipsisType

import numpy as np
import torch
import torch.nn.functional as F

from manet.io.video import VideoSource, resize_frame
from manet.model.network import MANet

ProgressCallback = Callable[[int, int], None]
STORE_DTYPE = np.float16


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX); Linux flags only."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (CPU flags; CUDA's own report; else False)."""
    if device.type == "cpu":
        return cpu_supports_bf16()
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return False


def autocast_dtype(device_type: str, precision: str, native_bf16: bool) -> torch.dtype | None:
    """The dtype the encoder and heads autocast to (None: plain float32), per ``SessionConfig.precision``.

    ``auto`` picks bfloat16 on CPUs and CUDA GPUs that compute it natively and float32 elsewhere
    (emulated bfloat16 is slower than float32; float16 overflows on un-normalised activations,
    so it is only used when asked for).
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "float16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be 'auto', 'float32', 'bfloat16' or 'float16', got {precision!r}")
    return torch.bfloat16 if native_bf16 and device_type in ("cpu", "cuda") else None


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """The autocast context the encoder and heads run in for ``precision`` on ``device``."""
    native = native_bfloat16(device) if precision == "auto" else False
    dtype = autocast_dtype(device.type, precision, native)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def mirror_average(embedding: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """(N, E, h, w) float32: per pixel, the direction of the sum of two embeddings of the same
    frames (the frame's and its mirror image's, flipped back) at the mean of their lengths, so
    unit-length embeddings stay unit length and matching distances keep their range."""
    first, second = embedding.float(), mirrored.float()
    length = (first.norm(dim=1, keepdim=True) + second.norm(dim=1, keepdim=True)) / 2
    return F.normalize(first + second, dim=1) * length


def resample_embedding(embedding: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(N, E, h, w) -> (N, E, *grid) float32, bilinear (half-pixel centres); each pixel keeps the
    bilinear mean of its neighbours' lengths, so unit-length embeddings stay unit length."""
    embedding = embedding.float()
    lengths = F.interpolate(embedding.norm(dim=1, keepdim=True), size=grid, mode="bilinear", align_corners=False)
    resized = F.interpolate(embedding, size=grid, mode="bilinear", align_corners=False)
    return F.normalize(resized, dim=1) * lengths


def embedding_grid(size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the embedding grid of frames of ``size`` (every encoder has output stride 4)."""
    return -(-size[0] // 4), -(-size[1] // 4)


class FrameFile:
    """A (T, ...) float16 array in a file, read and written one frame at a time with plain file I/O.

    Not a memory map on purpose: every mapped page a process touches counts towards its resident
    memory, so a memory-mapped spill grows the resident set to the whole file (2.4 GB for 2000
    frames at 480p) whatever the budget. Pages read here are copied and released; the OS page
    cache may keep the file, outside the process and reclaimable.
    """

    def __init__(self, path: str, shape: tuple[int, ...]) -> None:
        self.path = path
        self.shape = shape
        self._frame_bytes = int(np.prod(shape[1:])) * np.dtype(STORE_DTYPE).itemsize
        self._lock = threading.Lock()
        self._handle = open(path, "w+b")  # noqa: SIM115 - open as long as the store lives
        self._handle.truncate(shape[0] * self._frame_bytes)

    def __getitem__(self, frame: int) -> np.ndarray:
        with self._lock:
            self._handle.seek(int(frame) * self._frame_bytes)
            data = self._handle.read(self._frame_bytes)
        return np.frombuffer(data, dtype=STORE_DTYPE).reshape(self.shape[1:])

    def __setitem__(self, frames: Sequence[int] | EllipsisType, values: np.ndarray) -> None:
        indices = range(self.shape[0]) if frames is Ellipsis else frames
        with self._lock:
            for index, value in zip(indices, values, strict=True):
                self._handle.seek(int(index) * self._frame_bytes)
                self._handle.write(np.ascontiguousarray(value, dtype=STORE_DTYPE).tobytes())

    def as_array(self) -> np.ndarray:
        """The whole file as a read-only memory map (for saving a session)."""
        with self._lock:
            self._handle.flush()
        return np.memmap(self.path, dtype=STORE_DTYPE, mode="r", shape=self.shape)


class EmbeddingStore:
    """Embeddings of every frame of one video at the working resolution.

    Invariant: ``computed[t]`` is True iff ``_data[t]`` holds frame t's embedding. ``_data`` is a
    (T, E, h, w) float16 array in RAM, or a :class:`FrameFile` in a temporary folder when it
    would exceed ``budget_mb``.
    """

    def __init__(self, video: VideoSource, model: MANet, working_size: tuple[int, int],
                 device: torch.device, precision: str, budget_mb: float, batch_size: int = 4,
                 mirror: bool = False, encoder_size: tuple[int, int] | None = None) -> None:
        self.video = video
        self.mirror = mirror  # average with the mirror image's embedding (SessionConfig.mirror_embedding)
        # (height, width) of the frames the encoder sees (SessionConfig.encoder_size); the
        # embedding is resampled to the working size's grid. None: the working size.
        self.encoder_size = None if encoder_size == working_size else encoder_size
        self.model = model
        self.working_size = working_size  # (height, width)
        self.device = device
        self.precision = precision
        self.budget_mb = budget_mb
        self.batch_size = batch_size
        self.computed = np.zeros(video.num_frames, dtype=bool)
        self.encoded = np.zeros(video.num_frames, dtype=np.int32)  # encoder runs per frame (1 at most)
        self._data: np.ndarray | FrameFile | None = None
        self._spill_dir: tempfile.TemporaryDirectory[str] | None = None
        self.encoder_seconds = 0.0
        self._lock = threading.Lock()  # held for every encoder call and store write
        self._urgent = 0  # on-demand requests waiting for the lock; preparation yields to them
        self._urgent_done = threading.Condition()

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the embedding grid (computes frame 0 if nothing is known yet)."""
        if self._data is None:
            self.ensure([0])
        assert self._data is not None
        return int(self._data.shape[2]), int(self._data.shape[3])

    @property
    def spilled(self) -> bool:
        return self._spill_dir is not None

    def get(self, frame: int) -> torch.Tensor:
        """(E, h, w) float32 embedding of ``frame`` on the session's device."""
        self.ensure([frame])
        assert self._data is not None
        stored = np.asarray(self._data[frame])
        if not stored.flags.writeable:  # a spilled frame's bytes: torch wants a writable array
            stored = stored.copy()
        # float16 -> float32 in torch: exact as numpy's, ~10x faster (0.15 against 2 ms a frame)
        return torch.from_numpy(stored).to(self.device, torch.float32)

    def ensure(self, frames: Sequence[int], progress: ProgressCallback | None = None) -> None:
        """Compute the embeddings of ``frames`` that are not cached yet, in batches, before any
        waiting background preparation batch (see :meth:`iter_prepare`)."""
        if self.computed[list(frames)].all():
            return  # the common case: no lock, no waiting
        with self._priority(), self._lock:
            missing = [int(t) for t in frames if not self.computed[t]]  # re-read under the lock
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start:start + self.batch_size]
                self._store(batch, self._encode(batch))
                if progress is not None:
                    progress(min(start + self.batch_size, len(missing)), len(missing))

    def iter_prepare(self, batch_size: int = 1) -> Iterator[tuple[int, int]]:
        """Compute every missing embedding, yielding ``(done, total)`` after each batch.

        Meant for a background thread: before each batch it waits while an on-demand request
        (:meth:`get`, :meth:`ensure`) is pending, and it skips frames embedded meanwhile, so the
        frame a user is waiting for costs at most the batch already running. ``total`` counts
        the frames missing when preparation started; ``done`` those embedded since, by anyone.
        One frame per batch by default: on CPUs a batch of 4 costs as much per frame (measured
        at 240p, 2 threads; bitwise the same embeddings), and a short batch is a short wait.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        size = batch_size
        missing = [t for t in range(self.video.num_frames) if not self.computed[t]]
        while True:
            self._wait_for_urgent()
            with self._lock:
                if self._urgent:
                    continue  # a request registered after the wait: let it have the encoder
                batch = [t for t in missing if not self.computed[t]][:size]
                if not batch:
                    return
                self._store(batch, self._encode(batch))
            yield int(self.computed[missing].sum()), len(missing)

    def prefetch(self, frames: Sequence[int], ahead: int = 2) -> Prefetch:
        """Start embedding ``frames`` in that order on a thread, at most ``ahead`` frames in
        front of the consumer (see :class:`Prefetch`); frames already embedded are skipped."""
        return Prefetch(self, frames, ahead)

    def _embed_one(self, frame: int) -> None:
        """Embed ``frame`` unless some thread did already (no priority: for the prefetch thread)."""
        with self._lock:
            if not self.computed[frame]:
                self._store([frame], self._encode([frame]))

    @contextlib.contextmanager
    def _priority(self) -> Iterator[None]:
        with self._urgent_done:
            self._urgent += 1
        try:
            yield
        finally:
            with self._urgent_done:
                self._urgent -= 1
                self._urgent_done.notify_all()

    def _wait_for_urgent(self) -> None:
        with self._urgent_done:
            self._urgent_done.wait_for(lambda: self._urgent == 0)

    def working_frame(self, frame: int) -> np.ndarray:
        """(h_work, w_work, 3) uint8 RGB frame at the working resolution."""
        return self._frame_at(frame, self.working_size)

    def encoder_frame(self, frame: int) -> np.ndarray:
        """(h, w, 3) uint8 RGB frame at the size the encoder sees (the working size by default)."""
        return self._frame_at(frame, self.encoder_size or self.working_size)

    def _frame_at(self, frame: int, size: tuple[int, int]) -> np.ndarray:
        image = self.video.frame(frame)
        if image.shape[:2] != size:
            image = resize_frame(image, size)
        return image

    def _encode(self, frames: list[int]) -> np.ndarray:
        import time

        started = time.perf_counter()
        batch = np.stack([self.encoder_frame(t) for t in frames])
        tensor = torch.from_numpy(batch).to(self.device)
        with torch.inference_mode(), autocast_context(self.device, self.precision):
            images = self.model.preprocess(tensor).contiguous(memory_format=torch.channels_last)
            embedding = self.model.encoder(images)
            if self.mirror:
                mirrored = images.flip(-1).contiguous(memory_format=torch.channels_last)
                embedding = mirror_average(embedding, self.model.encoder(mirrored).flip(-1))
            if self.encoder_size is not None:
                embedding = resample_embedding(embedding, embedding_grid(self.working_size))
        result = embedding.float().cpu().numpy().astype(STORE_DTYPE)
        self.encoder_seconds += time.perf_counter() - started
        return result

    def _store(self, frames: list[int], values: np.ndarray) -> None:
        if self._data is None:
            self._allocate(values.shape[1:])
        assert self._data is not None
        self._data[frames] = values
        self.encoded[frames] += 1
        self.computed[frames] = True  # last: readers without the lock trust it

    def _allocate(self, shape: tuple[int, ...]) -> None:
        total = (self.video.num_frames,) + tuple(shape)
        size_mb = float(np.prod(total)) * np.dtype(STORE_DTYPE).itemsize / 2**20
        if size_mb <= self.budget_mb:
            self._data = np.zeros(total, dtype=STORE_DTYPE)
            return
        self._spill_dir = tempfile.TemporaryDirectory(prefix="manet-embeddings-")
        self._data = FrameFile(os.path.join(self._spill_dir.name, "embeddings.f16"), total)

    def export(self) -> np.ndarray | None:
        """The cached (T, E, h, w) float16 array (for saving sessions); None before any embedding exists."""
        return self._data.as_array() if isinstance(self._data, FrameFile) else self._data

    def restore(self, data: np.ndarray, computed: np.ndarray) -> None:
        """Adopt previously saved embeddings (shape (T, E, h, w) float16)."""
        with self._lock:
            self._allocate(data.shape[1:])
            assert self._data is not None
            self._data[...] = data
            self.computed[...] = computed


class Prefetch:
    """One producer embedding ``frames`` in order, a bounded distance ahead of one consumer.

    The consumer reports each frame it is about to use with :meth:`advance`; the producer embeds
    up to ``ahead`` frames past it, then waits (a bounded queue whose slots are the store itself).
    A frame the consumer needs before the producer got to it is embedded by the consumer's own
    :meth:`EmbeddingStore.get`; the store's lock keeps any frame from being embedded twice.
    Close it (or use it as a context manager) to stop the thread; it never outlives the round.
    An encoder failure on the thread is not lost: the consumer's own ``get`` meets it again.
    """

    def __init__(self, store: EmbeddingStore, frames: Sequence[int], ahead: int) -> None:
        if ahead < 1:
            raise ValueError(f"ahead must be at least 1 frame, got {ahead}")
        self.store = store
        self.frames = [int(t) for t in frames]
        self.ahead = ahead
        self._index = {frame: index for index, frame in enumerate(self.frames)}
        self._position = 0  # index in ``frames`` of the frame the consumer uses now
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="manet-embedding-prefetch", daemon=True)
        self._thread.start()

    def advance(self, frame: int) -> None:
        """The consumer is about to use ``frame``: let the producer run ``ahead`` frames past it."""
        index = self._index.get(int(frame))
        if index is None:
            return  # not one of the prefetched frames (a fixed frame, say): nothing to release
        with self._changed:
            self._position = max(self._position, index)
            self._changed.notify_all()

    def close(self) -> None:
        """Stop the producer after the frame it is embedding; returns once its thread has ended."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        for index, frame in enumerate(self.frames):
            if not self._wait_for_slot(index):
                return
            if self.store.computed[frame]:
                continue
            try:
                self.store._embed_one(frame)
            except Exception:  # noqa: BLE001 - the consumer's get() embeds the frame and raises it
                return

    def _wait_for_slot(self, index: int) -> bool:
        """Wait until ``frames[index]`` is at most ``ahead`` past the consumer; False once closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or index <= self._position + self.ahead)
            return not self._closed
