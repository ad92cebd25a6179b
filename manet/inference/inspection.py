"""Looking into a session: what the memories hold for a frame and object (``Session.maps``), and
which frame to correct next (``Session.suggest_frame``)."""

from __future__ import annotations

import numpy as np

from manet.config import SessionConfig
from manet.errors import SessionStateError, UnknownObjectError
from manet.inference.memory import LocalMemory, LocalResolver
from manet.inference.state import MatchingMaps, SessionState
from manet.model.matching import upsample_maps


def matching_maps(state: SessionState, config: SessionConfig, grid: tuple[int, int], frame: int,
                  object_id: int, resolve: LocalResolver | None = None, local: bool = True) -> MatchingMaps:
    """The global, local and augmented maps of ``frame`` and ``object_id`` in ``state``.

    The local map is the one eq 6 reads with ``config``'s switches (nearest annotated round among
    the last R, or the last round alone with the local memory off), computed by ``resolve`` when
    its round deferred it (without a resolver such a map is None); with ``local=False`` it is not
    looked up at all (None). The augmented map exists only for scribbled frames (the latest
    round that scribbled ``frame`` wins).
    """
    if not state.rounds or state.global_memory is None:
        raise SessionStateError("no round has run yet: maps exist after the first run_round/propagate")
    if object_id not in state.channels.ids:
        raise UnknownObjectError(
            f"object {object_id} has not been scribbled yet; known ids: {list(state.channels.ids)}"
        )
    channel = state.channels.index(object_id)
    global_map = state.global_memory.read(frame, len(state.channels))[channel].numpy()
    local_map = _local_map(state, config, grid, frame, channel, resolve) if local else None
    augmented_map = None
    for record in reversed(state.rounds):
        if record.frame == frame and record.augmented is not None and channel < record.augmented.shape[0]:
            augmented_map = record.augmented[channel].numpy()
            break
    return MatchingMaps(global_map, local_map, augmented_map)


def _local_map(state: SessionState, config: SessionConfig, grid: tuple[int, int], frame: int, channel: int,
               resolve: LocalResolver | None) -> np.ndarray | None:
    rounds = config.memory_rounds if config.local_memory else 1
    try:
        local = LocalMemory(state.local_rounds).read(frame, rounds, resolve)
    except KeyError:
        return None
    if channel >= local.shape[0]:
        return None
    return upsample_maps(local[channel:channel + 1], grid)[0].numpy()


def least_confident_frame(confidence: np.ndarray, annotated_frames: list[int]) -> int:
    """Index of the lowest ``confidence`` among frames not annotated yet (among all when every
    frame was annotated)."""
    candidates = confidence.astype(np.float64)
    candidates[annotated_frames] = np.inf
    if np.all(np.isinf(candidates)):
        return int(np.argmin(confidence))
    return int(np.argmin(candidates))
