"""Bridge from the widget's export buttons to ``manet.io.export``: one exporter per format, each
given the object names and the progress callback it takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from manet.io import export
from manet.io.video import VideoSource
from manet_widget.protocol.wire import EXPORT_FORMATS, ExportFormat

Progress = Callable[[int, int], None]


def run_export(export_format: ExportFormat, masks: np.ndarray, path: str | Path, video: VideoSource,
               names: Mapping[int, str], progress: Progress | None = None) -> Path:
    """Write ``masks`` ((T, H, W) uint8 ids) in ``export_format`` to ``path``; returns the path.

    ``video`` provides the frames of the overlay video; ``names`` (object id -> name) go into
    the COCO categories and the npz; ``progress(done, total)`` is called by the exporters that
    report progress (PNG folder, COCO, video).

    Raises:
        ValueError: an unknown format (the message lists the valid ones).
    """
    target = Path(path).expanduser()
    if export_format == "png":
        return export.export_png_folder(masks, target, progress=progress)
    if export_format == "npz":
        return export.export_npz(masks, target, names=dict(names))
    if export_format == "coco":
        return export.export_coco(masks, target, object_names=dict(names), progress=progress)
    if export_format == "video":
        return export.export_overlay_video(masks, video, target, progress=progress)
    raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {export_format!r}")
