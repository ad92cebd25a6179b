"""Small building blocks shared by encoders and heads: convolutions, the embedding layer, ASPP."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow "SAME" padding computed from the actual input size.

    Stride-1 convolutions pad symmetrically; strided ones pad asymmetrically (more on the
    bottom/right) exactly as TensorFlow does, so ImageNet weights trained in TF give the
    same stride-2 grids at any image size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = False) -> None:
        symmetric = stride == 1
        padding = (kernel_size - 1) * dilation // 2 if symmetric else 0
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias)
        self._dynamic = not symmetric

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self._dynamic:
            input = F.pad(input, _same_padding(input.shape[-2:], self.kernel_size, self.stride, self.dilation))
        return super().forward(input)


def _same_padding(size: torch.Size, kernel: tuple[int, ...], stride: tuple[int, ...],
                  dilation: tuple[int, ...]) -> list[int]:
    pads: list[int] = []
    for length, k, s, d in zip(reversed(tuple(size)), reversed(kernel), reversed(stride), reversed(dilation)):
        total = max((math.ceil(length / s) - 1) * s + (k - 1) * d + 1 - length, 0)
        pads.extend([total // 2, total - total // 2])
    return pads


class SeparableLayer(nn.Module):
    """Depthwise k x k conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU (both with bias).

    The layer shape of MA-Net's heads and embedding layer.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, final_relu: bool = True) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                                   groups=in_channels, bias=True)
        self.depthwise_norm = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.pointwise_norm = nn.BatchNorm2d(out_channels)
        self.final_relu = final_relu

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.depthwise_norm(self.depthwise(features)))
        features = self.pointwise_norm(self.pointwise(features))
        return F.relu(features) if self.final_relu else features


class ConvNormRelu(nn.Sequential):
    """conv (no bias) + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1,
                 groups: int = 1) -> None:
        padding = (kernel_size - 1) * dilation // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class EmbeddingLayer(SeparableLayer):
    """The paper's embedding layer: depthwise 3x3 + BN + ReLU, then 1x1 to E + BN + ReLU."""

    def __init__(self, in_channels: int, embedding_dim: int) -> None:
        super().__init__(in_channels, embedding_dim, kernel_size=3)


class SeparableAtrous(nn.Sequential):
    """Depthwise 3x3 atrous conv + BN + ReLU, pointwise 1x1 + BN + ReLU (no biases)."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(
            ConvNormRelu(in_channels, in_channels, 3, dilation=dilation, groups=in_channels),
            ConvNormRelu(in_channels, out_channels, 1),
        )


class MeanPooledConvNormRelu(ConvNormRelu):
    """Global average over the image, then 1x1 conv (no bias) + BN + ReLU: (B, C, H, W) -> (B, out, 1, 1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return super().forward(features.mean(dim=(2, 3), keepdim=True))


ASPP_RATES = (6, 12, 18)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3): a 1x1 branch, one 3x3 atrous branch per rate and an
    image-pooling branch, concatenated and projected by 1x1 conv + BN + ReLU.

    The two encoders differ only in their branches, and their checkpoints depend on it:

    * ``separable=False, pool_norm=True`` (the paper's DeepLabv3+): full 3x3 atrous convs, and an
      image-pooling branch of 1x1 conv + BN + ReLU.
    * ``separable=True, pool_norm=False`` (the lite decoder): depthwise-separable atrous branches,
      and an image-pooling branch of 1x1 conv with bias + ReLU.

    Forward: (B, in, H, W) -> (B, out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...] = ASPP_RATES, *,
                 separable: bool = False, pool_norm: bool = True) -> None:
        super().__init__()
        atrous: list[nn.Module] = [
            SeparableAtrous(in_channels, out_channels, rate) if separable
            else ConvNormRelu(in_channels, out_channels, 3, dilation=rate)
            for rate in rates
        ]
        self.branches = nn.ModuleList([ConvNormRelu(in_channels, out_channels, 1), *atrous])
        self.image_pool: nn.Module = (
            MeanPooledConvNormRelu(in_channels, out_channels) if pool_norm
            else nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True))
        )
        self.project = ConvNormRelu(out_channels * (len(rates) + 2), out_channels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        outputs = [branch(features) for branch in self.branches]
        outputs.append(self.image_pool(features).expand(-1, -1, *features.shape[-2:]))
        return self.project(torch.cat(outputs, dim=1))
