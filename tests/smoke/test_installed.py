"""Smoke suite for an installed manet-jupyter: import, one session round on a synthetic video, widget assets.

Run by ``scripts/ci_smoke.sh`` on the oldest and newest supported Python, from a folder outside the
repository, against the wheel installed in a fresh environment. With ``MANET_SMOKE_INSTALLED=1`` it also
checks that the packages come from site-packages, not from a source tree.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

INSTALLED = os.environ.get("MANET_SMOKE_INSTALLED") == "1"


def moving_square(frames: int = 6, height: int = 64, width: int = 96) -> np.ndarray:
    """(T, H, W, 3) uint8: a red square drifting right over a dark textured background."""
    rng = np.random.default_rng(0)
    video = np.repeat((rng.random((1, height, width, 3)) * 80).astype(np.uint8), frames, axis=0)
    for t in range(frames):
        video[t, 20:44, 10 + 4 * t:34 + 4 * t] = (220, 30, 30)
    return video


def test_imports_from_the_installed_package() -> None:
    import manet
    import manet_widget

    assert sys.version_info >= (3, 10)
    if INSTALLED:
        site = Path(sysconfig.get_paths()["purelib"]).resolve()
        for module in (manet, manet_widget):
            assert Path(module.__file__ or "").resolve().is_relative_to(site), module.__file__


def test_one_round_on_a_synthetic_video_with_the_shipped_weights() -> None:
    import manet

    video = moving_square()
    session = manet.Session(manet.load_model(), video)
    stroke = manet.Scribble(1, [[14, 30], [30, 32]])  # (x, y) points across the square on frame 0
    background = manet.Scribble(0, [[80, 5], [90, 58]])
    first = session.interact([stroke, background], frame=0)
    assert first.shape == video.shape[1:3] and first.dtype == np.uint8
    assert first[32, 22] == 1 and first[5, 85] == 0
    propagated = dict(session.propagate())
    assert sorted(propagated) == list(range(1, len(video)))
    last = propagated[len(video) - 1]
    assert last[32, 10 + 4 * (len(video) - 1) + 12] == 1  # the square's centre, where it has moved to
    assert last[:, :5].max() == 0  # the far left, which the square has left


def test_widget_bundle_and_weights_are_installed() -> None:
    from manet_widget.widget import Annotator

    static = importlib.resources.files("manet_widget") / "static"
    script, style = (static / "widget.js").read_text(), (static / "widget.css").read_text()
    assert len(script) > 10_000 and "export" in script and len(style) > 100
    assert len((static / "SOURCES.sha256").read_text().strip()) == 64  # stamped with its sources' hash
    assert str(Annotator._esm) == script  # the widget serves the installed bundle, not the missing-bundle stub
    weights = importlib.resources.files("manet") / "weights" / "manet_lite.safetensors"
    assert weights.is_file()


@pytest.mark.skipif(not INSTALLED, reason="only meaningful against an installed wheel")
def test_no_source_tree_on_the_path() -> None:
    for entry in sys.path:
        assert not (Path(entry or ".") / "js" / "widget.ts").exists(), f"source tree on sys.path: {entry}"
