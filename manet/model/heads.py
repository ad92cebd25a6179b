"""MA-Net's two shallow segmentation heads.

Each head sees, per object, the frame's pixel embedding concatenated with a few per-object
maps, and predicts one logit per pixel; logits of all objects (background included, as object
channel 0) are stacked and a softmax over objects gives the probabilities.

* interaction head: embedding + scribble map + previous-round probability  (E + 2 channels)
* propagation head: embedding + global map + local map + previous-frame probability (E + 3)
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from manet.model.layers import SeparableLayer

INTERACTION_MAPS = 2
PROPAGATION_MAPS = 3
# Initial weight of the matching skip: logits of -20 x distance make a distance gap of 0.1
# a factor e^2 in probability.
SKIP_SCALE = 20.0


class SegmentationHead(nn.Module):
    """``layers`` depthwise-separable layers (k x k depthwise, BN, ReLU, 1x1, BN, ReLU) and a 1x1 logit.

    The first layer's depthwise conv, BN and ReLU act channel by channel, and its pointwise conv
    is linear, so the embedding's share of the first layer is the same for every object: it is
    computed once per frame (:meth:`embedding_stem`) and the objects add only their maps' share.
    """

    def __init__(self, embedding_dim: int, map_channels: int, width: int, layers: int, kernel: int,
                 matching_skip: bool = False, correction_bound: float | None = None) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.map_channels = map_channels
        in_channels = embedding_dim + map_channels
        self.layers = nn.ModuleList(
            SeparableLayer(in_channels if index == 0 else width, width, kernel) for index in range(layers)
        )
        self.classifier = nn.Conv2d(width, 1, 1)
        # With the matching skip, logit = head output - skip_scale * matching map; the classifier
        # starts at zero, so an untrained head is exactly nearest-neighbour matching and
        # training learns a correction of it.
        # A bound b on the correction (b * tanh(output / b)) keeps it from overriding a clear
        # matching decision: errors it makes cannot compound frame after frame into a drift.
        self.correction_bound = correction_bound if matching_skip else None
        self.skip_scale: nn.Parameter | None = None
        if matching_skip:
            self.skip_scale = nn.Parameter(torch.tensor(SKIP_SCALE))
            nn.init.zeros_(self.classifier.weight)
            assert self.classifier.bias is not None  # Conv2d makes a bias unless told not to
            nn.init.zeros_(self.classifier.bias)

    def add_skip(self, logits: torch.Tensor, skip_map: torch.Tensor | None) -> torch.Tensor:
        """``logits - skip_scale * skip_map`` (unchanged without a skip), the logits bounded first
        when the head has a correction bound."""
        if self.skip_scale is None:
            return logits
        if skip_map is None:
            raise ValueError("this head has a matching skip: pass the matching map it adds to its logits")
        if self.correction_bound is not None:
            logits = self.correction_bound * torch.tanh(logits / self.correction_bound)
        return logits - self.skip_scale * skip_map.to(logits.dtype)

    def adds_nothing(self) -> bool:
        """Whether, at inference, this head's output is the matching skip alone: it has the skip
        and its classifier is all zeros (an untrained head), so the layers need not run. Never
        while training or with autograd on, where the zero classifier still has to learn."""
        if self.skip_scale is None or self.training or torch.is_grad_enabled():
            return False
        bias = self.classifier.bias
        return not bool(self.classifier.weight.any()) and (bias is None or not bool(bias.any()))

    def embedding_stem(self, embedding: torch.Tensor) -> torch.Tensor:
        """The embedding's contribution to the first pointwise conv (inference, eval-mode BN).

        Args:
            embedding: (B, E, h, w) float.
        Returns:
            (B, width, h, w) float, including the pointwise bias.
        """
        first = cast(SeparableLayer, self.layers[0])
        embedding_part = self._depthwise_affine(embedding, 0, self.embedding_dim)
        weight = first.pointwise.weight[:, : self.embedding_dim]
        return F.conv2d(torch.relu(embedding_part), weight, first.pointwise.bias)

    def forward_from_stem(self, stem: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Logits for K objects of one frame (inference, eval-mode BN).

        Args:
            stem: (1, width, h, w) from :meth:`embedding_stem` for this frame.
            maps: (K, map_channels, h, w) float per-object maps.
        Returns:
            (K, h, w) float logits; equal to :meth:`forward` up to float rounding.
        """
        first = cast(SeparableLayer, self.layers[0])
        dims = self.embedding_dim
        maps_part = self._depthwise_affine(maps, dims, dims + self.map_channels)
        features = stem + F.conv2d(torch.relu(maps_part), first.pointwise.weight[:, dims:])
        features = torch.relu(first.pointwise_norm(features))
        for layer in self.layers[1:]:
            features = layer(features)
        return self.classifier(features)[:, 0]

    def forward(self, embedding: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Logits straight from inputs (training path; batch norm may be in train mode).

        Args:
            embedding: (B, E, h, w) or (1, E, h, w) broadcast over K.
            maps: (B, map_channels, h, w).
        Returns:
            (B, h, w) float logits.
        """
        if embedding.shape[0] != maps.shape[0]:
            embedding = embedding.expand(maps.shape[0], -1, -1, -1)
        features = torch.cat([embedding, maps], dim=1)
        for layer in self.layers:
            features = layer(features)
        return self.classifier(features)[:, 0]

    def _depthwise_affine(self, inputs: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """First layer's depthwise conv and (eval-mode) BN on input channels ``start:stop`` only."""
        first = cast(SeparableLayer, self.layers[0])
        conv, norm = first.depthwise, first.depthwise_norm
        assert norm.running_var is not None and norm.running_mean is not None
        outputs = F.conv2d(inputs, conv.weight[start:stop], conv.bias[start:stop] if conv.bias is not None else None,
                           padding=conv.padding, groups=stop - start)
        scale = norm.weight[start:stop] / torch.sqrt(norm.running_var[start:stop] + norm.eps)
        shift = norm.bias[start:stop] - norm.running_mean[start:stop] * scale
        return outputs * scale[None, :, None, None] + shift[None, :, None, None]
