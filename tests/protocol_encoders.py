"""Build front-end messages in Python, as ``js/protocol.ts`` does (tests only; importable by name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from manet.inference.scribbles import Box, Scribble
from manet_widget import protocol
from manet_widget.protocol.wire import ArrayHeader


def encode_strokes(scribbles: Sequence[Scribble], clicks: Sequence[protocol.Click] = ()
                   ) -> tuple[list[dict[str, Any]], ArrayHeader, bytes]:
    """The strokes part of a ``run`` message: records, the point header and the float32 buffer."""
    meta = [{"object_id": s.object_id, "radius": s.radius, "count": int(s.points.shape[0]), "kind": "stroke"}
            for s in scribbles]
    meta += [{"object_id": c.object_id, "radius": c.radius, "count": 1, "kind": "click"} for c in clicks]
    arrays = [s.points for s in scribbles] + [np.array([[c.x, c.y]]) for c in clicks]
    points = np.concatenate(arrays).astype("<f4") if arrays else np.zeros((0, 2), "<f4")
    header: ArrayHeader = {"dtype": "float32", "shape": [int(points.shape[0]), 2], "encoding": "raw"}
    return meta, header, points.tobytes()


def encode_run(frame: int, scribbles: Sequence[Scribble] = (), clicks: Sequence[protocol.Click] = (),
               boxes: Sequence[Box] = (), propagation: dict[str, Any] | None = None
               ) -> tuple[dict[str, Any], list[bytes]]:
    """A whole ``run`` message (content, buffers), as the front end sends it."""
    meta, header, data = encode_strokes(scribbles, clicks)
    content: dict[str, Any] = {
        "type": "run", "frame": frame, "strokes": meta, "header": header,
        "boxes": [{"object_id": b.object_id, "x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1} for b in boxes]}
    if propagation is not None:
        content["propagation"] = propagation
    return content, [data]


def encode_apply_mask(frame: int, mask: np.ndarray) -> tuple[dict[str, Any], list[bytes]]:
    """An ``apply_mask`` message (content, buffers), as the front end sends it."""
    header, buffers = protocol.encode_mask(mask)
    return {"type": "apply_mask", "frame": frame, "header": header}, buffers
