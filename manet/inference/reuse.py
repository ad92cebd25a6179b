"""What every round recomputes the same way, kept for the next round.

Two per-frame results depend only on the video's embeddings, never on masks or scribbles:

* the propagation head's embedding stem (its first layer's share of the embedding), and
* the local distances between neighbouring frames (eq 1 for every pixel and window offset,
  the mask-free half of eq 4).

Round 1 computes them while it propagates; later rounds read them, so a later round costs the
global map of the new annotation, the mask half of eq 4 and the rest of the propagation head.
Both are kept up to a byte budget; past it they are recomputed each round (results are equal
either way, up to float16 storage of the distances).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from manet.model.matching import reverse_local_distances


class ReuseCache:
    """Stems by frame and local distances by pair of neighbouring frames, within ``budget_mb``.

    Distances of the pair (t, t + 1) are stored once, oriented with frame t + 1 as the target
    (what forward propagation reads); backward propagation reads the reversed view.
    """

    def __init__(self, budget_mb: float, window: int) -> None:
        self.budget_bytes = int(budget_mb * 2**20)
        self.window = window
        self.used_bytes = 0
        self._stems: dict[int, torch.Tensor] = {}
        self._distances: dict[int, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._stems) + len(self._distances)

    def clear(self) -> None:
        self._stems.clear()
        self._distances.clear()
        self.used_bytes = 0

    def stem(self, frame: int, compute: Callable[[], torch.Tensor | None]) -> torch.Tensor | None:
        """Frame ``frame``'s propagation stem, computed by ``compute`` on the first request."""
        cached = self._stems.get(frame)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        value = compute()
        if value is not None and self._fits(value):
            self._stems[frame] = value
        return value

    def distances(self, frame: int, previous: int, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """(P, h, w) local distances with ``frame`` as the target and its neighbour ``previous``
        as the reference; ``compute`` returns them in that orientation when they are not kept."""
        if abs(frame - previous) != 1:
            raise ValueError(f"local distances are kept for neighbouring frames only, got {frame} and {previous}")
        key = min(frame, previous)
        forward = frame > previous
        cached = self._distances.get(key)
        if cached is not None:
            self.hits += 1
            return cached if forward else reverse_local_distances(cached, self.window)
        self.misses += 1
        value = compute()
        stored = value.to(torch.float16)
        if self._fits(stored):
            self._distances[key] = stored if forward else reverse_local_distances(stored, self.window)
        return value

    def _fits(self, value: torch.Tensor) -> bool:
        size = value.numel() * value.element_size()
        if self.used_bytes + size > self.budget_bytes:
            return False
        self.used_bytes += size
        return True
