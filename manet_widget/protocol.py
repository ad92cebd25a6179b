"""Wire protocol between the annotator's front end (``js/``) and the kernel.

Every custom message is a JSON object with a ``"type"`` field plus zero or more binary buffers.
Binary payloads never travel as JSON number lists: each buffer is described by a small header
``{"dtype", "shape", "encoding"}`` inside the JSON part. ``js/protocol.ts`` mirrors this module;
change both together and bump :data:`PROTOCOL_VERSION`. ``js/tests/fixtures/protocol_golden.json``
holds messages both sides must build and parse identically.

Front end -> kernel
    ``request_frame {index}``                      ask for frame ``index`` as JPEG.
    ``request_mask {index}``                       ask for the committed mask of frame ``index``.
    ``request_map {index, object_id, kind}``       ask for a matching map (kind: global|local|augmented).
    ``run {frame, strokes: [{object_id, radius, count, kind}], header, boxes}`` + 1 buffer
                                                   start a round with every prompt of one frame.
                                                   The buffer holds the points of the strokes and
                                                   clicks as little-endian float32 ``(x, y)`` pairs
                                                   in original-frame pixels, one entry after another;
                                                   ``header = {dtype: "float32", shape: [N, 2],
                                                   encoding: "raw"}`` with N = sum of counts (N may
                                                   be 0: an empty buffer). ``kind`` is ``"stroke"``
                                                   (the default when absent) or ``"click"`` (count
                                                   1; a disc of ``radius`` pixels, ``null`` = the
                                                   session's default click radius). ``radius`` is in
                                                   original-frame pixels. ``boxes`` (optional) is a
                                                   list of ``{object_id, x0, y0, x1, y1}`` in
                                                   original-frame pixels, object ids >= 1, at most
                                                   one per object. At least one stroke, click or box.
    ``apply_mask {frame, header}`` + 0 or 1 buffer start a round whose interactive frame is exactly
                                                   this (H, W) uint8 id mask (a painted mask);
                                                   ``header = {dtype: "uint8", shape: [H, W],
                                                   encoding: "zlib" | "empty"}`` ("empty": all
                                                   background, no buffer).
    ``cancel {}``                                  stop the running propagation between two frames.
    ``undo_round {}`` / ``reset {}``               drop the last round / every round.
    ``add_object {name?}`` / ``rename_object {object_id, name}`` / ``delete_object {object_id}``
    ``export {format, path}``                      format: png|npz|coco|video.

Kernel -> front end
    ``frame {index, header}`` + JPEG bytes         header ``{dtype: "uint8", shape: [H, W, 3],
                                                   encoding: "jpeg"}``.
    ``mask {index, version, pending, header}`` + zlib bytes
                                                   a uint8 id map ``(H, W)``, 0 = background;
                                                   ``pending`` masks belong to the running round,
                                                   the others to committed state ``version``.
                                                   ``header.encoding`` is ``"zlib"`` or ``"empty"``
                                                   (no buffer: all background).
    ``map {index, object_id, kind, header}`` + zlib bytes
                                                   uint8 ``(h, w)``: 0 = close to the object,
                                                   255 = far; ``encoding: "none"`` when unavailable
                                                   (``reason`` says why).
    ``round_started {round, frame}`` / ``round_finished {round, version}`` /
    ``round_cancelled {round}``
    ``exported {format, path}`` / ``error {message}``

Version 2 added clicks (``kind``), ``boxes`` and ``apply_mask``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from manet.inference.scribbles import Box, Scribble

PROTOCOL_VERSION = 2
MAP_KINDS = ("global", "local", "augmented")
EXPORT_FORMATS = ("png", "npz", "coco", "video")
STROKE_KINDS = ("stroke", "click")
MAX_STROKE_POINTS = 1_000_000
MAX_BOXES = 256
MAX_MASK_PIXELS = 8192 * 8192


class ProtocolError(ValueError):
    """A message from the front end is malformed; the message says which field is wrong."""


Header = dict[str, Any]
Buffers = Sequence[bytes | bytearray | memoryview]


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
    kind: str


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
class RunRound:
    """Every prompt of one frame: strokes, clicks and boxes mix in one round."""

    frame: int
    scribbles: tuple[Scribble, ...]
    clicks: tuple[Click, ...] = ()
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True, eq=False)
class ApplyMask:
    """A complete id mask for ``frame``: (H, W) uint8, read-only."""

    frame: int
    mask: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class UndoRound:
    pass


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
    format: str
    path: str


Request = (RequestFrame | RequestMask | RequestMap | RunRound | ApplyMask | Cancel | UndoRound | Reset
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
    simple: dict[str, type[Cancel | UndoRound | Reset]] = {
        "cancel": Cancel, "undo_round": UndoRound, "reset": Reset}
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
        return RequestMap(_int(content, "index"), _int(content, "object_id"), map_kind)
    if kind == "run":
        return decode_run(content, buffers or [])
    if kind == "apply_mask":
        return ApplyMask(_int(content, "frame"), decode_mask_payload(content.get("header"), buffers or []))
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
        return Export(export_format, _str(content, "path"))
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
    return RunRound(_int(content, "frame"), tuple(scribbles), tuple(clicks), boxes)


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


def decode_mask_payload(header: Any, buffers: Buffers) -> np.ndarray:
    """The (H, W) uint8 id mask of an ``apply_mask`` message (decompression bounded by the header)."""
    if not isinstance(header, Mapping) or header.get("dtype") != "uint8":
        raise ProtocolError("an apply_mask message needs header {dtype: 'uint8', shape: [H, W], encoding}")
    shape = header.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise ProtocolError(f"a mask header needs shape [H, W] of positive integers, got {shape!r:.40}")
    height, width = shape
    if height * width > MAX_MASK_PIXELS:
        raise ProtocolError(f"a {height}x{width} mask is larger than any frame this widget shows")
    encoding = header.get("encoding")
    if encoding == "empty":
        return _read_only(np.zeros((height, width), np.uint8))
    if encoding != "zlib" or len(buffers) != 1:
        raise ProtocolError(f"a mask travels zlib'd in one buffer (or 'empty' without), got {encoding!r:.20} "
                            f"with {len(buffers)} buffers")
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(bytes(buffers[0]), height * width + 1)
    except zlib.error as error:
        raise ProtocolError(f"the mask buffer is not valid zlib data ({error})") from error
    if len(data) != height * width or inflater.unconsumed_tail:
        raise ProtocolError(f"the mask buffer holds {len(data)}{'+' if inflater.unconsumed_tail else ''} values, "
                            f"the header says {height}x{width}")
    return _read_only(np.frombuffer(data, np.uint8).reshape(height, width).copy())


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def encode_strokes(scribbles: Sequence[Scribble], clicks: Sequence[Click] = ()
                   ) -> tuple[list[dict[str, Any]], Header, bytes]:
    """The strokes part of a ``run`` message (what ``js/protocol.ts`` sends); used by tests and tools."""
    meta = [{"object_id": s.object_id, "radius": s.radius, "count": int(s.points.shape[0]), "kind": "stroke"}
            for s in scribbles]
    meta += [{"object_id": c.object_id, "radius": c.radius, "count": 1, "kind": "click"} for c in clicks]
    arrays = [s.points for s in scribbles] + [np.array([[c.x, c.y]]) for c in clicks]
    points = np.concatenate(arrays).astype("<f4") if arrays else np.zeros((0, 2), "<f4")
    header: Header = {"dtype": "float32", "shape": [int(points.shape[0]), 2], "encoding": "raw"}
    return meta, header, points.tobytes()


def encode_run(frame: int, scribbles: Sequence[Scribble] = (), clicks: Sequence[Click] = (),
               boxes: Sequence[Box] = ()) -> tuple[dict[str, Any], list[bytes]]:
    """A whole ``run`` message (content, buffers), as the front end sends it."""
    meta, header, data = encode_strokes(scribbles, clicks)
    content = {"type": "run", "frame": frame, "strokes": meta, "header": header,
               "boxes": [{"object_id": b.object_id, "x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1} for b in boxes]}
    return content, [data]


def encode_apply_mask(frame: int, mask: np.ndarray) -> tuple[dict[str, Any], list[bytes]]:
    """An ``apply_mask`` message (content, buffers), as the front end sends it."""
    header, buffers = encode_mask(mask)
    return {"type": "apply_mask", "frame": frame, "header": header}, buffers


# ----------------------------------------------------------------------------- payload codecs
def encode_frame(rgb: np.ndarray, quality: int = 85) -> tuple[Header, bytes]:
    """JPEG-encode an (H, W, 3) uint8 RGB frame."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"a frame must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return {"dtype": "uint8", "shape": list(rgb.shape), "encoding": "jpeg"}, data.tobytes()


