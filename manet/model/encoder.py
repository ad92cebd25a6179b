"""Pixel-embedding encoders, chosen by ``ModelConfig.encoder``:

* ``lite`` (:class:`FeatureEncoder`): EfficientNet-Lite0 features (ImageNet's, or with the last
  blocks fine-tuned for matching) through a trained projection, the shipped CPU model;
* ``lite-decoder`` (:class:`LiteDecoderEncoder`): EfficientNet-Lite0 + a DeepLabv3+-style decoder
  + MA-Net's embedding layer;
* ``paper`` (:class:`~manet.model.resnet_deeplab.PaperEncoder`): DeepLabv3+ on ResNet-101 + the
  embedding layer, as in the paper;
* ``tiny`` (:class:`TinyEncoder`): a few random convolutions for tests.

Every encoder maps normalised images (B, 3, H, W) to embeddings (B, E, ceil(H/4), ceil(W/4));
those ending in the embedding layer give non-negative floats (BN + ReLU, as in the paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from manet.config import ModelConfig
from manet.model.efficientnet import (
    HIGH_LEVEL_CHANNELS,
    LOW_LEVEL_CHANNELS,
    MID_LEVEL_CHANNELS,
    EfficientNetLite0,
)
from manet.model.layers import ASPP, ConvNormRelu, EmbeddingLayer, SeparableAtrous
from manet.model.resnet_deeplab import PaperEncoder

FEATURE_BLOCKS_CHANNELS = MID_LEVEL_CHANNELS + HIGH_LEVEL_CHANNELS
FEATURE_DISTANCE_SCALE = 0.5
LOW_LEVEL_PROJECTION = 48
MID_LEVEL_PROJECTION = 32


class LiteDecoderEncoder(nn.Module):
    """The ``lite-decoder`` encoder: EfficientNet-Lite0 (output stride 16) + ASPP + two-step decoder
    (stride 8, stride 4) + the embedding layer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        channels = config.decoder_channels
        self.backbone = EfficientNetLite0()
        if config.pretrained_backbone:
            self.backbone.load_imagenet()
        self.aspp = ASPP(HIGH_LEVEL_CHANNELS, channels, separable=True, pool_norm=False)
        self.mid_projection = ConvNormRelu(MID_LEVEL_CHANNELS, MID_LEVEL_PROJECTION, 1)
        self.mid_fuse = SeparableAtrous(channels + MID_LEVEL_PROJECTION, channels, 1)
        self.low_projection = ConvNormRelu(LOW_LEVEL_CHANNELS, LOW_LEVEL_PROJECTION, 1)
        self.low_fuse = nn.Sequential(
            SeparableAtrous(channels + LOW_LEVEL_PROJECTION, channels, 1),
            SeparableAtrous(channels, channels, 1),
        )
        self.embedding = EmbeddingLayer(channels, config.embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.backbone(images))

    def decode(self, features: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Backbone features (stride 4, 8, 16) -> embedding; split out so a frozen backbone can
        run without autograd and in lower precision during training."""
        low, mid, high = (feature.float() for feature in features)
        fused = self.mid_fuse(torch.cat([_upsample_to(self.aspp(high), mid), self.mid_projection(mid)], dim=1))
        fused = self.low_fuse(torch.cat([_upsample_to(fused, low), self.low_projection(low)], dim=1))
        return self.embedding(fused)


class FeatureEncoder(nn.Module):
    """The ``lite`` encoder: frozen EfficientNet-Lite0 features as the embedding, the stride-8 (40 ch)
    and stride-16 (320 ch) blocks, upsampled to stride 4, each L2-normalised and scaled.

    Squared distances between unit vectors lie in [0, 4] per block, so with
    ``FEATURE_DISTANCE_SCALE`` eq 1's ``tanh(s / 2)`` stays away from saturation and the
    matching maps keep their contrast. E = 360.

    With ``config.feature_projection = P`` a trained 1x1 convolution maps the 360 channels to P,
    which are L2-normalised and multiplied by a learned scale (squared distances in
    [0, 4 scale^2]); it starts from the features' principal components
    (:func:`manet.train.projection.pca_projection`), so the untrained projection already
    matches almost like the 360 channels, and training it through the matching maps keeps eq 1
    in range by construction. Training may also fine-tune the backbone's last
    ``config.tuned_backbone_blocks`` blocks with it (``manet train projection --backbone-blocks``);
    at inference the whole encoder is fixed.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.backbone = EfficientNetLite0()
        if config.pretrained_backbone:
            self.backbone.load_imagenet()
        for parameter in self.backbone.parameters():
            parameter.requires_grad = False
        self.projection: nn.Conv2d | None = None
        self.projection_scale: nn.Parameter | None = None
        if config.feature_projection is not None:
            self.projection = nn.Conv2d(FEATURE_BLOCKS_CHANNELS, config.feature_projection, 1)
            self.projection_scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.backbone(images))

    def decode(self, features: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The embedding: :meth:`project` of :meth:`frozen_features`, computed without them.

        With a projection, each block is projected before its upsampling in height and its
        upsampled norm is computed from the inner products of neighbouring rows, so the 360
        channels never exist at stride 4 (the same numbers up to float rounding, ~4x less work).
        """
        if self.projection is None or self.projection_scale is None:
            return self.frozen_features(features)
        low, mid, high = features
        size = (int(low.shape[-2]), int(low.shape[-1]))
        weight = self.projection.weight.flatten(1)
        projected = [_project_upsampled(block.float(), part, size) for block, part in
                     zip((mid, high), weight.split([MID_LEVEL_CHANNELS, HIGH_LEVEL_CHANNELS], dim=1))]
        combined = (projected[0] + projected[1]) * FEATURE_DISTANCE_SCALE ** 0.5
        if self.projection.bias is not None:
            combined = combined + self.projection.bias.float()[None, :, None, None]
        return F.normalize(combined, dim=1) * self.projection_scale

    @staticmethod
    def frozen_features(features: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The 360 frozen channels (each block unit length, scaled) at stride 4."""
        low, mid, high = features
        blocks = [F.interpolate(feature.float(), size=low.shape[-2:], mode="bilinear", align_corners=False)
                  for feature in (mid, high)]
        return torch.cat([F.normalize(block, dim=1) for block in blocks], dim=1) * FEATURE_DISTANCE_SCALE ** 0.5

    def project(self, frozen: torch.Tensor) -> torch.Tensor:
        """The trained projection of :meth:`frozen_features` (identity without one)."""
        if self.projection is None or self.projection_scale is None:
            return frozen
        return F.normalize(self.projection(frozen.float()), dim=1) * self.projection_scale


class TinyEncoder(nn.Module):
    """Two strided convolutions and the embedding layer: random, fast, for tests only."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        channels = config.decoder_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
        )
        self.embedding = EmbeddingLayer(channels, config.embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.stem(images))


def _project_upsampled(block: torch.Tensor, weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``weight @ normalize(upsample(block))`` at ``size`` (bilinear, half-pixel centres) without
    upsampling ``block``'s channels in height: bilinear resampling is separable and linear.

    The block is resampled in width only, then projected; the height pass mixes two rows
    ``(1 - b) c0 + b c1``, whose squared norm is ``(1 - b)^2 |c0|^2 + b^2 |c1|^2 + 2 b (1 - b) <c0, c1>``.
    ``block`` (B, C, h, w) float, ``weight`` (P, C) -> (B, P, *size) float32.
    """
    height = size[0]
    rows = F.interpolate(block, size=(block.shape[-2], size[1]), mode="bilinear", align_corners=False)
    projected = torch.einsum("pc,bchw->bphw", weight.to(rows.dtype), rows).float()
    projected = F.interpolate(projected, size=size, mode="bilinear", align_corners=False)
    rows = rows.float()
    squared = rows.square().sum(dim=1)                                   # (B, h, W)
    source = ((torch.arange(height, dtype=torch.float64, device=block.device) + 0.5)
              * (rows.shape[-2] / height) - 0.5).clamp(min=0)
    first = source.floor().long().clamp(max=rows.shape[-2] - 1)
    second = (first + 1).clamp(max=rows.shape[-2] - 1)
    beta = (source - first).to(torch.float32).view(1, height, 1)
    beta = torch.where((second == first).view(1, height, 1), torch.zeros_like(beta), beta)
    # <c_y, c_y+1> for each pair of neighbouring rows (the last entry is unused: its b is 0)
    inner = torch.cat([(rows[:, :, :-1] * rows[:, :, 1:]).sum(dim=1), squared[:, -1:]], dim=1).index_select(1, first)
    norm = ((1 - beta).square() * squared.index_select(1, first) + beta.square() * squared.index_select(1, second)
            + 2 * beta * (1 - beta) * inner).clamp(min=0).sqrt()
    return projected / norm.clamp(min=1e-12)[:, None]


def _upsample_to(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return F.interpolate(features, size=reference.shape[-2:], mode="bilinear", align_corners=False)


def build_encoder(config: ModelConfig) -> nn.Module:
    """The encoder named by ``config.encoder``."""
    if config.encoder == "lite":
        if config.feature_projection is None and config.embedding_dim != FEATURE_BLOCKS_CHANNELS:
            raise ValueError(f"the lite encoder gives E = {FEATURE_BLOCKS_CHANNELS}, not {config.embedding_dim}")
        return FeatureEncoder(config)
    if config.encoder == "lite-decoder":
        return LiteDecoderEncoder(config)
    if config.encoder == "tiny":
        return TinyEncoder(config)
    if config.encoder == "paper":
        return PaperEncoder(config)
    raise ValueError(f"unknown encoder {config.encoder!r}: use 'lite', 'lite-decoder', 'paper' or 'tiny'")
