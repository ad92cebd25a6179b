"""Shared fixtures: seeded randomness, tiny models and synthetic videos."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def tiny_model() -> manet.model.network.MANet:
    return manet.load_model("tiny", weights=None)


@pytest.fixture
def video() -> np.ndarray:
    return moving_square_video()