def encode_mask(mask: np.ndarray) -> tuple[Header, list[bytes]]:
    """zlib-compress an (H, W) uint8 id map; an all-background mask travels with no buffer."""
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W), got shape {mask.shape}")
    ids = np.ascontiguousarray(mask, dtype=np.uint8)
    shape = [int(ids.shape[0]), int(ids.shape[1])]
    if not ids.any():
        return {"dtype": "uint8", "shape": shape, "encoding": "empty"}, []
    return {"dtype": "uint8", "shape": shape, "encoding": "zlib"}, [zlib.compress(ids.tobytes(), 1)]


def encode_map(distance: np.ndarray) -> tuple[Header, list[bytes]]:
    """Quantise a float map in [0, 1] (0 = close to the object) to uint8 and zlib it."""
    if distance.ndim != 2:
        raise ValueError(f"a matching map must be 2-D, got shape {distance.shape}")
    quantised = np.clip(np.nan_to_num(distance, nan=1.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    header: Header = {"dtype": "uint8", "shape": [int(quantised.shape[0]), int(quantised.shape[1])],
                      "encoding": "zlib"}
    return header, [zlib.compress(quantised.tobytes(), 6)]


def decode_array(header: Mapping[str, Any], buffers: Buffers) -> np.ndarray:
    """Decode a ``mask``/``map``/``frame`` payload back to an array (tests and tools)."""
    shape = tuple(int(v) for v in header["shape"])
    encoding = header["encoding"]
    if encoding == "empty":
        return np.zeros(shape, dtype=np.uint8)
    data = bytes(buffers[0])
    if encoding == "zlib":
        return np.frombuffer(zlib.decompress(data), dtype=np.dtype(header["dtype"])).reshape(shape)
    if encoding == "jpeg":
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ProtocolError("the JPEG payload cannot be decoded")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if encoding == "raw":
        return np.frombuffer(data, dtype=np.dtype(header["dtype"])).reshape(shape)
    raise ProtocolError(f"unknown encoding {encoding!r}")
