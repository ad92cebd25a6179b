"""Wire protocol between the annotator's front end (``js/``) and the kernel.

Every custom message is a JSON object with a ``"type"`` field plus zero or more binary buffers.
Binary payloads never travel as JSON number lists: each buffer is described by a small header
``{"dtype", "shape", "encoding"}`` inside the JSON part. ``js/protocol.ts`` mirrors this module;
change both together and bump :data:`PROTOCOL_VERSION`.

Front end -> kernel
    ``request_frame {index}``                      ask for frame ``index`` as JPEG.
    ``request_mask {index}``                       ask for the committed mask of frame ``index``.
    ``request_map {index, object_id, kind}``       ask for a matching map (kind: global|local|augmented).
    ``run {frame, strokes: [{object_id, radius, count}], header}`` + 1 buffer
                                                   start a round. The buffer holds every stroke's
                                                   points as little-endian float32 ``(x, y)`` pairs in
                                                   original-frame pixels, strokes one after another;
                                                   ``header = {dtype: "float32", shape: [N, 2],
                                                   encoding: "raw"}`` with N = sum of counts.
                                                   ``radius`` is in original-frame pixels.
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
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from manet.inference.scribbles import Scribble

PROTOCOL_VERSION = 1
MAP_KINDS = ("global", "local", "augmented")
EXPORT_FORMATS = ("png", "npz", "coco", "video")
MAX_STROKE_POINTS = 1_000_000


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
class RunRound:
    frame: int
    scribbles: tuple[Scribble, ...]


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


Request = (RequestFrame | RequestMask | RequestMap | RunRound | Cancel | UndoRound | Reset
           | AddObject | RenameObject | DeleteObject | Export)


# ----------------------------------------------------------------------------- parsing
def parse_message(content: Any, buffers: Buffers | None = None) -> Request:
    """Turn one custom message from the front end into a typed request.

    Raises:
        ProtocolError: unknown ``type``, missing or mistyped fields, or a stroke buffer whose
            size does not match its header.
        manet.errors.ScribbleError: stroke points or ids that :class:`Scribble` rejects.
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
        return RunRound(_int(content, "frame"), decode_strokes(content, buffers or []))
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


def decode_strokes(content: Mapping[str, Any], buffers: Buffers) -> tuple[Scribble, ...]:
    """Read the strokes of a ``run`` message: per-stroke JSON metadata plus one float32 buffer."""
    strokes = content.get("strokes")
    if not isinstance(strokes, list) or not strokes:
        raise ProtocolError("a run message needs a non-empty 'strokes' list: draw a stroke first")
    header = content.get("header")
    if not isinstance(header, Mapping) or header.get("dtype") != "float32":
        raise ProtocolError("a run message needs header {dtype: 'float32', shape: [N, 2]}")
    if len(buffers) != 1:
        raise ProtocolError(f"a run message carries exactly one point buffer, got {len(buffers)}")
    counts = [_int(stroke, "count") if isinstance(stroke, Mapping) else -1 for stroke in strokes]
    if min(counts) < 1:
        raise ProtocolError("every stroke needs an object with count >= 1")
    total = sum(counts)
    if total > MAX_STROKE_POINTS or list(header.get("shape", [])) != [total, 2]:
        raise ProtocolError(f"header shape {header.get('shape')} does not match {total} stroke points")
    raw = memoryview(buffers[0]).cast("B")
    if raw.nbytes != total * 2 * 4:
        raise ProtocolError(f"point buffer has {raw.nbytes} bytes, expected {total * 8} for {total} points")
    points = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(total, 2)
    result: list[Scribble] = []
    start = 0
    for stroke, count in zip(strokes, counts):
        radius = stroke.get("radius")
        if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, float))):
            raise ProtocolError(f"stroke radius must be a number or null, got {radius!r:.40}")
        result.append(Scribble(_int(stroke, "object_id"), points[start:start + count],
                               None if radius is None else float(radius)))
        start += count
    return tuple(result)


def encode_strokes(scribbles: Sequence[Scribble]) -> tuple[list[dict[str, Any]], Header, bytes]:
    """The inverse of :func:`decode_strokes` (what ``js/protocol.ts`` sends); used by tests and tools."""
    meta = [{"object_id": s.object_id, "radius": s.radius, "count": int(s.points.shape[0])}
            for s in scribbles]
    points = np.concatenate([s.points for s in scribbles]).astype("<f4") if scribbles else np.zeros((0, 2), "<f4")
    header: Header = {"dtype": "float32", "shape": [int(points.shape[0]), 2], "encoding": "raw"}
    return meta, header, points.tobytes()


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
