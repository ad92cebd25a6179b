"""``RoundTransaction``: everything one round changes, kept apart until it commits or rolls back.

A round changes three things: the global memory (written frame by frame), the local memory
(a new record of this round's local maps) and the round's logits. The transaction works on a
copy of the global memory, appends the local record when it opens and removes it on rollback,
and owns the logits; so a cancelled or failed round leaves the committed state untouched, and
that guarantee lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from manet.config import RoundFusion
from manet.errors import SessionStateError
from manet.inference.fusion import fuse_frame, new_round_weight
from manet.inference.memory import GlobalMemory, LocalMemory
from manet.inference.state import PendingRound, RoundRecord

# Logit given to a channel new in this round on frames the round does not visit: far below any
# real logit (float16 holds it exactly), so such a frame keeps the previous round's ids.
ABSENT_CHANNEL_LOGIT = -1.0e4


class RoundTransaction:
    """One round's changes between ``propagate``'s start and its commit or rollback.

    Attributes:
        pending: the round being propagated.
        global_memory: working copy of the committed global memory, grown to the round's channels.
        local_memory: the session's local memory; its last record is this round's while open.
        logits: (T, C, h, w) float16 logits of the round. The interactive frame holds the
            interaction head's; frames the round does not visit hold the previous round's (new
            channels at :data:`ABSENT_CHANNEL_LOGIT`), or zeros in the first round.
    """

    def __init__(self, pending: PendingRound, committed_global: GlobalMemory | None, local_memory: LocalMemory,
                 previous_logits: torch.Tensor | None, num_frames: int, grid: tuple[int, int],
                 fusion: RoundFusion = "replace", fusion_power: float = 1.0,
                 earlier_frames: Sequence[int] = ()) -> None:
        self.pending = pending
        self.fusion = fusion
        self.fusion_power = fusion_power
        self.earlier_frames = tuple(earlier_frames)
        self.channels = len(pending.channels)
        self._committed_global = committed_global
        self._fresh = (num_frames, grid)
        self.global_memory = committed_global.clone() if committed_global is not None else self._fresh_global()
        self.global_memory.grow(self.channels)
        self.local_memory = local_memory
        self._previous = previous_logits
        self.logits = self._initial_logits(previous_logits, num_frames, grid)
        self.logits[pending.frame] = pending.logits.to(torch.float16)
        self._local_rounds = len(local_memory.rounds)
        local_memory.begin_round(pending.frame)
        self._open = True

    @property
    def is_open(self) -> bool:
        return self._open

    def store_propagated(self, frame: int, logits: torch.Tensor) -> torch.Tensor:
        """Record the propagation head's (C, h, w) logits of ``frame``; returns what the round keeps."""
        kept = self.fuse(frame, logits, self.previous_logits(frame))
        self.logits[frame] = kept.to(torch.float16)
        return kept

    def store_fixed(self, frame: int, logits: torch.Tensor) -> torch.Tensor:
        """Record the logits of a frame whose result is a user-given mask (never fused)."""
        self.logits[frame] = logits.to(torch.float16)
        return logits

    def fuse(self, frame: int, new_logits: torch.Tensor, previous_logits: torch.Tensor | None) -> torch.Tensor:
        """The single place where a propagated frame's new logits become the round's result.

        Args:
            frame: the frame.
            new_logits: (C, h, w) float32 logits the propagation head gave this round.
            previous_logits: (C, h, w) float32 logits of the previous committed round (new channels
                at :data:`ABSENT_CHANNEL_LOGIT`), or None in the first round.
        Returns:
            (C, h, w) float32 logits to store; they also give the frame's mask and the previous
            mask of the next frame propagated. ``replace``: ``new_logits`` unchanged;
            ``temporal``: the blend of :func:`~manet.inference.fusion.fuse_frame`, weighted by
            the distances to this round's frame and to the frames annotated before it.
        """
        if self.fusion == "replace" or previous_logits is None:
            return new_logits
        weight = new_round_weight(frame, self.pending.frame, self.earlier_frames, self.fusion_power)
        return fuse_frame(new_logits, previous_logits, weight)

    def previous_logits(self, frame: int) -> torch.Tensor | None:
        """(C, h, w) float32 logits of ``frame`` in the previous committed round, or None in round 1."""
        if self._previous is None:
            return None
        return _padded(self._previous[frame], self.channels).float()

    def commit(self, index: int, seconds: float) -> tuple[RoundRecord, GlobalMemory]:
        """Close the transaction; returns the committed round (number ``index``) and the new global memory."""
        self._close("commit")
        before = self._committed_global if self._committed_global is not None else self._fresh_global()
        self.global_memory.mark_written(self.channels)
        record = RoundRecord(index, self.pending.annotation, self.pending.channels, self.pending.seconds + seconds,
                             self.logits, before, self.pending.augmented)
        return record, self.global_memory

    def rollback(self) -> None:
        """Close the transaction and remove its local-memory record; the committed state is as before."""
        self._close("roll back")
        del self.local_memory.rounds[self._local_rounds:]

    def _close(self, verb: str) -> None:
        if not self._open:
            raise SessionStateError(f"cannot {verb} a round that has already been committed or rolled back")
        self._open = False

    def _fresh_global(self) -> GlobalMemory:
        num_frames, grid = self._fresh
        return GlobalMemory(num_frames, grid, 1)

    def _initial_logits(self, previous: torch.Tensor | None, num_frames: int, grid: tuple[int, int]) -> torch.Tensor:
        if previous is None:
            return torch.zeros((num_frames, self.channels, *grid), dtype=torch.float16)
        padded = _padded(previous, self.channels, dim=1)
        return padded.clone() if padded is previous else padded  # never write into the committed round


def _padded(logits: torch.Tensor, channels: int, dim: int = 0) -> torch.Tensor:
    """``logits`` with channels appended along ``dim`` at :data:`ABSENT_CHANNEL_LOGIT` up to ``channels``."""
    extra = channels - logits.shape[dim]
    if extra <= 0:
        return logits
    shape = list(logits.shape)
    shape[dim] = extra
    return torch.cat([logits, torch.full(shape, ABSENT_CHANNEL_LOGIT, dtype=logits.dtype)], dim=dim)
