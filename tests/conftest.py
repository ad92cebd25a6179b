"""Shared fixtures: seeded randomness, tiny models and synthetic videos."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import torch
from davis_data import DAVIS_240P_VARIABLE, DAVIS_480P_VARIABLE, davis_240p_root, davis_480p_root
from synthetic_video import moving_square_video

import manet


def pytest_report_header() -> list[str]:
    """Say where the optional DAVIS data was looked for, so skipped DAVIS tests are no surprise."""
    lines = []
    for variable, root in ((DAVIS_240P_VARIABLE, davis_240p_root()), (DAVIS_480P_VARIABLE, davis_480p_root())):
        found = "found" if (root / "JPEGImages").is_dir() else "not found: its tests skip"
        lines.append(f"DAVIS data ({variable}): {root} ({found})")
    return lines


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


@pytest.fixture
def local_network_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests the download code makes go to a fixture server on 127.0.0.1 or fail (never out)."""
    from download_server import stay_local

    stay_local(monkeypatch)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local HTTP server for download tests, with the download links routed to it."""
    from download_server import FixtureServer, route_to

    fixture = FixtureServer().start()
    route_to(fixture, monkeypatch)
    yield fixture
    fixture.stop()
