"""Wire protocol between the annotator's front end (``js/``) and the kernel.

Every custom message is a JSON object with a ``"type"`` field plus zero or more binary buffers;
binary payloads never travel as JSON number lists but as buffers described by an
``{dtype, shape, encoding}`` header inside the JSON part.

- :mod:`.wire`: the JSON shapes (``TypedDict`` s of requests and shared records).
- :mod:`.requests`: typed requests and :func:`parse_message`.
- :mod:`.replies`: typed replies (kernel -> front end).
- :mod:`.codecs`: frame, mask and map payloads.
- :mod:`.schema`: the JSON schema generated from these types, committed as ``schema.json`` and
  checked against ``js/protocol.ts`` by tests on both sides.
- :mod:`.version`: :data:`PROTOCOL_VERSION`.
"""

from manet_widget.protocol.codecs import (
    decode_array,
    decode_mask_payload,
    empty_mask_header,
    encode_frame,
    encode_map,
    encode_mask,
)
from manet_widget.protocol.errors import ProtocolError
from manet_widget.protocol.replies import (
    ErrorReply,
    Exported,
    FrameReply,
    MapReply,
    MaskReply,
    Reply,
    RoundCancelled,
    RoundFinished,
    RoundStarted,
)
from manet_widget.protocol.requests import (
    WHOLE_VIDEO,
    AddObject,
    ApplyMask,
    Cancel,
    Click,
    DeleteObject,
    Export,
    Propagation,
    RenameObject,
    Request,
    RequestFrame,
    RequestMap,
    RequestMask,
    Reset,
    RunRound,
    Undo,
    parse_message,
)
from manet_widget.protocol.version import PROTOCOL_VERSION
from manet_widget.protocol.wire import DIRECTIONS, EXPORT_FORMATS, MAP_KINDS, STROKE_KINDS, ArrayHeader

__all__ = [
    "DIRECTIONS", "EXPORT_FORMATS", "MAP_KINDS", "PROTOCOL_VERSION", "STROKE_KINDS", "WHOLE_VIDEO", "AddObject",
    "ApplyMask", "ArrayHeader", "Cancel", "Click", "DeleteObject", "ErrorReply", "Export", "Exported", "FrameReply",
    "MapReply", "MaskReply", "Propagation", "ProtocolError", "RenameObject", "Reply", "Request", "RequestFrame",
    "RequestMap", "RequestMask", "Reset", "RoundCancelled", "RoundFinished", "RoundStarted", "RunRound", "Undo",
    "decode_array", "decode_mask_payload", "empty_mask_header", "encode_frame", "encode_map", "encode_mask",
    "parse_message",
]
