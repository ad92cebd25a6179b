"""The MA-Net network: one embedding encoder shared by an interaction head and a propagation head.

Stateless: tensors in, tensors out. Memories, rounds and videos live in ``manet.inference``.
"""

from __future__ import annotations

import torch
from torch import nn

from manet.config import ModelConfig, SessionConfig
from manet.errors import VideoError
from manet.model.encoder import build_encoder
from manet.model.heads import INTERACTION_MAPS, PROPAGATION_MAPS, SegmentationHead
from manet.model.matching import stroke_matching_map

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
        session_config: the session settings these weights were made for, when the loader knows
            them (None: :meth:`recommended_session_config` decides from the architecture).
    """

    def __init__(self, config: ModelConfig, session_config: SessionConfig | None = None) -> None:
        super().__init__()
        self.config = config
        self.session_config = session_config
        self.encoder = build_encoder(config)
        head = dict(width=config.head_width, layers=config.head_layers, kernel=config.head_kernel)
        self.interaction_head = SegmentationHead(config.embedding_dim, INTERACTION_MAPS, **head,
                                                 matching_skip=config.skips("interaction"))
        self.propagation_head = SegmentationHead(config.embedding_dim, PROPAGATION_MAPS, **head,
                                                 matching_skip=config.skips("propagation"),
                                                 correction_bound=config.propagation_bound)

    def recommended_session_config(self) -> SessionConfig:
        """What a :class:`~manet.inference.session.Session` uses when given no config: the
        loader's choice if set, else :meth:`SessionConfig.paper` for the paper architecture
        and the default :class:`SessionConfig` (the lite preset's) for every other one."""
        if self.session_config is not None:
            return self.session_config
        return SessionConfig.paper() if self.config.encoder == "paper" else SessionConfig()

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
                           previous_masks: torch.Tensor, *, first_round: bool) -> torch.Tensor:
        """Per-object logits of the interactive frame.

        Args:
            embedding: (1, E, h, w) or (K, E, h, w).
            scribble_maps: (K, h, w) float: +1 on this object's strokes, -1 on other ids' strokes.
            previous_masks: (K, h, w) float previous-round probability of each object.
            first_round: no previous round (its masks are all background then, but a later
                round's mask of a frame can be all background too).
        Returns:
            (K, h, w) logits; softmax over K gives probabilities.
        """
        if self.interaction_head.adds_nothing():
            logits = scribble_maps.new_zeros(scribble_maps.shape, dtype=torch.float32)
        else:
            maps = torch.stack([scribble_maps, previous_masks], dim=1)
            logits = self._head_logits(self.interaction_head, embedding, maps)
        if self.interaction_head.skip_scale is None:
            return logits
        with torch.no_grad(), torch.autocast(embedding.device.type, enabled=False):  # distances in float32
            skip_map = stroke_matching_map(embedding[0].float(), scribble_maps.float(), previous_masks.float(),
                                           first_round)
        return self.interaction_head.add_skip(logits, skip_map)

    def propagation_stem(self, embedding: torch.Tensor) -> torch.Tensor | None:
        """The embedding's share of the propagation head's first layer for one frame, (1, width,
        h, w): the same in every round, so a session computes it once (None: nothing to reuse)."""
        if self.propagation_head.adds_nothing():
            return None
        return self.stem(self.propagation_head, embedding)

    def reads_local_maps(self, local_skip: float = 0.0) -> bool:
        """Whether :meth:`propagation_logits` uses its local maps (at inference): not when the
        propagation head adds nothing to the global map (:meth:`SegmentationHead.adds_nothing`)
        and ``local_skip`` is 0, so a round may leave them uncomputed until someone looks."""
        return local_skip > 0 or not self.propagation_head.adds_nothing()

    def propagation_logits(self, embedding: torch.Tensor, global_maps: torch.Tensor,
                           local_maps: torch.Tensor | None, previous_masks: torch.Tensor,
                           stem: torch.Tensor | None = None, local_skip: float = 0.0) -> torch.Tensor:
        """Per-object logits of a propagated frame (all maps (K, h, w) float; see the class doc).

        ``stem``: this frame's :meth:`propagation_stem`, when the caller kept it (inference only).
        ``local_skip``: w of :attr:`SessionConfig.local_skip`, used by an untrained head only.
        ``local_maps`` may be None only when :meth:`reads_local_maps` is False.
        """
        if self.propagation_head.adds_nothing():  # an untrained head: nearest-neighbour matching itself
            skip_map = global_maps
            if local_skip > 0:
                if local_maps is None:
                    raise ValueError("local_skip > 0 weighs the local map in: pass local_maps")
                skip_map = global_maps + local_skip * local_maps
            return self.propagation_head.add_skip(global_maps.new_zeros(global_maps.shape, dtype=torch.float32),
                                                  skip_map)
        if local_maps is None:
            raise ValueError("this propagation head reads local maps: pass them (local_maps=None only for "
                             "an untrained head, which adds nothing to the global map)")
        maps = torch.stack([global_maps, local_maps, previous_masks], dim=1)
        logits = self._head_logits(self.propagation_head, embedding, maps, stem)
        return self.propagation_head.add_skip(logits, global_maps)

    def _head_logits(self, head: SegmentationHead, embedding: torch.Tensor, maps: torch.Tensor,
                     stem: torch.Tensor | None = None) -> torch.Tensor:
        # At inference the embedding's share of the first layer is computed once for all objects,
        # in channels-last layout (with bfloat16 autocast ~2-3x faster than channels-first on CPU).
        if self.training or embedding.shape[0] != 1:
            return head(embedding, maps)
        if stem is None:
            stem = self.stem(head, embedding)
        return head.forward_from_stem(stem, maps.contiguous(memory_format=torch.channels_last))

    @staticmethod
    def stem(head: SegmentationHead, embedding: torch.Tensor) -> torch.Tensor:
        """``head``'s embedding stem of one (1, E, h, w) frame, channels-last."""
        channels_last = embedding.contiguous(memory_format=torch.channels_last)
        return head.embedding_stem(channels_last).contiguous(memory_format=torch.channels_last)

    def parameter_count(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())
