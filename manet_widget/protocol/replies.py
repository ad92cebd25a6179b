"""Kernel -> front end messages as typed dataclasses.

Each reply knows its wire ``type`` (:attr:`TYPE`) and turns into the JSON part of a custom
message with :meth:`to_json`; binary payloads travel beside it as buffers (see
:mod:`manet_widget.protocol.codecs`). An optional field (default ``None``) is left out of the
JSON when it is ``None``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from manet_widget.protocol.wire import ArrayHeader, ExportFormat, MapKind, NoArray


@dataclass(frozen=True)
class _Reply:
    TYPE: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The JSON part of the message: ``type`` plus every field (``None`` optionals left out)."""
        content: dict[str, Any] = {"type": self.TYPE}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None and item.default is None:
                continue
            content[item.name] = value
        return content


@dataclass(frozen=True)
class FrameReply(_Reply):
    """Frame ``index`` as JPEG bytes (one buffer)."""

    TYPE: ClassVar[str] = "frame"
    index: int
    header: ArrayHeader


@dataclass(frozen=True)
class MaskReply(_Reply):
    """The (H, W) uint8 id mask of frame ``index``: of the running round when ``pending``, else of
    committed state ``version``. zlib'd in one buffer, or ``empty`` (all background) with none."""

    TYPE: ClassVar[str] = "mask"
    index: int
    version: int
    pending: bool
    header: ArrayHeader


@dataclass(frozen=True)
class MapReply(_Reply):
    """A matching map, uint8 (0 = close to the object), or ``header = {encoding: "none"}`` and a
    ``reason`` when there is none."""

    TYPE: ClassVar[str] = "map"
    index: int
    object_id: int
    kind: MapKind
    version: int
    header: ArrayHeader | NoArray
    reason: str | None = None


@dataclass(frozen=True)
class RoundStarted(_Reply):
    """Round ``round`` started on ``frame``; it recomputes frames ``start``..``stop``."""

    TYPE: ClassVar[str] = "round_started"
    round: int
    frame: int
    start: int
    stop: int


@dataclass(frozen=True)
class RoundFinished(_Reply):
    TYPE: ClassVar[str] = "round_finished"
    round: int
    version: int


@dataclass(frozen=True)
class RoundCancelled(_Reply):
    TYPE: ClassVar[str] = "round_cancelled"
    round: int


@dataclass(frozen=True)
class Exported(_Reply):
    TYPE: ClassVar[str] = "exported"
    format: ExportFormat
    path: str


@dataclass(frozen=True)
class ErrorReply(_Reply):
    TYPE: ClassVar[str] = "error"
    message: str


Reply = FrameReply | MaskReply | MapReply | RoundStarted | RoundFinished | RoundCancelled | Exported | ErrorReply
REPLY_TYPES: tuple[type[_Reply], ...] = (FrameReply, MaskReply, MapReply, RoundStarted, RoundFinished,
                                         RoundCancelled, Exported, ErrorReply)
