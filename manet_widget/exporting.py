"""Bridge from the widget's export buttons to ``manet.io.export``.

The export functions live in the library; this module only picks one by format name and
fails with a clear message when the installed library does not provide it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from manet_widget.protocol import EXPORT_FORMATS

_FUNCTION_NAMES = {
    "png": "export_png_folder",
    "npz": "export_npz",
    "coco": "export_coco",
    "video": "export_overlay_video",
}


class ExportUnavailableError(RuntimeError):
    """The installed ``manet`` has no exporter for the requested format."""


def exporter(export_format: str) -> Callable[..., Any]:
    """The ``manet.io.export`` function for ``export_format`` (png, npz, coco, video)."""
    if export_format not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}, got {export_format!r}")
    name = _FUNCTION_NAMES[export_format]
    try:
        module = importlib.import_module("manet.io.export")
    except ImportError as error:
        raise ExportUnavailableError(
            f"exporting needs manet.io.export, which this installation lacks ({error}); "
            "update the manet package or save annotator.masks yourself with numpy"
        ) from error
    function = getattr(module, name, None)
    if not callable(function):
        raise ExportUnavailableError(f"manet.io.export has no {name}(); update the manet package")
    return function


def run_export(export_format: str, masks: np.ndarray, path: str | Path, frames_source: Any,
               names: Mapping[int, str] | None = None,
               progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``masks`` ((T, H, W) uint8 ids) in ``export_format`` to ``path``; returns the path.

    ``frames_source`` (the session) is passed only to the overlay-video exporter, which needs the
    frames. ``names`` (object id -> name) and ``progress(done, total)`` are passed to exporters
    that accept them.
    """
    function = exporter(export_format)
    target = Path(path).expanduser()
    arguments: list[Any] = [masks, frames_source, target] if export_format == "video" else [masks, target]
    accepted = _keyword_names(function)
    options: dict[str, Any] = {}
    for keyword in ("names", "object_names"):
        if names and keyword in accepted:
            options[keyword] = dict(names)
    if progress is not None and "progress" in accepted:
        options["progress"] = progress
    function(*arguments, **options)
    return target


def _keyword_names(function: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()
