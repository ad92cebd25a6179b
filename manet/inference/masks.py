"""Full-resolution id masks from grid logits, and a bounded cache of the committed round's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from manet.inference.refine import EdgeSnapper, GuidedUpsampler
from manet.inference.resample import GridResampler
from manet.inference.state import Channels

MASK_CACHE_BYTES = 256 * 2**20


class MaskCache:
    """Turns (C, h, w) grid logits into (H, W) uint8 ids and keeps some of them.

    Full-resolution masks are cheap to recompute from the grid logits (a few ms; with the guided
    filter of :mod:`manet.inference.refine`, from the logits and the frame, which the video
    source decodes again if its own cache let it go); the cache keeps at most ``budget_bytes``
    of them (never fewer than 16 frames), so long videos do not hold one (H, W) array per frame.
    Invariant: every kept mask equals what :meth:`to_mask` gives for the committed round's logits
    of its frame (or the frame's user-given mask).
    """

    def __init__(self, frame_size: tuple[int, int], resampler: Callable[[], GridResampler],
                 budget_bytes: int = MASK_CACHE_BYTES, *,
                 refiner: Callable[[], GuidedUpsampler | None] | None = None,
                 frames: Callable[[int], np.ndarray] | None = None,
                 snapper: Callable[[], EdgeSnapper | None] | None = None) -> None:
        self.frame_size = frame_size
        self.capacity = max(16, budget_bytes // max(1, frame_size[0] * frame_size[1]))
        # Both built on first use: the grid needs frame 0's embedding. With a refiner, masks take
        # their edges from the frame (``frames(index)``, RGB at the original size).
        self._resampler = resampler
        self._refiner = refiner
        self._frames = frames
        # With a snapper, the masks' edges then move onto the frame's within a few pixels.
        self._snapper = snapper
        if (refiner is not None or snapper is not None) and frames is None:
            raise ValueError("a mask refiner needs the frames")
        self._masks: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._masks)

    @property
    def nbytes(self) -> int:
        return sum(mask.nbytes for mask in self._masks.values())

    def get(self, frame: int) -> np.ndarray | None:
        return self._masks.get(frame)

    def keep(self, frame: int, mask: np.ndarray) -> None:
        """Keep ``mask`` for ``frame`` while there is room."""
        if frame in self._masks or len(self._masks) < self.capacity:
            self._masks[frame] = mask

    def replace(self, masks: dict[int, np.ndarray]) -> None:
        """Forget every kept mask and keep ``masks`` instead (a new committed round)."""
        self._masks = dict(list(masks.items())[:self.capacity])

    def subset(self, frames: set[int]) -> dict[int, np.ndarray]:
        """The kept masks of ``frames``."""
        return {frame: mask for frame, mask in self._masks.items() if frame in frames}

    def clear(self) -> None:
        self._masks = {}

    def to_mask(self, logits: torch.Tensor, channels: Channels, frame: int) -> np.ndarray:
        """(C, h, w) logits of ``frame`` -> (H, W) uint8 ids at the original resolution."""
        # Round to float16 first, as the round's stored logits are: a mask computed while
        # propagating then equals the one recomputed later (after cache eviction, undo or load).
        logits = logits.to(torch.float16).float().cpu()
        refiner = self._refiner() if self._refiner is not None else None
        snapper = self._snapper() if self._snapper is not None else None
        image = self._frames(frame) if self._frames is not None and (refiner or snapper) else None
        if refiner is not None and image is not None:
            indices = refiner.channels(logits, image, key=frame)
        else:
            # numpy's argmax over the leading axis is ~10x faster than torch.argmax(dim=0) on CPU
            # at 480p (9 vs 100 ms); both return the first maximum on ties.
            indices = self._resampler().to_frame(logits).numpy().argmax(axis=0)
        if snapper is not None and image is not None:
            indices = snapper(indices.astype(np.uint8, copy=False), image, int(logits.shape[0]))
        return channels.lookup_table()[indices]
