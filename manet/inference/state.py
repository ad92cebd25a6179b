"""Typed state of a session: object channels, committed rounds, the pending round."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from manet.inference.memory import GlobalMemory
from manet.inference.scribbles import Annotation


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
    """

    annotation: Annotation
    channels: Channels
    labels: np.ndarray
    logits: torch.Tensor
    augmented: torch.Tensor | None
    seconds: float

    @property
    def frame(self) -> int:
        return self.annotation.frame
