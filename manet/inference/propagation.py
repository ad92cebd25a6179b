"""The propagation branch of one round: from the interactive frame forward, then backward.

Writes only into its :class:`~manet.inference.transaction.RoundTransaction` (a copy of the global
memory, this round's local-memory record, the round's logits), so a cancelled round leaves
nothing behind. A round may visit only a range of frames (:func:`propagation_order`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
import torch

from manet.config import SessionConfig
from manet.errors import FrameIndexError
from manet.inference.embeddings import EmbeddingStore, Prefetch, autocast_context, autocast_dtype, native_bfloat16
from manet.inference.interaction import channel_indices, channel_masks, mask_to_grid, one_hot
from manet.inference.memory import LocalResolver
from manet.inference.reuse import ReuseCache
from manet.inference.scribbles import UNLABELLED
from manet.inference.state import Channels
from manet.inference.transaction import RoundTransaction
from manet.model.matching import (
    evenly_subsampled,
    global_matching_map,
    local_distances,
    local_map_for_order,
    pool_embedding,
    upsample_maps,
)
from manet.model.network import MANet

# Frames the encoder may run ahead of matching on a second thread while round 1 embeds frames as
# it goes; 0: each frame is embedded on the propagation thread when it is reached. Off by default:
# on 2 busy cores the second thread was not faster (both threads' OpenMP teams share the cores);
# benchmarks/round_latency.py --prefetch N measures it on other machines.
PREFETCH_AHEAD = 0

Direction = Literal["both", "forward", "backward"]
DIRECTIONS: tuple[Direction, ...] = ("both", "forward", "backward")


def propagation_order(frame: int, num_frames: int, start: int | None = None, stop: int | None = None,
                      direction: str = "both") -> list[tuple[int, int]]:
    """(frame, previous frame) pairs a round visits: forward from the interactive ``frame`` to
    ``stop``, then backward to ``start`` (inclusive; defaults 0 and T-1), or one direction only.

    Raises:
        FrameIndexError: ``start`` or ``stop`` lies outside the video.
        ValueError: an unknown direction, or a range that does not hold the interactive frame.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    first = 0 if start is None else _frame_bound("start", start, num_frames)
    last = num_frames - 1 if stop is None else _frame_bound("stop", stop, num_frames)
    if not first <= frame <= last:
        raise ValueError(f"the range {first}..{last} does not hold the interactive frame {frame}: "
                         f"give start <= {frame} <= stop")
    forward = [(t, t - 1) for t in range(frame + 1, last + 1)] if direction != "backward" else []
    backward = [(t, t + 1) for t in range(frame - 1, first - 1, -1)] if direction != "forward" else []
    return forward + backward


def reference_labels(labels: np.ndarray, logits: torch.Tensor, channels: Channels,
                     threshold: float | None) -> np.ndarray:
    """The global map's reference ids on the interactive frame's grid (-1: no reference).

    Args:
        labels: (h, w) stroke ids of the round (-1 none, round-1 ROI background included).
        logits: (C, h, w) the interactive frame's new logits.
        threshold: ``SessionConfig.mask_references``; None keeps the strokes alone.
    Returns:
        ``labels`` with, where no stroke lies, the id of the most probable object wherever its
        probability exceeds ``threshold``.
    """
    if threshold is None:
        return labels
    probabilities = torch.softmax(logits.float(), dim=0)
    confidence, channel = probabilities.max(dim=0)
    ids = channels.lookup_table().astype(np.int16)[channel.cpu().numpy()]
    confident = (confidence > threshold).cpu().numpy() & (labels == UNLABELLED)
    return np.where(confident, ids, labels).astype(labels.dtype)


def matching_dtype(device: torch.device, precision: str) -> torch.dtype:
    """The dtype of the matching products for ``SessionConfig.matching_precision`` on ``device``:
    the encoder's precision policy (:func:`autocast_dtype`), float32 where that autocasts nothing."""
    native = native_bfloat16(device) if precision == "auto" else False
    return autocast_dtype(device.type, precision, native) or torch.float32


