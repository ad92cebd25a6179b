"""``Session``: one video's embeddings, memories, rounds and masks, and the verbs that change them.

A round is ``interact`` (the interaction head on the scribbled frame, mask back at once) then
``propagate`` (forward to the last frame, then backward to the first, through the propagation
head and both memories). The round commits only when propagation has visited every frame;
cancelling leaves the session exactly as it was before ``interact``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from manet.config import SessionConfig
from manet.errors import (
    FrameIndexError,
    PropagationCancelled,
    ScribbleError,
    SessionStateError,
    UnknownObjectError,
)
from manet.inference import interaction
from manet.inference.embeddings import EmbeddingStore, ProgressCallback, autocast_context
from manet.inference.memory import GlobalMemory, LocalMemory
from manet.inference.propagation import Propagator
from manet.inference.reuse import ReuseCache
from manet.inference.resample import GridResampler
from manet.inference.scribbles import Annotation, Box, Scribble, make_annotation, parse_davis
from manet.inference.state import Channels, MatchingMaps, PendingRound, RoundRecord
from manet.io.video import VideoSource
from manet.model.matching import upsample_maps
from manet.model.network import MANet

ScribbleInput = Mapping[str, Any] | Annotation | Sequence[Scribble | Box]
CancelCallback = Callable[[], bool]
MASK_CACHE_BYTES = 256 * 2**20


def pick_device(requested: str | None) -> torch.device:
    if requested is not None:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def working_size_for(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(h, w) at which frames are embedded: short side scaled to ``short_side``, never upscaled."""
    if short_side is None or min(height, width) <= short_side:
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


