"""What the controller tells the front end about the session's committed state: round history,
the object list and matching-map replies.

Pure functions of the session (the caller holds the session lock where needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from manet.errors import SessionStateError
from manet.inference.session import Session
from manet.inference.state import RoundRecord
from manet_widget import protocol


def describe_round(position: int, record: RoundRecord) -> dict[str, Any]:
    """One entry of the ``round_history`` trait: frame, objects and what the user gave."""
    annotation = record.annotation
    clicks = sum(1 for s in annotation.scribbles if s.points.shape[0] == 1 and s.radius is not None)
    return {"round": position + 1, "frame": int(annotation.frame), "objects": list(annotation.object_ids),
            "strokes": len(annotation.scribbles) - clicks, "clicks": clicks, "boxes": len(annotation.boxes),
            "mask": annotation.mask is not None, "seconds": round(float(record.seconds), 3)}


def round_state(session: Session) -> dict[str, Any]:
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


def object_list(session: Session) -> list[dict[str, Any]]:
    """The ``objects`` trait: the session's objects (id, name, colour) in its order."""
    return [{"id": item.id, "name": item.name, "color": item.color} for item in session.objects]


def map_reply(session: Session, request: protocol.RequestMap, version: int,
              busy_reason: str | None) -> tuple[protocol.MapReply, list[bytes]]:
    """The ``map`` message answering ``request``: the upsampled, quantised map, or why there is none."""
    reason = busy_reason
    if reason is None and not session.rounds:
        reason = "run a round first: maps come from its memories"
    full = None
    if reason is None:
        maps = session.maps(request.index, request.object_id, local=request.kind == "local")
        grid_map = {"global": maps.global_map, "local": maps.local_map, "augmented": maps.augmented_map}[request.kind]
        full = None if grid_map is None else np.asarray(session.upsample_map(grid_map), dtype=np.float32)
        if full is None:
            reason = ("the augmented map exists only on scribbled frames" if request.kind == "augmented"
                      else f"no {request.kind} map for this frame yet")
    if full is None:
        return protocol.MapReply(request.index, request.object_id, request.kind, version,
                                 {"encoding": "none"}, reason), []
    header, buffers = protocol.encode_map(full)
    return protocol.MapReply(request.index, request.object_id, request.kind, version, header), buffers