def _frame_bound(name: str, value: int, num_frames: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FrameIndexError(f"{name} must be a frame index (int), got {value!r}")
    if not 0 <= int(value) < num_frames:
        raise FrameIndexError(f"{name}={value} is outside the video: valid frames are 0..{num_frames - 1}")
    return int(value)


class LocalMatcher:
    """Eq 4 for one frame: matched to a neighbouring frame's labels within the window, from the
    neighbours' distances (computed once and kept in the :class:`ReuseCache`)."""

    def __init__(self, embeddings: EmbeddingStore, config: SessionConfig, reuse: ReuseCache) -> None:
        self.embeddings = embeddings
        self.config = config
        self.reuse = reuse
        self.dtype = matching_dtype(embeddings.device, config.matching_precision)

    def __call__(self, frame: int, previous: int, labels: torch.Tensor, channels: int) -> torch.Tensor:
        """(C, h2, w2) float32 local maps of ``frame`` (C = ``channels``; (C, h, w) in the authors'
        order) against ``previous``'s (h, w) channel indices ``labels``."""
        def compute() -> torch.Tensor:
            pooled_previous = pool_embedding(self.embeddings.get(previous))
            return local_distances(pool_embedding(self.embeddings.get(frame)), pooled_previous,
                                   self.config.window, dtype=self.dtype)

        with torch.inference_mode(), torch.autocast(self.embeddings.device.type, enabled=False):
            distances = self.reuse.distances(frame, previous, compute)
            return local_map_for_order(distances, labels.to(distances.device), channels, self.config.window,
                                       self.config.local_map_order)


def local_resolver(matcher: LocalMatcher, round_logits: Sequence[torch.Tensor],
                   open_round: Callable[[], torch.Tensor] | None = None) -> LocalResolver:
    """What :meth:`LocalMemory.read` computes deferred maps with: round ``i``'s map of a frame
    is the frame matched to round ``i``'s mask of the frame it was propagated from.

    Args:
        matcher: computes eq 4.
        round_logits: (T, C, h, w) logits of each committed round, in order.
        open_round: the logits of the round being propagated (index ``len(round_logits)``), if any.
    """
    def resolve(index: int, frame: int, previous: int) -> torch.Tensor:
        if index < len(round_logits):
            logits = round_logits[index]
        elif open_round is not None:
            logits = open_round()
        else:
            raise KeyError(f"no round {index} to compute the local map of frame {frame} from")
        return matcher(frame, previous, logits[previous].float().argmax(dim=0), int(logits.shape[1]))

    return resolve


class Propagator:
    """State of one round's propagation; writes into ``transaction``.

    Attributes:
        order: the (frame, previous frame) pairs visited, in order.
        seconds: wall time per part (embedding, global_map, local_map, heads), for benchmarks.
    """

    def __init__(self, model: MANet, embeddings: EmbeddingStore, config: SessionConfig,
                 transaction: RoundTransaction, order: list[tuple[int, int]],
                 fixed: dict[int, np.ndarray] | None = None, reuse: ReuseCache | None = None,
                 round_logits: Sequence[torch.Tensor] = ()) -> None:
        self.model = model
        self.embeddings = embeddings
        self.config = config
        self.transaction = transaction
        self.pending = transaction.pending
        self.order = order
        self.channels = transaction.channels
        self.grid = embeddings.grid
        self.reuse = reuse if reuse is not None else ReuseCache(0.0, config.window)
        self.local_matcher = LocalMatcher(embeddings, config, self.reuse)
        # Earlier rounds' deferred local maps, for a propagation head that reads them.
        self.resolve = local_resolver(self.local_matcher, round_logits, lambda: transaction.logits)
        # Frames with a user-given mask keep it: their logits are that mask, never the head's.
        self.fixed = {frame: torch.from_numpy(channel_indices(mask_to_grid(mask, self.grid), self.pending.channels))
                      for frame, mask in (fixed or {}).items()}
        interactive = embeddings.get(self.pending.frame)
        labels = self.pending.labels
        if self.pending.touchups is not None:  # strokes along the shown mask's edges: this frame only
            labels = np.where(self.pending.touchups, UNLABELLED, labels).astype(labels.dtype)
        masks = channel_masks(reference_labels(labels, self.pending.logits, self.pending.channels,
                                               config.mask_references), self.pending.channels, interactive.device)
        pixels = interactive.reshape(interactive.shape[0], -1).t()
        self.references = [evenly_subsampled(pixels[mask.reshape(-1)], config.max_reference_pixels)
                           for mask in masks]
        self.matching_dtype = matching_dtype(interactive.device, config.matching_precision)
        self.seconds: defaultdict[str, float] = defaultdict(float)  # wall time per part, for benchmarks
        self.prefetch_ahead = PREFETCH_AHEAD
        self._write_interactive(interactive)

    def run(self, device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(frame, (C, h, w) float32 logits the round keeps)`` for every frame of :attr:`order`.

        Frames not embedded yet (round 1 on a fresh video) are embedded as the round reaches
        them, so results stream behind the encoder. With :attr:`prefetch_ahead` > 0 a second
        thread embeds the next frames while this one matches the current one; the embeddings,
        hence the results, are the same either way.
        """
        missing = [frame for frame, _ in self.order
                   if frame not in self.fixed and not self.embeddings.computed[frame]]
        if self.prefetch_ahead <= 0 or not missing:
            yield from self._run(device, None)
            return
        with self.embeddings.prefetch(missing, self.prefetch_ahead) as prefetch:
            yield from self._run(device, prefetch)

    def _run(self, device: torch.device, prefetch: Prefetch | None) -> Iterator[tuple[int, torch.Tensor]]:
        for frame, previous in self.order:
            if prefetch is not None:
                prefetch.advance(frame)
            if frame in self.fixed:
                logits = one_hot(self.fixed[frame], self.channels, self.grid, torch.device("cpu")) * 20.0 - 10.0
                yield frame, self.transaction.store_fixed(frame, logits)
                continue
            with torch.inference_mode(), autocast_context(device, self.config.precision):
                logits = self._step(frame, previous)
            yield frame, self.transaction.store_propagated(frame, logits)

    def _step(self, frame: int, previous: int) -> torch.Tensor:
        clock = time.perf_counter()
        embedding = self.embeddings.get(frame)
        clock = self._lap("embedding", clock)
        # max(...).indices, not argmax: the same first maximum on ties, ~20x faster on CPU (1.2 ms
        # against 0.05 ms for 2 x 60 x 107 logits)
        previous_labels = self.transaction.logits[previous].float().max(dim=0).indices
        with torch.autocast(embedding.device.type, enabled=False):
            global_maps = self._global_maps(frame, embedding)
            clock = self._lap("global_map", clock)
            local_maps: torch.Tensor | None = None
            if not self.model.reads_local_maps(self.config.local_skip):  # it would change nothing: computed when read
                self.transaction.local_memory.defer(frame, previous)
            else:
                local_maps = self._local_maps(frame, previous, previous_labels, embedding)
            clock = self._lap("local_map", clock)
        previous_masks = one_hot(previous_labels, self.channels, self.grid, embedding.device)
        stem = self.reuse.stem(frame, lambda: self.model.propagation_stem(embedding[None]))
        logits = self.model.propagation_logits(embedding[None], global_maps, local_maps, previous_masks,
                                               stem=stem, local_skip=self.config.local_skip).float()
        self._lap("heads", clock)
        return logits

    def _lap(self, part: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[part] += now - since
        return now

    def _global_maps(self, frame: int, embedding: torch.Tensor) -> torch.Tensor:
        """Eq 2 then eq 3; returns what the memory holds for the frame afterwards (C, h, w)."""
        current = global_matching_map(embedding, self.references, dtype=self.matching_dtype)
        self.transaction.global_memory.write(frame, current.cpu(), aggregate=self.config.global_memory)
        return self.transaction.global_memory.read(frame, self.channels).to(embedding.device)

    def _local_maps(self, frame: int, previous: int, previous_labels: torch.Tensor,
                    embedding: torch.Tensor) -> torch.Tensor:
        """Eq 4 then eq 5/6 against ``previous``'s (h, w) channel indices; returns the local maps
        read from memory, upsampled to the grid."""
        current = self.local_matcher(frame, previous, previous_labels, self.channels)
        self.transaction.local_memory.write(frame, current.cpu())
        rounds = self.config.memory_rounds if self.config.local_memory else 1
        chosen = self.transaction.local_memory.read(frame, rounds, self.resolve).to(embedding.device)
        return upsample_maps(chosen, self.grid).clamp(0, 1)

    def _write_interactive(self, interactive: torch.Tensor) -> None:
        """Eq 8 (augmented map) or, with the augmented map switched off, eq 3 for the interactive frame."""
        if self.pending.augmented is not None:
            maps = self.pending.augmented
        else:
            maps = global_matching_map(interactive, self.references)
        self.transaction.global_memory.write(self.pending.frame, maps.cpu(), aggregate=self.config.global_memory)


