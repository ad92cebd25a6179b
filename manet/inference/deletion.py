"""Deleting an object from a :class:`SessionState`, and putting it back exactly (undo).

An object's channel sits at the same tensor position in every round that has it (channels are
appended, never reordered). Deleting takes that position out of every round's logits, augmented
map, global-memory-before copy and local maps, out of the current global memory, and the
object's prompts out of every round's annotation (its mask pixels become background). What was
taken out is kept in a :class:`RemovedObject`, a slice per tensor rather than whole copies, so
an undoable deletion costs one channel's worth of memory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from manet.errors import SessionStateError
from manet.inference.memory import GlobalMemory, LocalRound
from manet.inference.objects import ObjectInfo, ObjectRegistry
from manet.inference.scribbles import Annotation
from manet.inference.state import Channels, RoundRecord, SessionState

TensorSlice = torch.Tensor | None  # None: the tensor had no such channel


@dataclass(frozen=True)
class RemovedGlobal:
    maps: torch.Tensor  # (T, h, w) float16
    written: torch.Tensor  # () bool


@dataclass(frozen=True)
class RemovedRound:
    """One round's share of a deleted channel (None where the round did not have it)."""

    channels: Channels
    annotation: Annotation
    logits: TensorSlice
    augmented: TensorSlice
    global_before: RemovedGlobal | None
    local: dict[int, torch.Tensor]  # frame -> (h2, w2) float16


@dataclass(frozen=True)
class RemovedObject:
    """Everything :func:`remove_object` took out of a state."""

    info: ObjectInfo
    channel: int | None  # None: the object had no channel (listed, never segmented)
    rounds: tuple[RemovedRound, ...]
    global_memory: RemovedGlobal | None


def remove_object(state: SessionState, object_id: int) -> tuple[SessionState, RemovedObject]:
    """``state`` without object ``object_id``, and what was removed (for :func:`restore_object`).

    Raises:
        UnknownObjectError: ``object_id`` is not in ``state.objects``.
    """
    info = ObjectRegistry(state.objects).get(object_id)
    objects = ObjectRegistry(state.objects).without(object_id).items
    if object_id not in state.channels.ids:
        return dataclasses.replace(state, objects=objects), RemovedObject(info, None, (), None)
    channel = state.channels.index(object_id)
    rounds, removed_rounds = [], []
    for record, local in zip(state.rounds, state.local_rounds):
        new_record, new_local, removed = _remove_from_round(record, local, channel, object_id)
        rounds.append(new_record)
        removed_rounds.append((new_local, removed))
    memory, removed_global = _remove_from_global(state.global_memory, channel)
    new_state = SessionState(tuple(rounds), tuple(local for local, _ in removed_rounds),
                             rounds[-1].channels, objects, memory)
    return new_state, RemovedObject(info, channel, tuple(removed for _, removed in removed_rounds), removed_global)


def restore_object(state: SessionState, removed: RemovedObject) -> SessionState:
    """Undo :func:`remove_object`: ``state`` must be the state it returned."""
    registry = ObjectRegistry(state.objects)
    if removed.info.id in registry.ids:  # the id was listed again since; that listing has no channel yet
        if removed.info.id in state.channels.ids:
            raise SessionStateError(f"object {removed.info.id} has a channel again; undo the later rounds first")
        registry = registry.without(removed.info.id)
    objects = registry.with_object(removed.info).items
    if removed.channel is None:
        return dataclasses.replace(state, objects=objects)
    channel = removed.channel
    rounds, locals_ = [], []
    for record, local, taken in zip(state.rounds, state.local_rounds, removed.rounds, strict=True):
        before = record.global_before
        if taken.global_before is not None:
            before = _insert_global(before, channel, taken.global_before)
        rounds.append(dataclasses.replace(
            record, annotation=taken.annotation, channels=taken.channels,
            logits=_insert(record.logits, 1, channel, taken.logits),
            augmented=None if record.augmented is None else _insert(record.augmented, 0, channel, taken.augmented),
            global_before=before))
        maps = {frame: _insert(value, 0, channel, taken.local.get(frame)) for frame, value in local.maps.items()}
        locals_.append(LocalRound(local.interactive_frame, maps, dict(local.deferred)))
    memory = state.global_memory
    if memory is not None and removed.global_memory is not None:
        memory = _insert_global(memory, channel, removed.global_memory)
    return SessionState(tuple(rounds), tuple(locals_), rounds[-1].channels, objects, memory)


