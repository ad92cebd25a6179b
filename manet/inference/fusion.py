"""How a new round's propagation combines with the rounds before it.

The paper re-propagates every round over the whole video and keeps only the newest result, so a
correction on one frame can overwrite frames that an earlier round had right. Round fusion
keeps, per frame, a blend of the new round's probabilities and the previous round's, weighted
by how far the frame is from the new interaction and from the frames annotated before it: at
the new frame the new round wins, at an earlier annotated frame the earlier result is kept,
and in between the weight moves with the temporal distances (MiVOS's linear fusion of
propagations from different interactions works the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Probabilities are stored as float16 logits: the floor keeps log() finite and far from the
# values any head produces.
PROBABILITY_FLOOR = 1e-4


def new_round_weight(frame: int, new_frame: int, earlier_frames: Sequence[int], power: float = 1.0) -> float:
    """Weight in [0, 1] of the new round's result at ``frame``.

    ``d_new = |frame - new_frame|`` and ``d_old`` = distance to the nearest earlier annotated frame;
    the weight is ``d_old^p / (d_old^p + d_new^p)``: 1 at the new frame, 0 at an earlier annotated
    frame, 0.5 half-way. An earlier annotation of the new frame itself is superseded by the new
    one and does not count. No earlier frames: 1.
    """
    earlier = [index for index in earlier_frames if index != new_frame]
    if frame == new_frame or not earlier:
        return 1.0
    distance_new = abs(frame - new_frame) ** power
    distance_old = min(abs(frame - index) for index in earlier) ** power
    return distance_old / (distance_old + distance_new)


def fuse_frame(new_logits: torch.Tensor, previous_logits: torch.Tensor | None, weight: float) -> torch.Tensor:
    """Blend one frame's class probabilities: ``w * softmax(new) + (1 - w) * softmax(previous)``.

    Args:
        new_logits: (C, h, w) logits of the new round.
        previous_logits: (C', h, w) logits of the previous round, C' <= C (objects that first
            appear in the new round have probability 0 there), or None (nothing to fuse).
        weight: the new round's weight in [0, 1].
    Returns:
        (C, h, w) float32 log-probabilities (argmax and softmax behave as for logits).
    """
    if previous_logits is None or weight >= 1.0:
        return new_logits.float()
    channels = new_logits.shape[0]
    if previous_logits.shape[0] > channels or previous_logits.shape[-2:] != new_logits.shape[-2:]:
        raise ValueError(f"previous logits {tuple(previous_logits.shape)} do not fit new logits "
                         f"{tuple(new_logits.shape)}: same grid and no more channels expected")
    new_probabilities = new_logits.float().softmax(dim=0)
    previous_probabilities = torch.zeros_like(new_probabilities)
    previous_probabilities[:previous_logits.shape[0]] = previous_logits.float().softmax(dim=0)
    fused = weight * new_probabilities + (1.0 - weight) * previous_probabilities
    return fused.clamp_min(PROBABILITY_FLOOR).log()
