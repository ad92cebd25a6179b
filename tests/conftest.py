"""Shared fixtures: seeded randomness, tiny models and synthetic videos."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import torch

import manet


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def tiny_model() -> manet.model.network.MANet:
    return manet.load_model("tiny", weights=None)


def moving_square_video(frames: int = 8, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a red square drifting right over a textured background."""
    rng = np.random.default_rng(seed)
    background = (rng.random((height, width, 3)) * 80).astype(np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        x = 8 + 2 * t
        video[t, 16:32, x:x + 16] = (220, 30, 30)
    return video


@pytest.fixture
def video() -> np.ndarray:
    return moving_square_video()
