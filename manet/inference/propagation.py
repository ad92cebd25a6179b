"""The propagation branch of one round: from the interactive frame forward, then backward.

Works on copies: the committed global memory is cloned and the local memory records into the
round the session began for it, so a cancelled round leaves nothing behind.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import torch

from manet.config import SessionConfig
from manet.inference.embeddings import EmbeddingStore, autocast_context
from manet.inference.interaction import channel_indices, channel_masks, mask_to_grid, one_hot
from manet.inference.memory import GlobalMemory, LocalMemory
from manet.inference.reuse import ReuseCache
from manet.inference.state import PendingRound
from manet.model.matching import (
    evenly_subsampled,
    global_matching_map,
    local_distances,
    local_map_for_order,
    pool_embedding,
    upsample_maps,
)
from manet.model.network import MANet


class Propagator:
    """State of one round's propagation.

    Attributes:
        global_memory: working copy of the global memory, written frame by frame (eq 3, eq 8).
        logits: (T, C, h, w) float16 grid logits of this round; the interactive frame's come
            from the interaction head, the others are filled as propagation visits them.
    """

    def __init__(self, model: MANet, embeddings: EmbeddingStore, config: SessionConfig, pending: PendingRound,
                 committed_global: GlobalMemory | None, local_memory: LocalMemory,
                 fixed: dict[int, np.ndarray] | None = None, reuse: ReuseCache | None = None) -> None:
        self.model = model
        self.embeddings = embeddings
        self.config = config
        self.pending = pending
        self.channels = len(pending.channels)
        self.grid = embeddings.grid
        num_frames = embeddings.video.num_frames
        self.global_memory = committed_global.clone() if committed_global is not None else self.fresh_global()
        self.global_memory.grow(self.channels)
        self.local_memory = local_memory
        self.reuse = reuse if reuse is not None else ReuseCache(0.0, config.window)
        # Frames with a user-given mask keep it: their logits are that mask, never the head's.
        self.fixed = {frame: torch.from_numpy(channel_indices(mask_to_grid(mask, self.grid), pending.channels))
                      for frame, mask in (fixed or {}).items()}
        self.logits = torch.zeros((num_frames, self.channels, *self.grid), dtype=torch.float16)
        self.logits[pending.frame] = pending.logits.to(torch.float16)
        interactive = embeddings.get(pending.frame)
        masks = channel_masks(pending.labels, pending.channels, interactive.device)
        pixels = interactive.reshape(interactive.shape[0], -1).t()
        self.references = [evenly_subsampled(pixels[mask.reshape(-1)], config.max_reference_pixels)
                           for mask in masks]
        self.seconds: defaultdict[str, float] = defaultdict(float)  # wall time per part, for benchmarks
        self._write_interactive(interactive)

    def fresh_global(self) -> GlobalMemory:
        return GlobalMemory(self.embeddings.video.num_frames, self.embeddings.grid, 1)

    def order(self) -> list[tuple[int, int]]:
        """(frame, previous frame) pairs: forward from the interactive frame, then backward."""
        start, count = self.pending.frame, self.embeddings.video.num_frames
        forward = [(t, t - 1) for t in range(start + 1, count)]
        backward = [(t, t + 1) for t in range(start - 1, -1, -1)]
        return forward + backward

    def run(self, device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(frame, (C, h, w) float32 logits)`` for every frame but the interactive one."""
        for frame, previous in self.order():
            if frame in self.fixed:
                logits = one_hot(self.fixed[frame], self.channels, self.grid, torch.device("cpu")) * 20.0 - 10.0
                self.logits[frame] = logits.to(torch.float16)
                yield frame, logits
                continue
            with torch.inference_mode(), autocast_context(device, self.config.precision):
                logits = self._step(frame, previous)
            self.logits[frame] = logits.to(torch.float16)
            yield frame, logits

    def _step(self, frame: int, previous: int) -> torch.Tensor:
        clock = time.perf_counter()
        embedding = self.embeddings.get(frame)
        clock = self._lap("embedding", clock)
        with torch.autocast(embedding.device.type, enabled=False):
            global_maps = self._global_maps(frame, embedding)
            clock = self._lap("global_map", clock)
            local_maps = self._local_maps(frame, previous, embedding)
            clock = self._lap("local_map", clock)
        previous_labels = self.logits[previous].float().argmax(dim=0)
        previous_masks = one_hot(previous_labels, self.channels, self.grid, embedding.device)
        stem = self.reuse.stem(frame, lambda: self.model.propagation_stem(embedding[None]))
        logits = self.model.propagation_logits(embedding[None], global_maps, local_maps, previous_masks,
                                               stem=stem).float()
        self._lap("heads", clock)
        return logits

    def _lap(self, part: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[part] += now - since
        return now

    def _global_maps(self, frame: int, embedding: torch.Tensor) -> torch.Tensor:
        """Eq 2 then eq 3; returns what the memory holds for the frame afterwards (C, h, w)."""
        current = global_matching_map(embedding, self.references)
        self.global_memory.write(frame, current.cpu(), aggregate=self.config.global_memory)
        return self.global_memory.read(frame, self.channels).to(embedding.device)

    def _local_maps(self, frame: int, previous: int, embedding: torch.Tensor) -> torch.Tensor:
        """Eq 4 then eq 5/6; returns the local maps read from memory, upsampled to the grid."""
        def compute() -> torch.Tensor:
            pooled_previous = pool_embedding(self.embeddings.get(previous))
            return local_distances(pool_embedding(embedding), pooled_previous, self.config.window)

        distances = self.reuse.distances(frame, previous, compute)
        previous_labels = self.logits[previous].float().argmax(dim=0).to(embedding.device)
        current = local_map_for_order(distances, previous_labels, self.channels, self.config.window,
                                      self.config.local_map_order)
        self.local_memory.write(frame, current.cpu())
        rounds = self.config.memory_rounds if self.config.local_memory else 1
        chosen = self.local_memory.read(frame, rounds).to(embedding.device)
        return upsample_maps(chosen, self.grid).clamp(0, 1)

    def _write_interactive(self, interactive: torch.Tensor) -> None:
        """Eq 8 (augmented map) or, with the augmented map switched off, eq 3 for the interactive frame."""
        if self.pending.augmented is not None:
            maps = self.pending.augmented
        else:
            maps = global_matching_map(interactive, self.references)
        self.global_memory.write(self.pending.frame, maps.cpu(), aggregate=self.config.global_memory)