class Session:
    """Interactive segmentation state of one video.

    Args:
        model: a :class:`~manet.model.network.MANet` (see :func:`manet.load_model`).
        video: path to a video file or image folder, a (T, H, W, 3) uint8 RGB array, or a
            :class:`~manet.io.video.VideoSource`.
        config: inference settings (working resolution, memory switches, precision, device).
    """

    def __init__(self, model: MANet, video: Any, config: SessionConfig | None = None) -> None:
        self.config = config or model.recommended_session_config()
        self.video = VideoSource.open(video)
        self.device = pick_device(self.config.device)
        self.model = model.to(self.device).eval()
        self.working_size = working_size_for(self.video.height, self.video.width, self.config.working_size)
        self.embeddings = EmbeddingStore(self.video, self.model, self.working_size, self.device,
                                         self.config.precision, self.config.embedding_budget_mb)
        # Stems and neighbour distances: the same in every round, so round 1 leaves them behind.
        self.reuse = ReuseCache(self.config.reuse_budget_mb, self.config.window)
        self._resampler: GridResampler | None = None
        self._propagating = False  # a propagate() generator is between its first step and its end
        self.last_propagation_seconds: dict[str, float] = {}  # wall time per part of the last round
        self._rounds: list[RoundRecord] = []
        self._pending: PendingRound | None = None
        self._channels = Channels()
        self._global: GlobalMemory | None = None
        self._local = LocalMemory()
        self._mask_cache: dict[int, np.ndarray] = {}
        # Full-resolution masks are cheap to recompute from the grid logits (a few ms); keep at
        # most MASK_CACHE_BYTES of them so long videos do not hold one (H, W) array per frame.
        self._mask_cache_frames = max(16, MASK_CACHE_BYTES // max(1, self.height * self.width))

    # ----------------------------------------------------------------- properties
    @property
    def num_frames(self) -> int:
        return self.video.num_frames

    @property
    def height(self) -> int:
        return self.video.height

    @property
    def width(self) -> int:
        return self.video.width

    @property
    def grid(self) -> tuple[int, int]:
        """(h, w) of the stride-4 embedding grid."""
        return self.embeddings.grid

    @property
    def object_ids(self) -> list[int]:
        """Object ids (> 0) introduced by committed rounds, in order of appearance."""
        return [object_id for object_id in self._channels.ids if object_id != 0]

    @property
    def rounds(self) -> list[RoundRecord]:
        return list(self._rounds)

    @property
    def pending(self) -> PendingRound | None:
        return self._pending

    @property
    def annotated_frames(self) -> list[int]:
        return [record.frame for record in self._rounds]

    @property
    def masks(self) -> np.ndarray:
        """(T, H, W) uint8 object ids of the last committed round (zeros before any round)."""
        result = np.zeros((self.num_frames, self.height, self.width), dtype=np.uint8)
        if self._rounds:
            for frame in range(self.num_frames):
                result[frame] = self.mask(frame)
        return result

    @property
    def confidence(self) -> np.ndarray:
        """(T,) float32 mean max-softmax probability per frame of the last round (0 before any)."""
        if not self._rounds:
            return np.zeros(self.num_frames, dtype=np.float32)
        probabilities = self._rounds[-1].logits.float().softmax(dim=1)
        return probabilities.amax(dim=1).mean(dim=(1, 2)).numpy().astype(np.float32)

    def frame(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame ``index`` at the original resolution."""
        return self.video.frame(self._check_frame(index))

    def mask(self, index: int) -> np.ndarray:
        """(H, W) uint8 object ids of frame ``index`` after the last committed round."""
        index = self._check_frame(index)
        if not self._rounds:
            return np.zeros((self.height, self.width), dtype=np.uint8)
        cached = self._mask_cache.get(index)
        if cached is None:
            fixed = self.fixed_frames().get(index)
            cached = None if fixed is None else np.array(fixed)
        if cached is None:
            record = self._rounds[-1]
            cached = self._to_mask(record.logits[index].float(), record.channels)
            if len(self._mask_cache) < self._mask_cache_frames:
                self._mask_cache[index] = cached
        return cached

    # ----------------------------------------------------------------- verbs
    def prepare(self, progress: ProgressCallback | None = None) -> None:
        """Compute every frame's embedding now (otherwise they are computed on first use)."""
        for done, total in self.embeddings.iter_prepare():
            if progress is not None:
                progress(done, total)

    def interact(self, scribbles: ScribbleInput, frame: int | None = None) -> np.ndarray:
        """Run the interaction head on the scribbled frame and start a pending round.

        Args:
            scribbles: a DAVIS scribble dict, an :class:`Annotation`, or a list of
                :class:`Scribble` (strokes, clicks) and :class:`Box` prompts (then ``frame``
                is required); they all mix in one round. Calling ``interact`` again
                before ``propagate`` replaces the pending round's scribbles.
            frame: the scribbled frame, for a list of scribbles.
        Returns:
            (H, W) uint8 object ids of the interactive frame.
        """
        started = time.perf_counter()
        self._check_idle("start a new round")
        return self._start_round(self._to_annotation(scribbles, frame), started)

    def interact_mask(self, mask: np.ndarray, frame: int) -> np.ndarray:
        """Start a pending round from a complete mask of one frame (imported or painted).

        The mask is the frame's result as given and stays so in later rounds; its pixels become
        the global memory's reference (the paper's augmented map, from a full annotation).

        Args:
            mask: (H, W) integer object ids at the video's resolution, 0 = background.
            frame: the frame the mask belongs to.
        Returns:
            the mask as (H, W) uint8.
        """
        started = time.perf_counter()
        self._check_idle("start a new round")
        annotation = make_annotation(frame, [], self.num_frames, self.width, self.height, mask=mask)
        return self._start_round(annotation, started)

    def _start_round(self, annotation: Annotation, started: float) -> np.ndarray:
        channels = self._channels.with_objects([i for i in annotation.object_ids if i != 0])
        previous = self._previous_labels(annotation.frame)
        with torch.inference_mode(), autocast_context(self.device, self.config.precision):
            result = interaction.run(self.model, self.embeddings.get(annotation.frame), annotation,
                                     channels, previous, first_round=not self._rounds,
                                     frame_size=(self.height, self.width), config=self.config)
        self._pending = PendingRound(annotation, channels, result.labels, result.logits.float(), None, 0.0)
        mask = self._pending_mask(self._pending)
        self._pending.seconds = time.perf_counter() - started
        return mask

    def _pending_mask(self, pending: PendingRound) -> np.ndarray:
        if pending.annotation.mask is not None:
            return np.array(pending.annotation.mask)
        return self._to_mask(pending.logits, pending.channels)

    def fixed_frames(self) -> dict[int, np.ndarray]:
        """Frames whose result is a user-given mask (latest committed wins): frame -> (H, W) ids."""
        fixed: dict[int, np.ndarray] = {}
        for record in self._rounds:
            if record.annotation.mask is not None:
                fixed[record.frame] = record.annotation.mask
            else:
                fixed.pop(record.frame, None)
        return fixed

    def propagate(self, cancel: CancelCallback | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Propagate the pending round: forward to the last frame, then backward to frame 0.

        Yields ``(frame_index, (H, W) uint8 ids)`` per frame as it is computed. When the
        generator is exhausted the round is committed. If ``cancel()`` returns True between
        frames, :class:`PropagationCancelled` is raised; if the generator is closed early, the
        pending round is dropped the same way: committed masks and memories stay as they were.
        """
        if self._pending is None:
            raise SessionStateError("nothing to propagate: call interact(scribbles) first to start a round")
        self._check_idle("propagate again")
        pending = self._pending
        started = time.perf_counter()
        fixed = {frame: mask for frame, mask in self.fixed_frames().items() if frame != pending.frame}
        if self.config.augmented_map and pending.augmented is None:
            with torch.inference_mode():
                pending.augmented = interaction.augmented_for_round(self.embeddings.get(pending.frame), pending,
                                                                    (self.height, self.width), self.config)
        propagator = Propagator(self.model, self.embeddings, self.config, pending, self._global, self._local, fixed,
                                self.reuse)
        new_cache: dict[int, np.ndarray] = {pending.frame: self._pending_mask(pending)}
        completed = False
        self._propagating = True
        self._local.begin_round(pending.frame)
        try:
            for index, logits in propagator.run(self.device):
                if cancel is not None and cancel():
                    raise PropagationCancelled(
                        f"propagation cancelled at frame {index}; the session keeps round {len(self._rounds)}'s result"
                    )
                mask = np.array(fixed[index]) if index in fixed else self._to_mask(logits, pending.channels)
                if len(new_cache) < self._mask_cache_frames:
                    new_cache[index] = mask
                yield index, mask
            completed = True
        finally:
            self._propagating = False
            if completed:
                self.last_propagation_seconds = dict(propagator.seconds)
                self._commit(pending, propagator, new_cache, time.perf_counter() - started)
            else:
                self._local.discard_last_round()
                if self._pending is pending:
                    self._pending = None

    def run_round(self, scribbles: ScribbleInput, frame: int | None = None,
                  progress: ProgressCallback | None = None,
                  cancel: CancelCallback | None = None) -> np.ndarray:
        """``interact`` + full ``propagate``; returns (T, H, W) uint8 ids of every frame."""
        self.interact(scribbles, frame)
        total = self.num_frames - 1
        for done, _ in enumerate(self.propagate(cancel=cancel), start=1):
            if progress is not None:
                progress(done, total)
        return self.masks

    def undo_round(self) -> None:
        """Drop the last committed round: masks and memories return to the round before."""
        if not self._rounds:
            raise SessionStateError("there is no round to undo")
        self._check_idle("undo a round")
        self._pending = None
        record = self._rounds.pop()
        self._global = record.global_before
        self._local.discard_last_round()
        self._channels = self._rounds[-1].channels if self._rounds else Channels()
        self._mask_cache = {}

    def reset(self) -> None:
        """Forget every round, scribble and memory; keep the cached embeddings."""
        self._check_idle("reset")
        self._rounds = []
        self._pending = None
        self._channels = Channels()
        self._global = None
        self._local = LocalMemory()
        self._mask_cache = {}

    def discard_pending(self) -> None:
        """Forget the scribbles of a round that was not propagated."""
        self._pending = None

    def save(self, folder: str | os.PathLike[str], *, include_embeddings: bool = True) -> Path:
        """Write the whole session (embeddings, memories, rounds, masks) to ``folder`` atomically."""
        from manet.inference.persistence import save_session

        return save_session(self, folder, include_embeddings=include_embeddings)

    @classmethod
    def load(cls, folder: str | os.PathLike[str], model: MANet, video: Any = None,
             config: SessionConfig | None = None) -> "Session":
        """A session saved by :meth:`save`; checks that the video and the model match."""
        from manet.inference.persistence import load_session

        return load_session(folder, model, video, config)

    def maps(self, frame: int, object_id: int) -> MatchingMaps:
        """The global, local and augmented maps the memories hold for a frame and object.

        All (h, w) float32 in [0, 1] at the stride-4 grid (see :meth:`upsample_map`). The
        local map is the one eq 6 reads (nearest annotated round among the last R); the
        augmented map exists only for frames that were scribbled.
        """
        frame = self._check_frame(frame)
        if not self._rounds or self._global is None:
            raise SessionStateError("no round has run yet: maps exist after the first run_round/propagate")
        if object_id not in self._channels.ids:
            raise UnknownObjectError(
                f"object {object_id} has not been scribbled yet; known ids: {list(self._channels.ids)}"
            )
        channel = self._channels.index(object_id)
        global_map = self._global.read(frame, len(self._channels))[channel].numpy()
        local_map = None
        rounds = self.config.memory_rounds if self.config.local_memory else 1
        try:
            local = self._local.read(frame, rounds)
            if channel < local.shape[0]:
                local_map = upsample_maps(local[channel:channel + 1], self.grid)[0].numpy()
        except KeyError:
            pass
        augmented_map = None
        for record in reversed(self._rounds):
            if record.frame == frame and record.augmented is not None and channel < record.augmented.shape[0]:
                augmented_map = record.augmented[channel].numpy()
                break
        return MatchingMaps(global_map, local_map, augmented_map)

    def upsample_map(self, grid_map: np.ndarray) -> np.ndarray:
        """A (h, w) grid map resized to the video's (H, W), float32."""
        tensor = torch.from_numpy(np.asarray(grid_map, dtype=np.float32))[None]
        return self._resample().to_frame(tensor)[0].numpy()

    def suggest_frame(self) -> int:
        """The least confident frame not annotated yet (needs no ground truth)."""
        if not self._rounds:
            raise SessionStateError("run a first round before asking which frame to correct")
        confidence = self.confidence.astype(np.float64)
        confidence[self.annotated_frames] = np.inf
        if np.all(np.isinf(confidence)):
            return int(np.argmin(self.confidence))
        return int(np.argmin(confidence))

    # ----------------------------------------------------------------- internals
    def _check_frame(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise FrameIndexError(f"frame index must be an int, got {index!r}")
        if not 0 <= int(index) < self.num_frames:
            raise FrameIndexError(f"frame {index} is outside the video: valid frames are 0..{self.num_frames - 1}")
        return int(index)

    def _check_idle(self, verb: str) -> None:
        if self._propagating:
            raise SessionStateError(f"cannot {verb} while a propagation is running: let it finish, cancel it, "
                                    "or close() its generator first")

    def _to_annotation(self, scribbles: ScribbleInput, frame: int | None) -> Annotation:
        if isinstance(scribbles, Annotation):
            return make_annotation(scribbles.frame, [*scribbles.scribbles, *scribbles.boxes], self.num_frames,
                                   self.width, self.height, mask=scribbles.mask)
        if isinstance(scribbles, Mapping):
            return parse_davis(scribbles, self.num_frames, self.width, self.height)
        if frame is None:
            raise FrameIndexError("a list of Scribble objects needs frame=<index of the scribbled frame>")
        try:
            prompts = list(scribbles)
        except TypeError as error:
            raise ScribbleError(f"scribbles must be a DAVIS dict, an Annotation or a list of Scribble/Box prompts, "
                                f"got {type(scribbles).__name__}") from error
        return make_annotation(frame, prompts, self.num_frames, self.width, self.height)

    def _previous_labels(self, frame: int) -> torch.Tensor | None:
        """(h, w) channel indices of ``frame`` after the last round, or None in round 1."""
        if not self._rounds:
            return None
        return self._rounds[-1].logits[frame].float().argmax(dim=0)

    def _resample(self) -> GridResampler:
        if self._resampler is None:
            self._resampler = GridResampler(self.grid, self.working_size, (self.height, self.width))
        return self._resampler

    def _to_mask(self, logits: torch.Tensor, channels: Channels) -> np.ndarray:
        """(C, h, w) logits -> (H, W) uint8 ids at the original resolution."""
        # Round to float16 first, as the round's stored logits are: a mask computed while
        # propagating then equals the one recomputed later (after cache eviction, undo or load).
        upsampled = self._resample().to_frame(logits.to(torch.float16).float().cpu())
        # numpy's argmax over the leading axis is ~10x faster than torch.argmax(dim=0) on CPU at
        # 480p (9 vs 100 ms); both return the first maximum on ties.
        return channels.lookup_table()[upsampled.numpy().argmax(axis=0)]

    def _commit(self, pending: PendingRound, propagator: Propagator, cache: dict[int, np.ndarray],
                seconds: float) -> None:
        before = self._global if self._global is not None else propagator.fresh_global()
        propagator.global_memory.mark_written(len(pending.channels))
        record = RoundRecord(len(self._rounds), pending.annotation, pending.channels, pending.seconds + seconds,
                             propagator.logits, before, pending.augmented)
        self._rounds.append(record)
        self._global = propagator.global_memory
        self._channels = pending.channels
        self._mask_cache = cache
        self._pending = None
