"""A tiny synthetic video for tests (importable by name; conftest modules are not)."""

from __future__ import annotations

import numpy as np


def moving_square_video(frames: int = 8, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a red square drifting right over a textured background."""
    rng = np.random.default_rng(seed)
    background = (rng.random((height, width, 3)) * 80).astype(np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        x = 8 + 2 * t
        video[t, 16:32, x:x + 16] = (220, 30, 30)
    return video
