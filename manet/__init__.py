"""MA-Net for Jupyter: interactive video object segmentation with memory aggregation.

Quick start::

    import manet
    model = manet.load_model()
    session = manet.Session(model, "video.mp4")
    mask = session.interact(scribbles)          # the scribbled frame, at once
    for frame, mask in session.propagate(): ...  # every other frame
"""

from __future__ import annotations

import os

# OpenMP threads that spin while idle make CPU inference times erratic (57 ms in one run,
# 1000 ms in the next on 2 cores); passive waiting must be chosen before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from manet.config import ModelConfig, SessionConfig  # noqa: E402
from manet.errors import (  # noqa: E402
    CheckpointError,
    FrameIndexError,
    ManetError,
    PropagationCancelled,
    ScribbleError,
    SessionFileError,
    SessionStateError,
    UnknownObjectError,
    VideoError,
)
from manet.inference.objects import PALETTE, ObjectInfo, color_for  # noqa: E402
from manet.inference.scribbles import Annotation, Box, Scribble  # noqa: E402
from manet.inference.session import Session  # noqa: E402
from manet.inference.state import MatchingMaps, RoundRecord, SessionState  # noqa: E402
from manet.loading import DEFAULT_WEIGHTS, load_model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Annotation", "Box", "CheckpointError", "DEFAULT_WEIGHTS", "FrameIndexError", "ManetError", "MatchingMaps",
    "ModelConfig", "ObjectInfo", "PALETTE", "PropagationCancelled", "RoundRecord", "Scribble", "ScribbleError",
    "Session", "SessionConfig", "SessionFileError", "SessionState", "SessionStateError", "UnknownObjectError",
    "VideoError", "color_for", "load_model",
]
