"""The paper's encoder: DeepLabv3+ on a dilated ResNet-101 (output stride 16) + MA-Net's embedding layer.

Facts about the authors' network that their released checkpoint depends on (and that its key
shapes alone do not show):

* Bottleneck blocks carry the stride on the 3x3 conv; shortcuts are 1x1 conv + BN where the
  shape changes (first block of every stage, including the stride-1 last stage).
* The last stage keeps stride 1 and uses multi-grid dilations (1, 2, 4) x 2 = 2, 4, 8 in the 3x3
  convs of its three blocks (output stride 16).
* ASPP: a 1x1 branch, 3x3 branches at rates 6 / 12 / 18, and an image-pooling branch, all conv
  (no bias) + BN + ReLU; their 1280 channels are projected to 256 by 1x1 + BN + ReLU.
* Decoder: layer1 features (stride 4, 256 channels) -> 1x1 to 48 + BN + ReLU; the ASPP output
  is upsampled bilinearly with ``align_corners=True`` onto that grid, concatenated (304
  channels), then two 3x3 convs to 256 + BN + ReLU. Dropout is inference-inert and left out.

No ImageNet weights are available offline for this backbone: the preset is meant to be loaded
from the authors' checkpoint (:mod:`manet.model.official`) or trained on a GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from manet.config import ModelConfig
from manet.model.layers import ASPP, ConvNormRelu, EmbeddingLayer

STAGE_BLOCKS = (3, 4, 23, 3)
STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 1)
LAST_STAGE_DILATIONS = (2, 4, 8)
EXPANSION = 4
STEM_CHANNELS = 64
LOW_LEVEL_CHANNELS = STAGE_WIDTHS[0] * EXPANSION
HIGH_LEVEL_CHANNELS = STAGE_WIDTHS[-1] * EXPANSION
LOW_LEVEL_PROJECTION = 48


class ConvNorm(nn.Module):
    """conv (no bias) + BN, no activation (a bottleneck adds its shortcut before the ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=(kernel_size - 1) * dilation // 2, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(features))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided / dilated), 1x1 expand (x4), plus the identity or a 1x1 shortcut."""

    def __init__(self, in_channels: int, width: int, stride: int, dilation: int) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.reduce = ConvNorm(in_channels, width, 1)
        self.spatial = ConvNorm(width, width, 3, stride=stride, dilation=dilation)
        self.expand = ConvNorm(width, out_channels, 1)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = ConvNorm(in_channels, out_channels, 1, stride=stride) if needs_projection else None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        residual = F.relu(self.reduce(features))
        residual = F.relu(self.spatial(residual))
        residual = self.expand(residual)
        identity = features if self.shortcut is None else self.shortcut(features)
        return F.relu(residual + identity)


def _stage_dilations(stage: int, blocks: int) -> tuple[int, ...]:
    if stage == len(STAGE_BLOCKS) - 1:
        return LAST_STAGE_DILATIONS
    return (1,) * blocks


class DilatedResNet101(nn.Module):
    """ResNet-101 with output stride 16 (multi-grid last stage).

    Forward: (B, 3, H, W) -> (low, high): low (B, 256, ceil(H/4), ceil(W/4)) after the first
    stage, high (B, 2048, ceil(H/16), ceil(W/16)) after the last.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvNorm(3, STEM_CHANNELS, 7, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        stages = []
        in_channels = STEM_CHANNELS
        for index, (blocks, width, stride) in enumerate(zip(STAGE_BLOCKS, STAGE_WIDTHS, STAGE_STRIDES)):
            dilations = _stage_dilations(index, blocks)
            stage = nn.Sequential(*(
                Bottleneck(in_channels if block == 0 else width * EXPANSION, width,
                           stride if block == 0 else 1, dilations[block])
                for block in range(blocks)
            ))
            stages.append(stage)
            in_channels = width * EXPANSION
        self.stages = nn.ModuleList(stages)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.pool(F.relu(self.stem(images)))
        low = self.stages[0](features)
        high = low
        for stage in self.stages[1:]:
            high = stage(high)
        return low, high


class Decoder(nn.Module):
    """Fuses the upsampled ASPP output with projected low-level features at stride 4."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.low_projection = ConvNormRelu(LOW_LEVEL_CHANNELS, LOW_LEVEL_PROJECTION, 1)
        self.fuse = nn.Sequential(
            ConvNormRelu(channels + LOW_LEVEL_PROJECTION, channels, 3),
            ConvNormRelu(channels, channels, 3),
        )

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        # align_corners=True as in the authors' network: their weights were trained with it.
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=True)
        return self.fuse(torch.cat([high, self.low_projection(low)], dim=1))


class PaperEncoder(nn.Module):
    """DeepLabv3+ (ResNet-101, output stride 16) + the embedding layer.

    Forward: normalised (B, 3, H, W) float -> (B, E, ceil(H/4), ceil(W/4)) float >= 0, where
    E = ``config.embedding_dim`` and the decoder width is ``config.decoder_channels``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        channels = config.decoder_channels
        self.backbone = DilatedResNet101()
        self.aspp = ASPP(HIGH_LEVEL_CHANNELS, channels)
        self.decoder = Decoder(channels)
        self.embedding = EmbeddingLayer(channels, config.embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        low, high = self.backbone(images)
        return self.embedding(self.decoder(self.aspp(high), low))
