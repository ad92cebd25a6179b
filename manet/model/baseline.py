"""A training-free reference point: ImageNet features matched by nearest neighbour.

The same pipeline as MA-Net (session, memories, matching maps) with the learned parts taken
out: the embedding is the lite preset's (frozen EfficientNet-Lite0 stride-8 and stride-16
features, upsampled to stride 4 and L2-normalised per block), and the heads are replaced by the matching
maps themselves (an object's logit is minus its global map value, read from the global memory),
so a pixel goes to the object whose annotated pixels, over all rounds, it matches best. It
measures what training adds.
"""

from __future__ import annotations

import dataclasses

import torch

from manet.config import LITE_FEATURE_CHANNELS, ModelConfig
from manet.model.heads import SKIP_SCALE
from manet.model.matching import stroke_matching_map
from manet.model.network import MANet

LOGIT_SCALE = SKIP_SCALE


class MatchingBaseline(MANet):
    """MANet's interface with matching maps in place of the heads (no trained weights)."""

    def __init__(self) -> None:
        # The lite preset's frozen features without any trained projection; the (unused) heads are
        # kept minimal.
        super().__init__(dataclasses.replace(ModelConfig.lite(), feature_projection=None,
                                             embedding_dim=LITE_FEATURE_CHANNELS, head_width=8, head_layers=1,
                                             head_kernel=1))

    def interaction_logits(self, embedding: torch.Tensor, scribble_maps: torch.Tensor,
                           previous_masks: torch.Tensor, *, first_round: bool) -> torch.Tensor:
        # Each object's strokes, plus its previous-round mask where no other id was stroked.
        return -LOGIT_SCALE * stroke_matching_map(embedding[0].float(), scribble_maps, previous_masks, first_round)

    def propagation_stem(self, embedding: torch.Tensor) -> torch.Tensor | None:
        return None

    def reads_local_maps(self, local_skip: float = 0.0) -> bool:
        return False

    def propagation_logits(self, embedding: torch.Tensor, global_maps: torch.Tensor,
                           local_maps: torch.Tensor | None, previous_masks: torch.Tensor,
                           stem: torch.Tensor | None = None, local_skip: float = 0.0) -> torch.Tensor:
        # The global map only: matching to the previous frame's hard mask drifts.
        return -LOGIT_SCALE * global_maps.float()
