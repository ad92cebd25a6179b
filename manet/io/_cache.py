"""A least-recently-used cache of decoded frames bounded by a byte budget."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DecodeStats:
    """Counters of a :class:`~manet.io.video.VideoSource`.

    Attributes:
        seeks: decoder repositionings (random access); sequential reads never seek.
        decoded: frames decoded to pixels (grab-only skips are not counted).
        cache_hits: ``frame(t)`` calls answered from the cache.
        cache_misses: ``frame(t)`` calls that had to decode.
        cached_frames: frames held now.
        cached_bytes: bytes held now; never above ``cache_budget_bytes``.
        cache_budget_bytes: the budget.
    """

    seeks: int
    decoded: int
    cache_hits: int
    cache_misses: int
    cached_frames: int
    cached_bytes: int
    cache_budget_bytes: int


class FrameCache:
    """Maps frame index -> array, evicting the least recently used beyond ``budget_bytes``.

    Invariant: ``bytes <= budget_bytes``; an array larger than the whole budget is not stored.
    Not thread-safe on its own: the owning source holds a lock around every call.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = max(0, int(budget_bytes))
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def get(self, index: int) -> np.ndarray | None:
        """The cached array for ``index`` (now most recently used), or ``None``."""
        frame = self._frames.get(index)
        if frame is None:
            self.misses += 1
            return None
        self.hits += 1
        self._frames.move_to_end(index)
        return frame

    def put(self, index: int, frame: np.ndarray) -> None:
        """Store ``frame`` as most recently used, evicting old entries to stay within budget."""
        if frame.nbytes > self.budget_bytes:
            return
        old = self._frames.pop(index, None)
        if old is not None:
            self.bytes -= old.nbytes
        while self._frames and self.bytes + frame.nbytes > self.budget_bytes:
            _, evicted = self._frames.popitem(last=False)
            self.bytes -= evicted.nbytes
        self._frames[index] = frame
        self.bytes += frame.nbytes

    def capacity(self, frame_bytes: int) -> int:
        """How many frames of ``frame_bytes`` bytes fit in the budget."""
        return self.budget_bytes // frame_bytes if frame_bytes > 0 else 0

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        self._frames.clear()
        self.bytes = 0

    def stats(self, *, seeks: int, decoded: int) -> DecodeStats:
        """Snapshot of the counters together with the decoder's ``seeks`` and ``decoded``."""
        return DecodeStats(seeks=seeks, decoded=decoded, cache_hits=self.hits, cache_misses=self.misses,
                           cached_frames=len(self._frames), cached_bytes=self.bytes,
                           cache_budget_bytes=self.budget_bytes)
