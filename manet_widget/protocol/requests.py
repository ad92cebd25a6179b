"""Front end -> kernel requests: typed dataclasses and :func:`parse_message`, which checks a
message's JSON (see :mod:`manet_widget.protocol.wire` for its shapes) and its buffers.

``run`` carries every prompt of one frame: strokes and clicks as ``{object_id, radius, count, kind}``
records whose points travel in one little-endian float32 buffer of ``(x, y)`` pairs (original-frame
pixels, one record after another; ``radius=None`` on a click asks for the session's default click
radius), plus boxes ``{object_id, x0, y0, x1, y1}`` (one per object). ``apply_mask`` carries a painted
(H, W) uint8 id mask. Both may carry ``propagation = {start, stop, direction}``: the frames the round
recomputes (every other frame keeps its mask).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from manet.inference.scribbles import Box, Scribble
from manet_widget.protocol.codecs import Buffers, decode_mask_payload
from manet_widget.protocol.errors import ProtocolError
from manet_widget.protocol.wire import (
    DIRECTIONS,
    EXPORT_FORMATS,
    MAP_KINDS,
    STROKE_KINDS,
    Direction,
    ExportFormat,
    MapKind,
)

MAX_STROKE_POINTS = 1_000_000
MAX_BOXES = 256



# ----------------------------------------------------------------------------- typed requests
@dataclass(frozen=True)
class RequestFrame:
    index: int


@dataclass(frozen=True)
class RequestMask:
    index: int


@dataclass(frozen=True)
class RequestMap:
    index: int
    object_id: int
    kind: MapKind


@dataclass(frozen=True)
class Click:
    """A point prompt in original-frame pixels; ``radius=None`` asks for the default click radius."""

    object_id: int
    x: float
    y: float
    radius: float | None

    def to_scribble(self, default_radius: float) -> Scribble:
        """The disc scribble the session takes for this click."""
        radius = self.radius if self.radius is not None else default_radius
        return Scribble.from_points(self.object_id, [[self.x, self.y]], radius)[0]


@dataclass(frozen=True)
class Propagation:
    """The frames a round recomputes: ``start``..``stop`` (inclusive), in ``direction`` from the
    interactive frame. ``None`` bounds mean the first / last frame of the video."""

    start: int | None = None
    stop: int | None = None
    direction: Direction = "both"


WHOLE_VIDEO = Propagation()


@dataclass(frozen=True)
class RunRound:
    """Every prompt of one frame: strokes, clicks and boxes mix in one round."""

    frame: int
    scribbles: tuple[Scribble, ...]
    clicks: tuple[Click, ...] = ()
    boxes: tuple[Box, ...] = ()
    propagation: Propagation = WHOLE_VIDEO


@dataclass(frozen=True, eq=False)
class ApplyMask:
    """A complete id mask for ``frame``: (H, W) uint8, read-only."""

    frame: int
    mask: np.ndarray = field(repr=False)
    propagation: Propagation = WHOLE_VIDEO


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Undo:
    """Undo the session's last step (a round or an object deletion)."""


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class AddObject:
    name: str | None


@dataclass(frozen=True)
class RenameObject:
    object_id: int
    name: str


@dataclass(frozen=True)
class DeleteObject:
    object_id: int


@dataclass(frozen=True)
class Export:
    format: ExportFormat
    path: str


Request = (RequestFrame | RequestMask | RequestMap | RunRound | ApplyMask | Cancel | Undo | Reset
           | AddObject | RenameObject | DeleteObject | Export)


# ----------------------------------------------------------------------------- parsing
def parse_message(content: Any, buffers: Buffers | None = None) -> Request:
    """Turn one custom message from the front end into a typed request.

    Raises:
        ProtocolError: unknown ``type``, missing or mistyped fields, or a buffer whose size does
            not match its header.
        manet.errors.ScribbleError: stroke points, boxes or ids that :class:`Scribble` /
            :class:`Box` reject.
    """
    if not isinstance(content, Mapping) or not isinstance(content.get("type"), str):
        raise ProtocolError(f"a message must be an object with a string 'type', got {content!r:.80}")
    kind = content["type"]
    simple: dict[str, type[Cancel | Undo | Reset]] = {
        "cancel": Cancel, "undo": Undo, "reset": Reset}
    if kind in simple:
        return simple[kind]()
    if kind == "request_frame":
        return RequestFrame(_int(content, "index"))
    if kind == "request_mask":
        return RequestMask(_int(content, "index"))
    if kind == "request_map":
        map_kind = _str(content, "kind")
        if map_kind not in MAP_KINDS:
            raise ProtocolError(f"map kind must be one of {MAP_KINDS}, got {map_kind!r}")
        return RequestMap(_int(content, "index"), _int(content, "object_id"), cast(MapKind, map_kind))
    if kind == "run":
        return decode_run(content, buffers or [])
    if kind == "apply_mask":
        return ApplyMask(_int(content, "frame"), decode_mask_payload(content.get("header"), buffers or []),
                         decode_propagation(content.get("propagation")))
    if kind == "add_object":
        name = content.get("name")
        return AddObject(name if isinstance(name, str) and name.strip() else None)
    if kind == "rename_object":
        return RenameObject(_int(content, "object_id"), _str(content, "name"))
    if kind == "delete_object":
        return DeleteObject(_int(content, "object_id"))
    if kind == "export":
        export_format = _str(content, "format")
        if export_format not in EXPORT_FORMATS:
            raise ProtocolError(f"export format must be one of {EXPORT_FORMATS}, got {export_format!r}")
        return Export(cast(ExportFormat, export_format), _str(content, "path"))
    raise ProtocolError(f"unknown message type {kind!r}")


