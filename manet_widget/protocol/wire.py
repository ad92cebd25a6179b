"""The JSON shapes that travel on the wire, as Python types the schema is generated from.

Requests (front end -> kernel) are ``TypedDict`` s: they describe JSON the kernel receives and
:mod:`manet_widget.protocol.requests` parses into typed requests. Shared sub-objects (array
headers, stroke and box records, the propagation range) are ``TypedDict`` s too. Replies (kernel ->
front end) are the dataclasses of :mod:`manet_widget.protocol.replies`. ``js/protocol.ts`` declares
the same shapes; ``schema.json`` (generated from these types, see :mod:`.schema`) is checked
against both sides by tests.

Optional keys are declared in a ``total=False`` subclass (Python 3.10 has no ``NotRequired``).
"""

from __future__ import annotations

from typing import Literal, TypedDict

MapKind = Literal["global", "local", "augmented"]
ExportFormat = Literal["png", "npz", "coco", "video"]
StrokeKind = Literal["stroke", "click"]
Direction = Literal["both", "forward", "backward"]
Encoding = Literal["raw", "jpeg", "zlib", "empty"]

MAP_KINDS: tuple[MapKind, ...] = ("global", "local", "augmented")
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("png", "npz", "coco", "video")
STROKE_KINDS: tuple[StrokeKind, ...] = ("stroke", "click")
DIRECTIONS: tuple[Direction, ...] = ("both", "forward", "backward")


class ArrayHeader(TypedDict):
    """How a binary buffer is laid out: numpy dtype name, shape and encoding."""

    dtype: str
    shape: list[int]
    encoding: Encoding


class NoArray(TypedDict):
    """A header saying no array travels (a map that does not exist; ``reason`` says why)."""

    encoding: Literal["none"]


class _StrokeMeta(TypedDict):
    object_id: int
    radius: float | None
    count: int


class StrokeMeta(_StrokeMeta, total=False):
    """One stroke or click of a ``run`` message; its ``count`` points are in the point buffer."""

    kind: StrokeKind


class BoxMeta(TypedDict):
    """A box prompt in original-frame pixels."""

    object_id: int
    x0: float
    y0: float
    x1: float
    y1: float


class PropagationRange(TypedDict):
    """Frames a round recomputes: [start, stop] inclusive, from the interactive frame outwards."""

    start: int
    stop: int
    direction: Direction


class RequestFrameMessage(TypedDict):
    type: Literal["request_frame"]
    index: int


class RequestMaskMessage(TypedDict):
    type: Literal["request_mask"]
    index: int


class RequestMapMessage(TypedDict):
    type: Literal["request_map"]
    index: int
    object_id: int
    kind: MapKind


class _RunMessage(TypedDict):
    type: Literal["run"]
    frame: int
    strokes: list[StrokeMeta]
    header: ArrayHeader


class RunMessage(_RunMessage, total=False):
    """Every prompt of one frame; one float32 buffer holds the points of every stroke and click."""

    boxes: list[BoxMeta]
    propagation: PropagationRange


class _ApplyMaskMessage(TypedDict):
    type: Literal["apply_mask"]
    frame: int
    header: ArrayHeader


class ApplyMaskMessage(_ApplyMaskMessage, total=False):
    """A painted (H, W) uint8 id mask (zlib'd in one buffer, or ``empty`` with none)."""

    propagation: PropagationRange


class CancelMessage(TypedDict):
    type: Literal["cancel"]


class UndoMessage(TypedDict):
    """Undo the session's last step: a round or an object deletion."""

    type: Literal["undo"]


class ResetMessage(TypedDict):
    type: Literal["reset"]


class _AddObjectMessage(TypedDict):
    type: Literal["add_object"]


class AddObjectMessage(_AddObjectMessage, total=False):
    name: str


class RenameObjectMessage(TypedDict):
    type: Literal["rename_object"]
    object_id: int
    name: str


class DeleteObjectMessage(TypedDict):
    type: Literal["delete_object"]
    object_id: int


class ExportMessage(TypedDict):
    type: Literal["export"]
    format: ExportFormat
    path: str


REQUEST_MESSAGES: tuple[type, ...] = (
    RequestFrameMessage, RequestMaskMessage, RequestMapMessage, RunMessage, ApplyMaskMessage, CancelMessage,
    UndoMessage, ResetMessage, AddObjectMessage, RenameObjectMessage, DeleteObjectMessage, ExportMessage,
)
