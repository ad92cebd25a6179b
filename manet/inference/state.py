"""Typed state of a session: object channels, committed rounds, the pending round, and
:class:`SessionState`, everything a session has committed in one value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from manet.errors import FrameIndexError, ScribbleError, SessionStateError
from manet.inference.memory import GlobalMemory, LocalRound
from manet.inference.objects import ObjectInfo, ObjectRegistry
from manet.inference.scribbles import Annotation, make_annotation

# Version of :class:`SessionState`'s layout; 2 added the object list (names and colours).
STATE_VERSION = 2


@dataclass(frozen=True)
class Channels:
    """Mapping between user object ids and tensor channels.

    Invariant: ``ids[0] == 0`` (background); ids are distinct; a channel never changes its id,
    new objects are appended.
    """

    ids: tuple[int, ...] = (0,)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, object_id: int) -> int:
        return self.ids.index(object_id)

    def with_objects(self, object_ids: list[int]) -> Channels:
        new = [object_id for object_id in object_ids if object_id not in self.ids]
        return Channels(self.ids + tuple(new))

    def lookup_table(self) -> np.ndarray:
        """uint8 array mapping channel index -> object id."""
        return np.asarray(self.ids, dtype=np.uint8)


@dataclass(frozen=True)
class MatchingMaps:
    """What the memories hold for one frame and object, at the stride-4 grid, float32 in [0, 1]
    (0 = close to the object). A map is None when it does not exist for that frame."""

    global_map: np.ndarray
    local_map: np.ndarray | None
    augmented_map: np.ndarray | None


@dataclass
class RoundRecord:
    """One committed round.

    Attributes:
        index: 0-based round number.
        annotation: the user's scribbles of this round.
        channels: object channels after this round.
        seconds: wall-clock seconds of interact + propagation.
        logits: (T, C, h, w) float16 grid logits of every frame after this round.
        global_before: the global memory as it was before this round (for undo).
        augmented: (C, h, w) float32 augmented map of the interactive frame, or None.
    """

    index: int
    annotation: Annotation
    channels: Channels
    seconds: float
    logits: torch.Tensor
    global_before: GlobalMemory
    augmented: torch.Tensor | None

    @property
    def frame(self) -> int:
        return self.annotation.frame


@dataclass
class PendingRound:
    """A round between ``interact`` and the end of ``propagate``; nothing committed yet.

    Attributes:
        annotation: the scribbles.
        channels: object channels including objects new in this round.
        labels: (h, w) int16 grid of stroke ids (-1 = none), with the first-round ROI
            background filled in.
        logits: (C, h, w) float32 interaction-head logits of the interactive frame.
        augmented: (C, h, w) float32 augmented map at the stride-4 grid; None until propagation
            starts (or with the augmented map switched off).
        seconds: time spent in ``interact``.
        touchups: (h, w) bool stroke cells along the shown mask's edges
            (:func:`~manet.inference.interaction.touchup_cells`): they shape the interactive
            frame but are no references for the other frames. None: none.
    """

    annotation: Annotation
    channels: Channels
    labels: np.ndarray
    logits: torch.Tensor
    augmented: torch.Tensor | None
    seconds: float
    touchups: np.ndarray | None = None

    @property
    def frame(self) -> int:
        return self.annotation.frame


@dataclass(frozen=True)
class SessionState:
    """Everything a session has committed: what :meth:`Session.state` returns, what
    :meth:`Session.from_state` and the session files take.

    Tensors are shared with the session, not copied: treat them as read-only.

    Attributes:
        rounds: committed rounds, oldest first (``rounds[i].index == i``).
        local_rounds: the local memory's record of each round (``local_rounds[i]`` is round i's).
        channels: object channels after the last round (``Channels()`` before any round).
        objects: every object the session knows, sorted by id (names and colours).
        global_memory: the global memory after the last round; None before any round.
        version: :data:`STATE_VERSION` of the layout.

    Invariants (checked on construction, :class:`SessionStateError` otherwise): one local round
    per round; ``channels`` are the last round's; a global memory exists iff a round does; every
    channel's object is listed in ``objects``; each round's channels extend the previous round's.
    """

    rounds: tuple[RoundRecord, ...]
    local_rounds: tuple[LocalRound, ...]
    channels: Channels
    objects: tuple[ObjectInfo, ...]
    global_memory: GlobalMemory | None
    version: int = STATE_VERSION

    def __post_init__(self) -> None:
        if len(self.rounds) != len(self.local_rounds):
            raise SessionStateError(f"{len(self.rounds)} rounds but {len(self.local_rounds)} local-memory rounds")
        if [record.index for record in self.rounds] != list(range(len(self.rounds))):
            raise SessionStateError("round indices must be 0, 1, 2, ... in order")
        expected = self.rounds[-1].channels if self.rounds else Channels()
        if self.channels != expected:
            raise SessionStateError(f"channels {self.channels.ids} differ from the last round's {expected.ids}")
        if (self.global_memory is None) != (not self.rounds):
            raise SessionStateError("a global memory exists exactly when a round does")
        for earlier, later in zip(self.rounds, self.rounds[1:]):
            if later.channels.ids[:len(earlier.channels)] != earlier.channels.ids:
                raise SessionStateError(f"round {later.index}'s channels {later.channels.ids} do not extend "
                                        f"round {earlier.index}'s {earlier.channels.ids}")
        listed = {item.id for item in self.objects}
        missing = [object_id for object_id in self.channels.ids if object_id != 0 and object_id not in listed]
        if missing:
            raise SessionStateError(f"objects {missing} have channels but are not in the object list")
        if self.version != STATE_VERSION:
            raise SessionStateError(f"session state version {self.version}; this manet builds version "
                                    f"{STATE_VERSION}")
        try:
            ObjectRegistry(self.objects)
        except ValueError as error:
            raise SessionStateError(f"the object list is invalid: {error}") from error


def check_fits(state: SessionState, num_frames: int, height: int, width: int,
               grid: tuple[int, int] | None = None) -> None:
    """SessionStateError unless ``state``'s tensors and annotations fit a T x H x W video (and its
    embedding ``grid``, when known)."""
    for record in state.rounds:
        expected = (num_frames, len(record.channels), *(grid or record.logits.shape[2:]))
        if tuple(record.logits.shape) != expected:
            raise SessionStateError(f"round {record.index}'s logits have shape {tuple(record.logits.shape)}; "
                                    f"this video needs {expected}")
        annotation = record.annotation
        try:
            if annotation.scribbles or annotation.boxes or annotation.mask is not None:
                make_annotation(annotation.frame, [*annotation.scribbles, *annotation.boxes], num_frames, width,
                                height, mask=annotation.mask)
            elif not 0 <= annotation.frame < num_frames:
                raise FrameIndexError(f"frame {annotation.frame} is outside the video")
        except (ScribbleError, FrameIndexError) as error:
            raise SessionStateError(f"round {record.index}'s annotation does not fit this {num_frames}-frame "
                                    f"{width}x{height} video: {error}") from error
    if state.global_memory is not None and state.global_memory.maps.shape[0] != num_frames:
        raise SessionStateError(f"the global memory holds {state.global_memory.maps.shape[0]} frames, "
                                f"the video {num_frames}")
    for index, local in enumerate(state.local_rounds):
        outside = sorted(frame for pair in local.deferred.items() for frame in pair if not 0 <= frame < num_frames)
        if outside:
            raise SessionStateError(f"round {index}'s local memory refers to frames {outside} outside this "
                                    f"{num_frames}-frame video")