def _int(content: Mapping[str, Any], key: str) -> int:
    value = content.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"field {key!r} must be an integer, got {value!r:.40}")
    return value


def _str(content: Mapping[str, Any], key: str) -> str:
    value = content.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"field {key!r} must be a string, got {value!r:.40}")
    return value


def _number(content: Mapping[str, Any], key: str) -> float:
    value = content.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"field {key!r} must be a number, got {value!r:.40}")
    return float(value)


def _radius(entry: Mapping[str, Any]) -> float | None:
    radius = entry.get("radius")
    if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, float))):
        raise ProtocolError(f"stroke radius must be a number or null, got {radius!r:.40}")
    return None if radius is None else float(radius)


def decode_run(content: Mapping[str, Any], buffers: Buffers) -> RunRound:
    """Read a ``run`` message: strokes and clicks (JSON metadata + one float32 buffer) and boxes."""
    strokes = content.get("strokes", [])
    if not isinstance(strokes, list) or not all(isinstance(s, Mapping) for s in strokes):
        raise ProtocolError("'strokes' must be a list of {object_id, radius, count, kind} objects")
    boxes = decode_boxes(content.get("boxes", []))
    if not strokes and not boxes:
        raise ProtocolError("a run message needs at least one stroke, click or box: draw on the frame first")
    points = _point_buffer(content, strokes, buffers)
    scribbles: list[Scribble] = []
    clicks: list[Click] = []
    start = 0
    for stroke in strokes:
        count, kind = _int(stroke, "count"), stroke.get("kind", "stroke")
        if kind not in STROKE_KINDS:
            raise ProtocolError(f"stroke kind must be one of {STROKE_KINDS}, got {kind!r:.40}")
        chunk = points[start:start + count]
        start += count
        if kind == "click":
            if count != 1:
                raise ProtocolError(f"a click has exactly one point, got count {count}")
            click = Click(_int(stroke, "object_id"), float(chunk[0, 0]), float(chunk[0, 1]), _radius(stroke))
            click.to_scribble(1.0)  # validates the id and the point now, with the other prompts
            clicks.append(click)
        else:
            scribbles.append(Scribble(_int(stroke, "object_id"), chunk, _radius(stroke)))
    return RunRound(_int(content, "frame"), tuple(scribbles), tuple(clicks), boxes,
                    decode_propagation(content.get("propagation")))


def decode_propagation(value: Any) -> Propagation:
    """The optional ``propagation`` record of ``run`` / ``apply_mask`` (absent: the whole video)."""
    if value is None:
        return WHOLE_VIDEO
    if not isinstance(value, Mapping):
        raise ProtocolError(f"'propagation' must be an object {{start, stop, direction}}, got {value!r:.40}")
    direction = value.get("direction", "both")
    if direction not in DIRECTIONS:
        raise ProtocolError(f"propagation direction must be one of {DIRECTIONS}, got {direction!r:.40}")
    start, stop = _int(value, "start"), _int(value, "stop")
    if start > stop:
        raise ProtocolError(f"propagation range start {start} is after stop {stop}: pick start <= stop")
    return Propagation(start, stop, cast(Direction, direction))


def _point_buffer(content: Mapping[str, Any], strokes: list[Mapping[str, Any]], buffers: Buffers) -> np.ndarray:
    """The (N, 2) float64 points of every stroke and click, checked against header and counts."""
    header = content.get("header")
    if not isinstance(header, Mapping) or header.get("dtype") != "float32":
        raise ProtocolError("a run message needs header {dtype: 'float32', shape: [N, 2]}")
    if len(buffers) != 1:
        raise ProtocolError(f"a run message carries exactly one point buffer, got {len(buffers)}")
    counts = [_int(stroke, "count") for stroke in strokes]
    if counts and min(counts) < 1:
        raise ProtocolError("every stroke needs an object with count >= 1")
    total = sum(counts)
    if total > MAX_STROKE_POINTS or list(header.get("shape", [])) != [total, 2]:
        raise ProtocolError(f"header shape {header.get('shape')} does not match {total} stroke points")
    raw = memoryview(buffers[0]).cast("B")
    if raw.nbytes != total * 2 * 4:
        raise ProtocolError(f"point buffer has {raw.nbytes} bytes, expected {total * 8} for {total} points")
    return np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(total, 2)


def decode_boxes(value: Any) -> tuple[Box, ...]:
    """The ``boxes`` list of a ``run`` message as :class:`Box` prompts (one per object)."""
    if not isinstance(value, list) or len(value) > MAX_BOXES:
        raise ProtocolError(f"'boxes' must be a list of at most {MAX_BOXES} {{object_id, x0, y0, x1, y1}} objects")
    boxes: list[Box] = []
    for entry in value:
        if not isinstance(entry, Mapping):
            raise ProtocolError(f"a box must be an object {{object_id, x0, y0, x1, y1}}, got {entry!r:.40}")
        boxes.append(Box(_int(entry, "object_id"), *(_number(entry, key) for key in ("x0", "y0", "x1", "y1"))))
    ids = [box.object_id for box in boxes]
    if len(set(ids)) != len(ids):
        raise ProtocolError(f"one box per object and round: object ids {sorted(ids)} repeat")
    return tuple(boxes)
