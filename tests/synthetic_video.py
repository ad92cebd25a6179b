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


def mask_round(model, video: np.ndarray, mask: np.ndarray, config):
    """One round from a full mask on frame 0 of ``video``, propagated: (the round's logits, the
    masks, the session)."""
    import manet

    session = manet.Session(model, video, config)
    session.interact_mask(mask, 0)
    for _ in session.propagate():
        pass
    return session.rounds[-1].logits.clone(), session.masks.copy(), session


def dimmed_noise_video(frames: int = 6, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A (frames, 64, 96, 3) noise video darker right of column 40, and a (64, 96) square mask."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 255, (frames, 64, 96, 3), dtype=np.uint8)
    video[:, :, 40:] //= 4
    truth = np.zeros((64, 96), dtype=np.uint8)
    truth[10:50, 20:70] = 1
    return video, truth
