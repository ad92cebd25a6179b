"""``History``: a session's committed state and its undo steps, with one writer.

Everything a round, an object edit, a deletion, an undo or a reset changes in the committed
state goes through this class: the rounds, the global memory, the local memory's committed
records, the channels, the object list and the undo steps. The session adds what is not
committed (the pending round, a running propagation) and the caches derived from this state.
"""

from __future__ import annotations

import numpy as np

from manet.errors import SessionStateError
from manet.inference.deletion import RemovedObject, remove_object, restore_object
from manet.inference.memory import GlobalMemory, LocalMemory
from manet.inference.objects import ObjectInfo, ObjectRegistry, check_color, check_name, check_object_id
from manet.inference.state import Channels, RoundRecord, SessionState


class History:
    """Committed rounds, memories, channels and objects, and the steps :meth:`undo` takes back.

    Invariants: the steps hold one ``None`` per committed round, in order, and one
    :class:`RemovedObject` per undoable deletion; ``local.rounds[:len(rounds)]`` are the
    committed records (a running round appends one more through its transaction).
    """

    def __init__(self) -> None:
        self.rounds: list[RoundRecord] = []
        self.channels = Channels()
        self.global_memory: GlobalMemory | None = None
        self.local = LocalMemory()
        self.objects = ObjectRegistry()
        self._steps: list[RemovedObject | None] = []  # None: a committed round

    @property
    def can_undo(self) -> bool:
        return bool(self._steps)

    def state(self) -> SessionState:
        committed = len(self.rounds)
        return SessionState(tuple(self.rounds), tuple(self.local.rounds[:committed]), self.channels,
                            self.objects.items, self.global_memory)

    def fixed_frames(self) -> dict[int, np.ndarray]:
        """Frames whose result is a user-given mask (latest committed wins): frame -> (H, W) ids."""
        fixed: dict[int, np.ndarray] = {}
        for record in self.rounds:
            if record.annotation.mask is not None:
                fixed[record.frame] = record.annotation.mask
            else:
                fixed.pop(record.frame, None)
        return fixed

    def adopt(self, state: SessionState) -> None:
        """Take ``state``; its rounds become the undo steps."""
        self._apply(state)
        self._steps = [None] * len(state.rounds)

    def commit(self, record: RoundRecord, memory: GlobalMemory) -> None:
        """Append a round (its local record is already in :attr:`local`) and list its new objects."""
        if record.index != len(self.rounds) or len(self.local.rounds) != len(self.rounds) + 1:
            raise SessionStateError(f"round {record.index} does not follow the {len(self.rounds)} committed rounds")
        self.rounds.append(record)
        self.global_memory = memory
        self.channels = record.channels
        self.objects = self.objects.ensure(record.channels.ids)
        self._steps.append(None)

    def add_object(self, name: str | None, color: str | None, object_id: int | None) -> ObjectInfo:
        new_id = self.objects.free_id() if object_id is None else check_object_id(object_id)
        default = ObjectInfo.default(new_id)
        info = ObjectInfo(new_id, default.name if name is None else check_name(name),
                          default.color if color is None else check_color(color))
        self.objects = self.objects.with_object(info)
        return info

    def edit_object(self, object_id: int, name: str | None = None, color: str | None = None) -> ObjectInfo:
        old = self.objects.get(object_id)
        info = ObjectInfo(object_id, old.name if name is None else check_name(name),
                          old.color if color is None else check_color(color))
        self.objects = self.objects.replaced(info)
        return info

    def delete_object(self, object_id: int) -> None:
        state, removed = remove_object(self.state(), object_id)
        self._apply(state)
        self._steps.append(removed)

    def undo(self) -> None:
        if not self._steps:
            raise SessionStateError("there is nothing to undo")
        step = self._steps.pop()
        if step is not None:
            self._apply(restore_object(self.state(), step))
            return
        record = self.rounds.pop()
        self.global_memory = record.global_before if self.rounds else None
        del self.local.rounds[len(self.rounds):]
        self.channels = self.rounds[-1].channels if self.rounds else Channels()

    def reset(self) -> None:
        """Forget rounds, memories and steps; keep the objects."""
        self.adopt(SessionState((), (), Channels(), self.objects.items, None))

    def _apply(self, state: SessionState) -> None:
        self.rounds = list(state.rounds)
        self.local = LocalMemory(state.local_rounds)
        self.channels = state.channels
        self.objects = ObjectRegistry(state.objects)
        self.global_memory = state.global_memory