def _remove_from_round(record: RoundRecord, local: LocalRound, channel: int,
                       object_id: int) -> tuple[RoundRecord, LocalRound, RemovedRound]:
    logits, logits_slice = _take(record.logits, 1, channel)
    augmented, augmented_slice = _take(record.augmented, 0, channel)
    before, before_slice = _remove_from_global(record.global_before, channel)
    maps: dict[int, torch.Tensor] = {}
    local_slices: dict[int, torch.Tensor] = {}
    for frame, value in local.maps.items():
        kept, taken = _take(value, 0, channel)
        assert kept is not None
        maps[frame] = kept
        if taken is not None:
            local_slices[frame] = taken
    channels = Channels(tuple(i for i in record.channels.ids if i != object_id))
    assert logits is not None and before is not None
    new_record = dataclasses.replace(record, annotation=without_object(record.annotation, object_id),
                                     channels=channels, logits=logits, augmented=augmented, global_before=before)
    removed = RemovedRound(record.channels, record.annotation, logits_slice, augmented_slice, before_slice,
                           local_slices)
    # Deferred maps come from the round's logits, which lose the channel with the rest.
    return new_record, LocalRound(local.interactive_frame, maps, dict(local.deferred)), removed


def without_object(annotation: Annotation, object_id: int) -> Annotation:
    """``annotation`` without the prompts of ``object_id``; its mask pixels become background.

    The result may hold no prompt at all (a round that only scribbled the deleted object).
    """
    mask = annotation.mask
    if mask is not None and np.any(mask == object_id):
        mask = np.where(mask == object_id, 0, mask).astype(np.uint8)
        mask.setflags(write=False)
    return Annotation(annotation.frame, tuple(s for s in annotation.scribbles if s.object_id != object_id),
                      tuple(b for b in annotation.boxes if b.object_id != object_id), mask)


def _remove_from_global(memory: GlobalMemory | None, channel: int) -> tuple[GlobalMemory | None,
                                                                             RemovedGlobal | None]:
    if memory is None or channel >= memory.channels:
        return memory, None
    maps, maps_slice = _take(memory.maps, 1, channel)
    written, written_slice = _take(memory.written, 0, channel)
    assert maps is not None and written is not None and maps_slice is not None and written_slice is not None
    return GlobalMemory.from_tensors(maps, written), RemovedGlobal(maps_slice, written_slice)


def _insert_global(memory: GlobalMemory, channel: int, removed: RemovedGlobal) -> GlobalMemory:
    return GlobalMemory.from_tensors(_insert(memory.maps, 1, channel, removed.maps),
                                     _insert(memory.written, 0, channel, removed.written))


def _take(tensor: torch.Tensor | None, dim: int, index: int) -> tuple[torch.Tensor | None, TensorSlice]:
    """(``tensor`` without position ``index`` along ``dim``, that position) or unchanged and None."""
    if tensor is None or index >= tensor.shape[dim]:
        return tensor, None
    kept = torch.cat([tensor.narrow(dim, 0, index), tensor.narrow(dim, index + 1, tensor.shape[dim] - index - 1)],
                     dim=dim)
    return kept, tensor.select(dim, index).clone()


def _insert(tensor: torch.Tensor, dim: int, index: int, value: TensorSlice) -> torch.Tensor:
    """Inverse of :func:`_take`."""
    if value is None:
        return tensor
    return torch.cat([tensor.narrow(dim, 0, index), value.unsqueeze(dim),
                      tensor.narrow(dim, index, tensor.shape[dim] - index)], dim=dim)
