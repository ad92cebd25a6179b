"""The paper's two memories.

* :class:`GlobalMemory` (eq 3, eq 8): per frame and object channel, the running minimum of the
  global matching maps over rounds (the augmented map for the interactive frame). Initialised
  to 1 ("far from everything"). Stored float16 at the stride-4 grid.
* :class:`LocalMemory` (eq 5, eq 6): every round's local matching maps are recorded; a frame
  reads the map of the round whose interactive frame is nearest in time, among the last R rounds.
  A round whose propagation head does not read local maps (an untrained head) records only which
  frame each map would match (:attr:`LocalRound.deferred`); the map is computed when read.

Both are sized from the video and grow their channel count on demand. Channel indices are
tensor positions (0 = background); the session maps user object ids to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

STORAGE_DTYPE = torch.float16


class GlobalMemory:
    """Invariant: ``maps`` is (T, C, h, w) float16 in [0, 1]; ``written[c]`` tells whether channel c
    has ever been written (used when aggregation is switched off)."""

    def __init__(self, num_frames: int, grid: tuple[int, int], channels: int = 1,
                 device: torch.device | str = "cpu") -> None:
        self.maps = torch.ones((num_frames, channels, *grid), dtype=STORAGE_DTYPE, device=device)
        self.written = torch.zeros(channels, dtype=torch.bool)

    @classmethod
    def from_tensors(cls, maps: torch.Tensor, written: torch.Tensor) -> GlobalMemory:
        """A memory holding ``maps`` (T, C, h, w) float16 and ``written`` (C,) bool, adopted without
        a copy. Raises ValueError when they break the invariant."""
        if maps.dtype != STORAGE_DTYPE or maps.ndim != 4:
            raise ValueError(f"global memory maps must be (T, C, h, w) {STORAGE_DTYPE}, got {maps.dtype} "
                             f"{tuple(maps.shape)}")
        if written.dtype != torch.bool or tuple(written.shape) != (maps.shape[1],):
            raise ValueError(f"global memory 'written' must be ({maps.shape[1]},) bool, got {written.dtype} "
                             f"{tuple(written.shape)}")
        memory = cls(0, (0, 0), 0)
        memory.maps, memory.written = maps, written
        return memory

    @property
    def channels(self) -> int:
        return self.maps.shape[1]

    def grow(self, channels: int) -> None:
        """Make room for ``channels`` channels; new ones start at 1 (no annotation yet)."""
        extra = channels - self.channels
        if extra > 0:
            ones = torch.ones((self.maps.shape[0], extra, *self.maps.shape[2:]), dtype=STORAGE_DTYPE,
                              device=self.maps.device)
            self.maps = torch.cat([self.maps, ones], dim=1)
            self.written = torch.cat([self.written, torch.zeros(extra, dtype=torch.bool)])

    def write(self, frame: int, maps: torch.Tensor, aggregate: bool = True) -> None:
        """Eq 3 / eq 8: ``M[t] = min(M[t], maps)`` for channels 0..len(maps)-1.

        With ``aggregate=False`` (the paper's "no global memory" ablation) a channel keeps the
        first map ever written to it and later rounds leave it unchanged.
        """
        count = maps.shape[0]
        self.grow(count)
        current = self.maps[frame, :count]
        updated = torch.minimum(current, maps.to(STORAGE_DTYPE))
        if not aggregate:
            updated = torch.where(self.written[:count, None, None].to(current.device), current,
                                  maps.to(STORAGE_DTYPE))
        self.maps[frame, :count] = updated

    def mark_written(self, channels: int) -> None:
        """Call once a round has written every frame of ``channels`` channels."""
        self.grow(channels)
        self.written[:channels] = True

    def read(self, frame: int, channels: int) -> torch.Tensor:
        """(channels, h, w) float32 maps of a frame."""
        self.grow(channels)
        return self.maps[frame, :channels].float()

    def clone(self) -> GlobalMemory:
        return GlobalMemory.from_tensors(self.maps.clone(), self.written.clone())


@dataclass
class LocalRound:
    """Local maps recorded in one round.

    Attributes:
        interactive_frame: the round's scribbled frame.
        maps: frame -> (C, h2, w2) float16 at the pooled grid (or (C, h, w) in the authors' order).
        deferred: frame -> the frame it was propagated from, for maps not computed while the
            round ran: such a map is the frame matched to the round's mask of that frame, and
            :meth:`LocalMemory.read` computes it with the resolver it is given.
    """

    interactive_frame: int
    maps: dict[int, torch.Tensor] = field(default_factory=dict)
    deferred: dict[int, int] = field(default_factory=dict)

    def holds(self, frame: int) -> bool:
        """Whether the round has a local map of ``frame``, computed or deferred."""
        return frame in self.maps or frame in self.deferred


# (index of the round in LocalMemory.rounds, frame, frame it was propagated from) -> (C, h2, w2) map
LocalResolver = Callable[[int, int, int], torch.Tensor]


class LocalMemory:
    """Eq 5/6: record per round, read the nearest-annotated round among the last R rounds.

    Invariant: ``rounds[i]`` belongs to round i (0-based) of the session, in order.
    """

    def __init__(self, rounds: Iterable[LocalRound] = ()) -> None:
        self.rounds: list[LocalRound] = list(rounds)

    def begin_round(self, interactive_frame: int) -> None:
        self.rounds.append(LocalRound(interactive_frame))

    def discard_last_round(self) -> None:
        self.rounds.pop()

    def write(self, frame: int, maps: torch.Tensor) -> None:
        """Eq 5: record the current (last begun) round's local maps of ``frame``."""
        self.rounds[-1].maps[frame] = maps.to(STORAGE_DTYPE)
        self.rounds[-1].deferred.pop(frame, None)

    def defer(self, frame: int, previous: int) -> None:
        """Eq 5 without computing it: the current round's map of ``frame`` matches ``frame`` to
        the round's mask of ``previous``; :meth:`read` computes it when asked."""
        self.rounds[-1].deferred[frame] = previous
        self.rounds[-1].maps.pop(frame, None)

    def read(self, frame: int, memory_rounds: int, resolve: LocalResolver | None = None) -> torch.Tensor:
        """Eq 6: the map of ``frame`` from the round, among the last ``memory_rounds`` that hold
        one, whose interactive frame is nearest to ``frame`` (ties go to the most recent round).

        Channels that an older round did not have yet are taken from the most recent round.
        Deferred maps are computed by ``resolve``; without one, a deferred map raises KeyError.
        Returns (C, h2, w2) float32 with C the channel count of the most recent map.
        """
        offset = max(0, len(self.rounds) - memory_rounds)
        candidates = [(index + offset, entry) for index, entry in enumerate(self.rounds[-memory_rounds:])
                      if entry.holds(frame)]
        if not candidates:
            raise KeyError(f"no local map recorded for frame {frame}")
        best_index, best = min(reversed(candidates), key=lambda pair: abs(frame - pair[1].interactive_frame))
        chosen = self._map(best_index, best, frame, resolve)
        newest_index, newest_entry = candidates[-1]
        if newest_index != best_index:
            newest = self._map(newest_index, newest_entry, frame, resolve)
            if chosen.shape[0] < newest.shape[0]:
                chosen = torch.cat([chosen, newest[chosen.shape[0]:]], dim=0)
        return chosen

    @staticmethod
    def _map(index: int, entry: LocalRound, frame: int, resolve: LocalResolver | None) -> torch.Tensor:
        if frame in entry.maps:
            return entry.maps[frame].float()
        if resolve is None:
            raise KeyError(f"round {index}'s local map of frame {frame} was deferred and no resolver was given")
        return resolve(index, frame, entry.deferred[frame]).to(STORAGE_DTYPE).float().cpu()  # as if stored

    def chosen_round(self, frame: int, memory_rounds: int) -> int | None:
        """Index of the round :meth:`read` would use for ``frame``'s older channels, or None."""
        offset = max(0, len(self.rounds) - memory_rounds)
        candidates = [(index + offset, entry) for index, entry in enumerate(self.rounds[-memory_rounds:])
                      if entry.holds(frame)]
        if not candidates:
            return None
        return min(reversed(candidates), key=lambda pair: abs(frame - pair[1].interactive_frame))[0]
