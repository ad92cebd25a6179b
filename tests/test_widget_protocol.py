"""Wire protocol of the annotator widget: message parsing and payload codecs (no browser)."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from manet.errors import ScribbleError
from manet.inference.scribbles import Scribble
from manet_widget import protocol
from manet_widget.protocol import ProtocolError

GOLDEN = Path(__file__).resolve().parents[1] / "js" / "tests" / "fixtures" / "protocol_golden.json"


def run_message(scribbles: list[Scribble], frame: int = 2) -> tuple[dict, list[bytes]]:
    meta, header, data = protocol.encode_strokes(scribbles)
    return {"type": "run", "frame": frame, "strokes": meta, "header": header}, [data]


def test_run_message_round_trips_strokes_in_float32() -> None:
    scribbles = [Scribble(1, np.array([[1.5, 2.25], [10.0, 20.0], [30.5, 5.0]]), 4.0),
                 Scribble(0, np.array([[7.0, 8.0]]), None)]
    content, buffers = run_message(scribbles)
    request = protocol.parse_message(content, [memoryview(buffers[0])])
    assert isinstance(request, protocol.RunRound)
    assert request.frame == 2
    assert [s.object_id for s in request.scribbles] == [1, 0]
    assert [s.radius for s in request.scribbles] == [4.0, None]
    np.testing.assert_array_equal(request.scribbles[0].points, scribbles[0].points)
    np.testing.assert_array_equal(request.scribbles[1].points, [[7.0, 8.0]])


@pytest.mark.parametrize("mutate, match", [
    (lambda c, b: c.update(strokes=[]), "non-empty 'strokes'"),
    (lambda c, b: c["header"].update(dtype="float64"), "float32"),
    (lambda c, b: c["strokes"][0].update(count=5), "does not match"),
    (lambda c, b: b.__setitem__(0, b[0][:-4]), "bytes"),
    (lambda c, b: b.append(b"x"), "exactly one"),
    (lambda c, b: c["strokes"][0].update(radius="big"), "radius"),
    (lambda c, b: c["strokes"][0].update(count=0), "count >= 1"),
    (lambda c, b: c.update(frame="3"), "'frame' must be an integer"),
])
def test_malformed_run_messages_are_rejected_with_a_reason(mutate, match) -> None:
    content, buffers = run_message([Scribble(1, np.array([[1.0, 2.0], [3.0, 4.0]]), 2.0)])
    mutate(content, buffers)
    with pytest.raises(ProtocolError, match=match):
        protocol.parse_message(content, buffers)


def test_stroke_with_bad_object_id_raises_scribble_error() -> None:
    content, buffers = run_message([Scribble(1, np.array([[1.0, 2.0]]), 2.0)])
    content["strokes"][0]["object_id"] = 300
    with pytest.raises(ScribbleError):
        protocol.parse_message(content, buffers)


@pytest.mark.parametrize("content, expected", [
    ({"type": "request_frame", "index": 4}, protocol.RequestFrame(4)),
    ({"type": "request_mask", "index": 0}, protocol.RequestMask(0)),
    ({"type": "request_map", "index": 1, "object_id": 2, "kind": "local"}, protocol.RequestMap(1, 2, "local")),
    ({"type": "cancel"}, protocol.Cancel()),
    ({"type": "undo_round"}, protocol.UndoRound()),
    ({"type": "reset"}, protocol.Reset()),
    ({"type": "add_object"}, protocol.AddObject(None)),
    ({"type": "add_object", "name": "car"}, protocol.AddObject("car")),
    ({"type": "rename_object", "object_id": 1, "name": "dog"}, protocol.RenameObject(1, "dog")),
    ({"type": "delete_object", "object_id": 3}, protocol.DeleteObject(3)),
    ({"type": "export", "format": "npz", "path": "a.npz"}, protocol.Export("npz", "a.npz")),
])
def test_every_request_type_parses(content, expected) -> None:
    assert protocol.parse_message(content, []) == expected


@pytest.mark.parametrize("content, match", [
    ({"type": "launch"}, "unknown message type"),
    ({"index": 1}, "string 'type'"),
    ([1, 2], "string 'type'"),
    ({"type": "request_map", "index": 1, "object_id": 1, "kind": "fancy"}, "map kind"),
    ({"type": "export", "format": "gif", "path": "x"}, "export format"),
    ({"type": "request_frame", "index": True}, "integer"),
])
def test_bad_requests_raise_protocol_error(content, match) -> None:
    with pytest.raises(ProtocolError, match=match):
        protocol.parse_message(content, [])


def test_mask_codec_compresses_ids_and_skips_empty_masks() -> None:
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 5:30] = 2
    mask[30:40, 40:60] = 7
    header, buffers = protocol.encode_mask(mask)
    assert header == {"dtype": "uint8", "shape": [48, 64], "encoding": "zlib"}
    assert len(buffers[0]) < mask.nbytes / 4
    np.testing.assert_array_equal(protocol.decode_array(header, buffers), mask)
    empty_header, empty_buffers = protocol.encode_mask(np.zeros((5, 6), np.uint8))
    assert empty_header["encoding"] == "empty" and empty_buffers == []
    assert protocol.decode_array(empty_header, []).shape == (5, 6)


def test_map_codec_quantises_zero_to_one_into_uint8() -> None:
    distance = np.array([[0.0, 0.5], [1.0, np.nan]], np.float32)
    header, buffers = protocol.encode_map(distance)
    values = np.frombuffer(zlib.decompress(buffers[0]), np.uint8).reshape(2, 2)
    np.testing.assert_array_equal(values, [[0, 128], [255, 255]])
    assert header["shape"] == [2, 2]


def test_frame_codec_is_jpeg_close_to_the_original() -> None:
    ys, xs = np.mgrid[0:48, 0:64]
    frame = np.stack([xs * 4, ys * 5, (xs + ys) * 2], axis=-1).astype(np.uint8)
    header, data = protocol.encode_frame(frame, quality=90)
    assert data[:2] == b"\xff\xd8" and header["shape"] == [48, 64, 3]
    decoded = protocol.decode_array(header, [data])
    assert np.abs(decoded.astype(int) - frame).mean() < 3


def test_golden_run_message_shared_with_the_typescript_side() -> None:
    """The same bytes are produced by js/protocol.ts (checked in js/tests/protocol.test.ts)."""
    golden = json.loads(GOLDEN.read_text())
    buffer = base64.b64decode(golden["buffer_base64"])
    request = protocol.parse_message(golden["content"], [buffer])
    assert isinstance(request, protocol.RunRound)
    expected = golden["strokes"]
    assert [s.object_id for s in request.scribbles] == [s["objectId"] for s in expected]
    for scribble, stroke in zip(request.scribbles, expected):
        np.testing.assert_allclose(scribble.points.ravel(), stroke["points"], rtol=1e-6)
        assert scribble.radius == pytest.approx(stroke["radius"])
    meta, header, data = protocol.encode_strokes(list(request.scribbles))
    assert meta == golden["content"]["strokes"] and header == golden["content"]["header"]
    assert data == buffer
