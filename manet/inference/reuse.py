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


class _SlotPool:
    """Equal-shaped tensors kept in one preallocated block, so long-lived entries do not pin
    pieces of the allocator's heap between short-lived temporaries (which grew a 2000-frame
    session's resident memory by gigabytes). The block is reserved on the first entry; pages
    count towards resident memory only once written."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.block: torch.Tensor | None = None
        self.shape: tuple[int, ...] = ()
        self.channels_last = False
        self.slots: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def used_bytes(self) -> int:
        return 0 if self.block is None else len(self.slots) * self.block[0].numel() * self.block.element_size()

    def get(self, key: int) -> torch.Tensor | None:
        slot = self.slots.get(key)
        return None if slot is None or self.block is None else self._view(self.block[slot])

    def put(self, key: int, value: torch.Tensor) -> bool:
        """Keep ``value`` under ``key`` if a slot is free; False when the budget is used up."""
        if self.block is None:
            count = self.budget_bytes // max(1, value.numel() * value.element_size())
            if count == 0:
                return False
            # (N, C, H, W) channels-last entries are stored as (N, H, W, C), so they come back
            # channels-last (the heads' fast layout).
            self.channels_last = (value.ndim == 4 and not value.is_contiguous()
                                  and value.is_contiguous(memory_format=torch.channels_last))
            shape = (value.shape[0], *value.shape[2:], value.shape[1]) if self.channels_last else tuple(value.shape)
            self.block = torch.empty((count, *shape), dtype=value.dtype, device=value.device)
            self.shape = tuple(value.shape)
        if tuple(value.shape) != self.shape or len(self.slots) >= self.block.shape[0]:
            return False
        slot = len(self.slots)
        self._view(self.block[slot]).copy_(value)
        self.slots[key] = slot
        return True

    def _view(self, stored: torch.Tensor) -> torch.Tensor:
        return stored.permute(0, 3, 1, 2) if self.channels_last else stored


class ReuseCache:
    """Stems by frame and local distances by pair of neighbouring frames, within ``budget_mb``
    (half for each).

    Distances of the pair (t, t + 1) are stored once, oriented with frame t + 1 as the target
    (what forward propagation reads); backward propagation reads the reversed view.
    """

    def __init__(self, budget_mb: float, window: int) -> None:
        self.budget_bytes = int(budget_mb * 2**20)
        self.window = window
        self._stems = _SlotPool(self.budget_bytes // 2)
        self._distances = _SlotPool(self.budget_bytes // 2)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._stems) + len(self._distances)

    @property
    def used_bytes(self) -> int:
        return self._stems.used_bytes + self._distances.used_bytes

    def stem(self, frame: int, compute: Callable[[], torch.Tensor | None]) -> torch.Tensor | None:
        """Frame ``frame``'s propagation stem, computed by ``compute`` on the first request."""
        cached = self._stems.get(frame)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        value = compute()
        if value is not None:
            self._stems.put(frame, value)
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
        self._distances.put(key, stored if forward else reverse_local_distances(stored, self.window))
        return value
