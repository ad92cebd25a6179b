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

from manet.config import ModelConfig
from manet.model.matching import global_matching_map
from manet.model.network import MANet

LOGIT_SCALE = 20.0


class MatchingBaseline(MANet):
    """MANet's interface with matching maps in place of the heads (no trained weights)."""

    def __init__(self) -> None:
        # The lite preset's frozen feature encoder; the (unused) heads are kept minimal.
        super().__init__(dataclasses.replace(ModelConfig.lite(), head_width=8, head_layers=1, head_kernel=1))

    def interaction_logits(self, embedding: torch.Tensor, scribble_maps: torch.Tensor,
                           previous_masks: torch.Tensor) -> torch.Tensor:
        # Each object's reference pixels: its strokes, plus its previous-round mask where no other
        # id was stroked (so a round that only corrects one object keeps the others).
        frame = embedding[0].float()
        pixels = frame.flatten(1).t()
        kept = (previous_masks > 0.5) & (scribble_maps >= 0)
        if bool((previous_masks[0] > 0.5).all()):  # round 1: no previous result to keep
            kept = torch.zeros_like(kept)
        references = [pixels[((strokes > 0) | keep).flatten()] for strokes, keep in zip(scribble_maps, kept)]
        return -LOGIT_SCALE * global_matching_map(frame, references)

    def propagation_logits(self, embedding: torch.Tensor, global_maps: torch.Tensor,
                           local_maps: torch.Tensor, previous_masks: torch.Tensor) -> torch.Tensor:
        # The global map only: matching to the previous frame's hard mask drifts.
        return -LOGIT_SCALE * global_maps.float()
