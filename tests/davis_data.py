"""Where the tests find the optional DAVIS-2016 data: one setting per resolution, never an absolute path.

``MANET_DAVIS_ROOT`` names the 240p training folder and ``MANET_DAVIS_480P_ROOT`` the 480p dev folder (each
holds ``JPEGImages/`` and ``Annotations/``). Unset, each defaults to the folder of that name in
``../shared/data/`` beside the repository, when it is there. Tests that need the data skip, saying how to
provide it, when it is not found.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAVIS_240P_VARIABLE = "MANET_DAVIS_ROOT"
DAVIS_480P_VARIABLE = "MANET_DAVIS_480P_ROOT"


def _root(variable: str, default_name: str) -> Path:
    """The folder the setting names (relative paths are taken from the repository root), else the default."""
    value = os.environ.get(variable, "").strip()
    if value:
        path = Path(value).expanduser()
        return path if path.is_absolute() else REPO / path
    return REPO.parent / "shared" / "data" / default_name


def davis_240p_root() -> Path:
    """The DAVIS-2016 240p training folder (it may not exist: see :func:`requires_davis_sequences`)."""
    return _root(DAVIS_240P_VARIABLE, "davis2016-240p")


def davis_480p_root() -> Path:
    """The DAVIS-2016 480p dev folder (it may not exist)."""
    return _root(DAVIS_480P_VARIABLE, "davis2016-480p-dev")


def missing_reason(root: Path, variable: str, sequences: tuple[str, ...]) -> str | None:
    """Why the DAVIS sequences cannot be used from ``root`` (None when they all can)."""
    missing = [name for name in sequences if not (root / "JPEGImages" / name).is_dir()]
    if not missing:
        return None
    return (f"DAVIS-2016 sequences {', '.join(missing)} not found under {root}: set {variable} to a DAVIS "
            "folder (JPEGImages/ + Annotations/), or put it at ../shared/data/ beside the repository")


def requires_davis_sequences(*sequences: str) -> pytest.MarkDecorator:
    """Skip a test unless the 240p folder holds every named sequence; the reason says how to provide them."""
    reason = missing_reason(davis_240p_root(), DAVIS_240P_VARIABLE, sequences)
    return pytest.mark.skipif(reason is not None, reason=reason or "")
