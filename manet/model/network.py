"""The MA-Net network: one embedding encoder shared by an interaction head and a propagation head.

Stateless: tensors in, tensors out. Memories, rounds and videos live in ``manet.inference``.
"""

from __future__ import annotations

import torch
from torch import nn

from manet.config import ModelConfig
from manet.errors import VideoError
from manet.model.encoder import build_encoder
from manet.model.heads import INTERACTION_MAPS, PROPAGATION_MAPS, SegmentationHead

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
STRIDE = 4


class MANet(nn.Module):
    """Pixel embedding encoder + interaction head + propagation head.

    Attributes:
        config: the architecture.
        encoder: normalised (B, 3, H, W) -> (B, E, ceil(H/4), ceil(W/4)).
        interaction_head: per object [embedding, scribble map, previous-round mask] -> logit.
        propagation_head: per object [embedding, global map, local map, previous-frame mask] -> logit.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config)
        head = dict(width=config.head_width, layers=config.head_layers, kernel=config.head_kernel)
        self.interaction_head = SegmentationHead(config.embedding_dim, INTERACTION_MAPS, **head)
        self.propagation_head = SegmentationHead(config.embedding_dim, PROPAGATION_MAPS, **head)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames as the encoder expects them.

        Args:
            frames: (B, H, W, 3) uint8 RGB, or (B, 3, H, W) float RGB in [0, 1].
        Returns:
            (B, 3, H, W) float32, channel order and normalisation per ``config``.
        """
        if frames.dtype == torch.uint8:
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise VideoError(f"uint8 frames must be (B, H, W, 3) RGB, got {tuple(frames.shape)}")
            images = frames.permute(0, 3, 1, 2).float() / 255.0
        else:
            if frames.ndim != 4 or frames.shape[1] != 3:
                raise VideoError(f"float frames must be (B, 3, H, W) RGB in [0, 1], got {tuple(frames.shape)}")
            images = frames.float()
        if self.config.input_order == "bgr":
            images = images.flip(1)
        if self.config.normalization == "tf":
            return (images * 255.0 - 127.0) / 128.0
        # The authors' weights saw BGR pixels normalised with the RGB statistics in RGB order
        # (channel 0, blue, with the red mean); "bgr" reproduces exactly that.
        mean = torch.tensor(IMAGENET_MEAN_RGB, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD_RGB, device=images.device).view(1, 3, 1, 1)
        return (images - mean) / std

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 or (B, 3, H, W) float frames -> (B, E, h, w) embeddings."""
        return self.encoder(self.preprocess(frames))

    def interaction_logits(self, embedding: torch.Tensor, scribble_maps: torch.Tensor,
                           previous_masks: torch.Tensor) -> torch.Tensor:
        """Per-object logits of the interactive frame.

        Args:
            embedding: (1, E, h, w) or (K, E, h, w).
            scribble_maps: (K, h, w) float: +1 on this object's strokes, -1 on other ids' strokes.
            previous_masks: (K, h, w) float previous-round probability of each object.
        Returns:
            (K, h, w) logits; softmax over K gives probabilities.
        """
        maps = torch.stack([scribble_maps, previous_masks], dim=1)
        return self._head_logits(self.interaction_head, embedding, maps)

    def propagation_logits(self, embedding: torch.Tensor, global_maps: torch.Tensor,
                           local_maps: torch.Tensor, previous_masks: torch.Tensor) -> torch.Tensor:
        """Per-object logits of a propagated frame (all maps (K, h, w) float; see the class doc)."""
        maps = torch.stack([global_maps, local_maps, previous_masks], dim=1)
        return self._head_logits(self.propagation_head, embedding, maps)

    def _head_logits(self, head: SegmentationHead, embedding: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        # At inference the embedding's share of the first layer is computed once for all objects.
        if self.training or embedding.shape[0] != 1:
            return head(embedding, maps)
        return head.forward_from_stem(head.embedding_stem(embedding), maps)

    def parameter_count(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())
