"""Small building blocks shared by encoders and heads."""

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
