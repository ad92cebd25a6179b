"""Resampling between the stride-4 embedding grid and the video's original frame size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from manet.model.network import STRIDE


class GridResampler:
    """Bilinear resampling of (C, h, w) grid maps to (C, H, W) frames, pixel-centre aligned.

    Grid cell j covers working-resolution pixels [4j, 4j + 4); the working frame is the
    original frame scaled to ``working_size``. The sampling grid is computed once.
    """

    def __init__(self, grid: tuple[int, int], working_size: tuple[int, int], frame_size: tuple[int, int]) -> None:
        self.grid = grid
        self.frame_size = frame_size
        coordinates = []
        for grid_length, working_length, frame_length in zip(grid, working_size, frame_size):
            centres = (torch.arange(frame_length, dtype=torch.float32) + 0.5) * (working_length / frame_length)
            coordinates.append(2.0 * (centres / STRIDE) / grid_length - 1.0)
        ys, xs = coordinates
        self._sampling = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), dim=-1)[None]

    def to_frame(self, maps: torch.Tensor) -> torch.Tensor:
        """(C, h, w) float -> (C, H, W) float32."""
        if tuple(maps.shape[-2:]) != tuple(self.grid):
            raise ValueError(f"expected maps on the {self.grid} grid, got {tuple(maps.shape[-2:])}")
        sampled = F.grid_sample(maps.float()[None], self._sampling.to(maps.device), mode="bilinear",
                                padding_mode="border", align_corners=False)
        return sampled[0]
