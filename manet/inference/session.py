"""``Session``: one video's embeddings, memories, rounds, objects and masks, and the verbs that change them.

A round is ``interact`` (the interaction head on the scribbled frame, mask back at once) then
``propagate`` (forward to the last frame, then backward to the first, or over a range, through
the propagation head and both memories). The round commits only when propagation has visited
every frame of its range; cancelling leaves the session exactly as it was before ``interact``.
Rounds and object deletions are the undoable steps. :meth:`Session.state` is everything the
session has committed, as one typed value; :meth:`Session.from_state` rebuilds a session from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from manet.config import SessionConfig
from manet.errors import FrameIndexError, PropagationCancelled, SessionStateError
from manet.inference import interaction, persistence
from manet.inference.device import encoder_size_for, pick_device, working_size_for
from manet.inference.embeddings import EmbeddingStore, ProgressCallback, autocast_context
from manet.inference.history import History
from manet.inference.inputs import ScribbleInput, to_annotation
from manet.inference.inspection import least_confident_frame, matching_maps
from manet.inference.masks import MaskCache
from manet.inference.objects import ObjectInfo
from manet.inference.propagation import Direction, LocalMatcher, Propagator, local_resolver, propagation_order
from manet.inference.refine import EDGE_REFERENCE_SIZE, EdgeSnapper, GuidedUpsampler
from manet.inference.resample import GridResampler
from manet.inference.reuse import ReuseCache
from manet.inference.scribbles import Annotation, make_annotation
from manet.inference.state import MatchingMaps, PendingRound, RoundRecord, SessionState, check_fits
from manet.inference.transaction import RoundTransaction
from manet.io.video import VideoSource
from manet.model.network import MANet

CancelCallback = Callable[[], bool]


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
        # The frames the encoder sees (SessionConfig.encoder_size), never larger than the video.
        self.encoder_size = encoder_size_for(self.video.height, self.video.width, self.working_size,
                                             self.config.encoder_size)
        self.embeddings = EmbeddingStore(self.video, self.model, self.working_size, self.device,
                                         self.config.precision, self.config.embedding_budget_mb,
                                         mirror=self.config.mirror_embedding,
                                         encoder_size=self.encoder_size)
        # Stems and neighbour distances: the same in every round, so round 1 leaves them behind.
        self.reuse = ReuseCache(self.config.reuse_budget_mb, self.config.window)
        self.last_propagation_seconds: dict[str, float] = {}  # wall time per part of the last round
        self._resampler: GridResampler | None = None
        self._refiner: GuidedUpsampler | None = None
        self._snapper: EdgeSnapper | None = None
        self.mask_cache = MaskCache((self.height, self.width), self._resample, refiner=self._refine,
                                    frames=self.video.frame, snapper=self._snap)
        self._propagating = False  # a propagate() generator is between its first step and its end
        self._pending: PendingRound | None = None
        self._history = History()  # everything committed, and the undo steps

    # ----------------------------------------------------------------- state
    def state(self) -> SessionState:
        """Everything committed (rounds, memories, channels, objects); tensors shared, not copied."""
        return self._history.state()

    @classmethod
    def from_state(cls, model: MANet, video: Any, state: SessionState,
                   config: SessionConfig | None = None) -> Session:
        """A session on ``video`` holding ``state`` (from :meth:`state` of a session on the same
        video). Its undo steps are its rounds. Raises :class:`SessionStateError` when the state's
        tensors or annotations do not fit the video."""
        session = cls(model, video, config)
        session._adopt(state)
        return session

    def save(self, folder: str | os.PathLike[str], *, include_embeddings: bool = True) -> Path:
        """Write the whole session (embeddings, memories, rounds, objects) to ``folder`` atomically."""
        return persistence.save_session(self, folder, include_embeddings=include_embeddings)

    @classmethod
    def load(cls, folder: str | os.PathLike[str], model: MANet, video: Any = None,
             config: SessionConfig | None = None) -> Session:
        """A session saved by :meth:`save`; checks that the video and the model match (else
        SessionFileError, as for unknown formats, damaged files or another working size)."""
        saved = persistence.read_session(folder, model, video, config)
        session = cls(model, saved.video, saved.config)
        if saved.embeddings is not None:
            session.embeddings.restore(*saved.embeddings)
        session._adopt(saved.state)
        return session

    @property
    def is_propagating(self) -> bool:
        """True while a ``propagate()`` generator has started and not finished, failed or closed."""
        return self._propagating

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
        """Object ids (> 0) that committed rounds hold a channel for, in order of appearance."""
        return [object_id for object_id in self._history.channels.ids if object_id != 0]

    @property
    def objects(self) -> tuple[ObjectInfo, ...]:
        """Every object the session knows (added, or introduced by a committed round), sorted by id."""
        return self._history.objects.items

    @property
    def rounds(self) -> list[RoundRecord]:
        return list(self._history.rounds)

    @property
    def pending(self) -> PendingRound | None:
        return self._pending

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo and not self._propagating

    @property
    def annotated_frames(self) -> list[int]:
        return [record.frame for record in self._history.rounds]

    @property
    def masks(self) -> np.ndarray:
        """(T, H, W) uint8 object ids of the last committed round (zeros before any round)."""
        result = np.zeros((self.num_frames, self.height, self.width), dtype=np.uint8)
        if self._history.rounds:
            for frame in range(self.num_frames):
                result[frame] = self.mask(frame)
        return result

    @property
    def confidence(self) -> np.ndarray:
        """(T,) float32 mean max-softmax probability per frame of the last round (0 before any)."""
        if not self._history.rounds:
            return np.zeros(self.num_frames, dtype=np.float32)
        probabilities = self._history.rounds[-1].logits.float().softmax(dim=1)
        return probabilities.amax(dim=1).mean(dim=(1, 2)).numpy().astype(np.float32)

    def frame(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame ``index`` at the original resolution."""
        return self.video.frame(self._check_frame(index))

    def mask(self, index: int) -> np.ndarray:
        """(H, W) uint8 object ids of frame ``index`` after the last committed round."""
        index = self._check_frame(index)
        if not self._history.rounds:
            return np.zeros((self.height, self.width), dtype=np.uint8)
        cached = self.mask_cache.get(index)
        if cached is None:
            fixed = self.fixed_frames().get(index)
            record = self._history.rounds[-1]
            cached = np.array(fixed) if fixed is not None else self.mask_cache.to_mask(record.logits[index].float(),
                                                                                        record.channels, index)
            self.mask_cache.keep(index, cached)
        return cached

    def fixed_frames(self) -> dict[int, np.ndarray]:
        """Frames whose result is a user-given mask (latest committed wins): frame -> (H, W) ids."""
        return self._history.fixed_frames()

    # ----------------------------------------------------------------- objects
    def add_object(self, name: str | None = None, color: str | None = None,
                   object_id: int | None = None) -> ObjectInfo:
        """List a new object: the smallest free id unless ``object_id`` (1..255) is given; ``name``
        defaults to ``object <id>``, ``color`` (``#rrggbb``) to the palette's. ValueError on a taken
        id or a bad name or colour."""
        return self._history.add_object(name, color, object_id)

    def rename_object(self, object_id: int, name: str) -> ObjectInfo:
        """Give an object a new display name (UnknownObjectError, ValueError on an empty name)."""
        return self._history.edit_object(object_id, name=name)

    def recolor_object(self, object_id: int, color: str) -> ObjectInfo:
        """Give an object a new ``#rrggbb`` colour (UnknownObjectError, ValueError on a bad colour)."""
        return self._history.edit_object(object_id, color=color)

    def delete_object(self, object_id: int) -> None:
        """Remove an object: its channel leaves both memories and every committed round's logits
        and masks, its prompts leave every round's annotation. A new undoable step; a pending
        round is dropped. Raises UnknownObjectError for an id not in :attr:`objects`."""
        self._check_idle("delete an object")
        self._history.delete_object(object_id)
        self._pending = None
        self.mask_cache.clear()

    # ----------------------------------------------------------------- rounds
    def prepare(self, progress: ProgressCallback | None = None, stop: CancelCallback | None = None) -> bool:
        """Compute every frame's embedding now (otherwise they are computed on first use).

        May run on a background thread while this session is used: ``interact`` and
        ``propagate`` embed the frames they need at once, before the next preparation batch,
        and no frame is embedded twice. ``stop()`` is asked between batches; True ends the
        preparation early (call again to resume). Returns True when every frame is embedded.
        """
        for done, total in self.embeddings.iter_prepare():
            if progress is not None:
                progress(done, total)
            if stop is not None and stop():
                break
        return bool(self.embeddings.computed.all())

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
        annotation = to_annotation(scribbles, frame, self.num_frames, self.width, self.height)
        return self._start_round(annotation, started)

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

    def propagate(self, cancel: CancelCallback | None = None, *, start: int | None = None, stop: int | None = None,
                  direction: Direction = "both") -> Iterator[tuple[int, np.ndarray]]:
        """Propagate the pending round: forward to ``stop``, then backward to ``start``.

        Only frames in [``start``, ``stop``] (inclusive; defaults 0 and T-1, must hold the
        interactive frame) are recomputed, in ``direction`` ("both", "forward" or "backward")
        from the interactive frame; every other frame keeps its mask (the committed round's
        logits there are the previous round's). Yields ``(frame_index, (H, W) uint8 ids)`` per
        frame as it is computed. When the generator is exhausted the round is committed. If
        ``cancel()`` returns True between frames, :class:`PropagationCancelled` is raised; if the
        generator is closed early, the pending round is dropped the same way: committed masks
        and memories stay as they were. Range errors (FrameIndexError, ValueError) are raised on
        the first step, before anything changes.
        """
        if self._pending is None:
            raise SessionStateError("nothing to propagate: call interact(scribbles) first to start a round")
        self._check_idle("propagate again")
        pending = self._pending
        order = propagation_order(pending.frame, self.num_frames, start, stop, direction)
        started = time.perf_counter()
        fixed = {frame: mask for frame, mask in self.fixed_frames().items() if frame != pending.frame}
        if self.config.augmented_map and pending.augmented is None:
            with torch.inference_mode():
                pending.augmented = interaction.augmented_for_round(self.embeddings.get(pending.frame), pending,
                                                                    (self.height, self.width), self.config)
        # Masks of frames the round does not visit stay valid: their ids come from the same logits.
        new_cache = {**self.mask_cache.subset(set(range(self.num_frames)) - {f for f, _ in order}),
                     pending.frame: self._pending_mask(pending)}
        previous = self._history.rounds[-1].logits if self._history.rounds else None
        transaction = RoundTransaction(pending, self._history.global_memory, self._history.local, previous,
                                       self.num_frames, self.grid, self.config.round_fusion,
                                       self.config.fusion_power, self.annotated_frames)
        self._propagating = True
        try:
            propagator = Propagator(self.model, self.embeddings, self.config, transaction, order, fixed, self.reuse,
                                    [record.logits for record in self._history.rounds])
            for index, logits in propagator.run(self.device):
                if cancel is not None and cancel():
                    raise PropagationCancelled(
                        f"propagation cancelled at frame {index}; the session keeps round "
                        f"{len(self._history.rounds)}'s result")
                mask = (np.array(fixed[index]) if index in fixed
                        else self.mask_cache.to_mask(logits, pending.channels, index))
                if len(new_cache) < self.mask_cache.capacity:
                    new_cache[index] = mask
                yield index, mask
            self.last_propagation_seconds = dict(propagator.seconds)
            self._commit(transaction, new_cache, time.perf_counter() - started)
        finally:
            self._propagating = False
            if transaction.is_open:
                transaction.rollback()
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

    def undo(self) -> None:
        """Undo the last step (a committed round or an object deletion); drops a pending round.

        After a round's undo, masks and memories are those of the step before. Objects a round
        introduced stay listed. Raises :class:`SessionStateError` when there is nothing to undo.
        """
        self._check_idle("undo")
        self._history.undo()
        self._pending = None
        self.mask_cache.clear()

    def undo_round(self) -> None:
        """Alias of :meth:`undo` (kept for scripts written before object deletion was undoable)."""
        self.undo()

    def reset(self) -> None:
        """Forget every round, scribble, memory and undo step; keep the objects and the embeddings."""
        self._check_idle("reset")
        self._pending = None
        self._history.reset()
        self.mask_cache.clear()

    def discard_pending(self) -> None:
        """Forget the scribbles of a round that was not propagated."""
        self._pending = None

    def maps(self, frame: int, object_id: int, *, local: bool = True) -> MatchingMaps:
        """The global, local and augmented maps the memories hold for a frame and object.

        All (h, w) float32 in [0, 1] at the stride-4 grid (see :meth:`upsample_map`). The
        local map is the one eq 6 reads (nearest annotated round among the last R); the
        augmented map exists only for frames that were scribbled. Rounds whose propagation
        head does not read the local map defer it, so asking for it computes it (tens of
        milliseconds a frame at 480p); ``local=False`` skips it and leaves ``local_map`` None.
        """
        frame = self._check_frame(frame)
        grid = self.grid if self._history.rounds else (0, 0)
        state = self.state()
        resolve = local_resolver(LocalMatcher(self.embeddings, self.config, self.reuse),
                                 [record.logits for record in state.rounds])
        return matching_maps(state, self.config, grid, frame, object_id, resolve, local=local)

    def upsample_map(self, grid_map: np.ndarray) -> np.ndarray:
        """A (h, w) grid map resized to the video's (H, W), float32."""
        tensor = torch.from_numpy(np.asarray(grid_map, dtype=np.float32))[None]
        return self._resample().to_frame(tensor)[0].numpy()

    def suggest_frame(self) -> int:
        """The least confident frame not annotated yet (needs no ground truth)."""
        if not self._history.rounds:
            raise SessionStateError("run a first round before asking which frame to correct")
        return least_confident_frame(self.confidence, self.annotated_frames)

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

    def _start_round(self, annotation: Annotation, started: float) -> np.ndarray:
        channels = self._history.channels.with_objects([i for i in annotation.object_ids if i != 0])
        rounds = self._history.rounds
        previous = rounds[-1].logits[annotation.frame].float().argmax(dim=0) if rounds else None
        touching_up = rounds and annotation.mask is None and self.config.touchup_reach > 0
        shown = self.mask(annotation.frame) if touching_up else None
        with torch.inference_mode(), autocast_context(self.device, self.config.precision):
            result = interaction.run(self.model, self.embeddings.get(annotation.frame), annotation,
                                     channels, previous, first_round=not rounds,
                                     frame_size=(self.height, self.width), config=self.config, shown=shown)
        self._pending = PendingRound(annotation, channels, result.labels, result.logits.float(), None, 0.0,
                                     result.touchups)
        mask = self._pending_mask(self._pending)
        self._pending.seconds = time.perf_counter() - started
        return mask

    def _pending_mask(self, pending: PendingRound) -> np.ndarray:
        mask = pending.annotation.mask
        return np.array(mask) if mask is not None else self.mask_cache.to_mask(pending.logits, pending.channels,
                                                                                  pending.frame)

    def _resample(self) -> GridResampler:
        if self._resampler is None:
            self._resampler = GridResampler(self.grid, self.working_size, (self.height, self.width))
        return self._resampler

    def _refine(self) -> GuidedUpsampler | None:
        """The edge-aware upsampler of masks (``SessionConfig.refine_radius``), None when off."""
        if self._refiner is None and self.config.refine_radius > 0:
            self._refiner = GuidedUpsampler(self.grid, self.working_size, (self.height, self.width),
                                            self.config.refine_radius, self.config.refine_eps, self._resample())
        return self._refiner

    def _snap(self) -> EdgeSnapper | None:
        """The masks' final edge snapping (``SessionConfig.edge_radius``), None when off."""
        if self._snapper is None and self.config.edge_radius > 0:
            scale = min(self.height, self.width) / EDGE_REFERENCE_SIZE
            self._snapper = EdgeSnapper(max(1, round(self.config.edge_radius * scale)), self.config.edge_eps,
                                        subsample=max(1, round(2 * scale)))
        return self._snapper

    def _commit(self, transaction: RoundTransaction, masks: dict[int, np.ndarray], seconds: float) -> None:
        self._history.commit(*transaction.commit(len(self._history.rounds), seconds))
        self.mask_cache.replace(masks)
        self._pending = None

    def _adopt(self, state: SessionState) -> None:
        known_grid = self.grid if self.embeddings.export() is not None else None  # never embeds a frame
        check_fits(state, self.num_frames, self.height, self.width, known_grid)
        self._history.adopt(state)
        self.mask_cache.clear()
