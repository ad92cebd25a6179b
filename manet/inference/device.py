"""Where and at which size a session computes."""

from __future__ import annotations

import torch


def pick_device(requested: str | None) -> torch.device:
    """``requested`` as a device, or CUDA when available, else the CPU."""
    if requested is not None:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def working_size_for(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(h, w) at which frames are embedded: short side scaled to ``short_side``, never upscaled."""
    if short_side is None or min(height, width) <= short_side:
        return height, width
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def encoder_size_for(height: int, width: int, working_size: tuple[int, int],
                     short_side: int | None) -> tuple[int, int]:
    """(h, w) of the frames the encoder sees (``SessionConfig.encoder_size = short_side``): the
    working size for None, else the short side scaled as :func:`working_size_for` does."""
    return working_size if short_side is None else working_size_for(height, width, short_side)
