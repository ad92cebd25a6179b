"""What the controller tells the front end about committed state: round history and map replies.

Pure functions of the session (the caller holds the session lock where needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manet.errors import SessionStateError
from manet_widget import protocol


def describe_round(position: int, record: Any) -> dict[str, Any]:
    """One entry of the ``round_history`` trait: frame, objects and what the user gave."""
    annotation = record.annotation
    clicks = sum(1 for s in annotation.scribbles if s.points.shape[0] == 1 and s.radius is not None)
    return {"round": position + 1, "frame": int(annotation.frame), "objects": list(annotation.object_ids),
            "strokes": len(annotation.scribbles) - clicks, "clicks": clicks,
            "boxes": len(getattr(annotation, "boxes", ())), "mask": getattr(annotation, "mask", None) is not None,
            "seconds": round(float(record.seconds), 3)}


def round_state(session: Any) -> dict[str, Any]:
    """The round traits: ``round_index``, ``annotated_frames``, ``round_history``, ``suggested_frame``."""
    rounds = list(session.rounds)
    history = [describe_round(position, record) for position, record in enumerate(rounds)]
    suggested = -1
    if rounds:
        try:
            suggested = int(session.suggest_frame())
        except SessionStateError:
            suggested = -1
    return {"round_index": len(rounds), "annotated_frames": [h["frame"] for h in history],
            "round_history": history, "suggested_frame": suggested}


def map_reply(session: Any, request: protocol.RequestMap, version: int,
              busy_reason: str | None) -> tuple[dict[str, Any], list[bytes]]:
    """The ``map`` message answering ``request``: the upsampled, quantised map, or why there is none."""
    reply: dict[str, Any] = {"type": "map", "index": request.index, "object_id": request.object_id,
                             "kind": request.kind, "version": version}
    reason = busy_reason
    if reason is None and not session.rounds:
        reason = "run a round first: maps come from its memories"
    full = None
    if reason is None:
        grid_map = getattr(session.maps(request.index, request.object_id), f"{request.kind}_map")
        full = None if grid_map is None else _upsample(session, grid_map)
        if full is None:
            reason = ("the augmented map exists only on scribbled frames" if request.kind == "augmented"
                      else f"no {request.kind} map for this frame yet")
    if full is None:
        reply.update(header={"encoding": "none"}, reason=reason)
        return reply, []
    header, buffers = protocol.encode_map(full)
    reply["header"] = header
    return reply, buffers


def _upsample(session: Any, grid_map: np.ndarray) -> np.ndarray:
    upsample = getattr(session, "upsample_map", None)
    return np.asarray(upsample(grid_map) if upsample is not None else grid_map, dtype=np.float32)
