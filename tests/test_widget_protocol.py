"""Wire protocol of the annotator widget: message parsing and payload codecs (no browser)."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from protocol_encoders import encode_apply_mask, encode_run
from widget_session import check_message

from manet.errors import ScribbleError
from manet.inference.scribbles import Box, Scribble
from manet_widget import protocol
from manet_widget.protocol import ProtocolError
from manet_widget.protocol.schema import SCHEMA_FILE, message_schema

GOLDEN = Path(__file__).resolve().parents[1] / "js" / "tests" / "fixtures" / "protocol_golden.json"


def run_message(scribbles: list[Scribble], frame: int = 2) -> tuple[dict, list[bytes]]:
    return encode_run(frame, scribbles)


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
    (lambda c, b: c.update(strokes=[]), "at least one stroke, click or box"),
    (lambda c, b: c.update(strokes={}), "'strokes' must be a list"),
    (lambda c, b: c["header"].update(dtype="float64"), "float32"),
    (lambda c, b: c["strokes"][0].update(count=5), "does not match"),
    (lambda c, b: b.__setitem__(0, b[0][:-4]), "bytes"),
    (lambda c, b: b.append(b"x"), "exactly one"),
    (lambda c, b: c["strokes"][0].update(radius="big"), "radius"),
    (lambda c, b: c["strokes"][0].update(count=0), "count >= 1"),
    (lambda c, b: c.update(frame="3"), "'frame' must be an integer"),
    (lambda c, b: c["strokes"][0].update(kind="lasso"), "stroke kind"),
    (lambda c, b: c["strokes"][0].update(kind="click"), "exactly one point"),
    (lambda c, b: c.update(boxes=[{"object_id": 1, "x0": 0, "y0": 0, "x1": "9", "y1": 9}]), "'x1' must be a number"),
    (lambda c, b: c.update(boxes=[[1, 0, 0, 9, 9]]), "a box must be an object"),
    (lambda c, b: c.update(boxes={"object_id": 1}), "'boxes' must be a list"),
    (lambda c, b: c.update(boxes=[{"object_id": 2, "x0": 0, "y0": 0, "x1": 5, "y1": 5},
                                  {"object_id": 2, "x0": 1, "y0": 1, "x1": 6, "y1": 6}]), "one box per object"),
])
def test_malformed_run_messages_are_rejected_with_a_reason(mutate, match) -> None:
    content, buffers = run_message([Scribble(1, np.array([[1.0, 2.0], [3.0, 4.0]]), 2.0)])
    mutate(content, buffers)
    with pytest.raises(ProtocolError, match=match):
        protocol.parse_message(content, buffers)


def test_clicks_and_boxes_travel_with_strokes_in_one_run_message() -> None:
    stroke = Scribble(1, np.array([[1.0, 2.0], [3.0, 4.0]]), 2.0)
    clicks = [protocol.Click(2, 10.5, 11.25, None), protocol.Click(0, 30.0, 5.0, 4.0)]
    boxes = [Box(1, 0.0, 1.0, 20.0, 21.5), Box(2, 5.0, 5.0, 9.0, 9.0)]
    content, buffers = encode_run(4, [stroke], clicks, boxes)
    assert [s["kind"] for s in content["strokes"]] == ["stroke", "click", "click"]
    assert content["header"]["shape"] == [4, 2]
    request = protocol.parse_message(content, buffers)
    assert isinstance(request, protocol.RunRound)
    assert request == protocol.RunRound(4, request.scribbles, tuple(clicks), tuple(boxes))
    np.testing.assert_array_equal(request.scribbles[0].points, stroke.points)
    disc = clicks[0].to_scribble(default_radius=7.0)
    assert disc.radius == 7.0 and disc.object_id == 2 and disc.points.tolist() == [[10.5, 11.25]]
    assert clicks[1].to_scribble(default_radius=7.0).radius == 4.0


def test_a_run_of_boxes_alone_has_an_empty_point_buffer() -> None:
    content, buffers = encode_run(0, boxes=[Box(3, 1.0, 2.0, 3.0, 4.0)])
    assert content["strokes"] == [] and buffers == [b""]
    request = protocol.parse_message(content, buffers)
    assert isinstance(request, protocol.RunRound) and request.boxes == (Box(3, 1.0, 2.0, 3.0, 4.0),)
    assert request.scribbles == () and request.clicks == ()


def test_bad_box_and_click_values_raise_scribble_error() -> None:
    content, buffers = encode_run(0, boxes=[Box(3, 1.0, 2.0, 3.0, 4.0)])
    content["boxes"][0].update(x1=0.5)  # x1 < x0: an empty box
    with pytest.raises(ScribbleError, match="empty"):
        protocol.parse_message(content, buffers)
    content["boxes"][0].update(x1=9.0, object_id=0)  # a box for the background
    with pytest.raises(ScribbleError, match="object id in 1"):
        protocol.parse_message(content, buffers)
    content, buffers = encode_run(0, clicks=[protocol.Click(300, 1.0, 1.0, None)])
    with pytest.raises(ScribbleError, match="out of range"):
        protocol.parse_message(content, buffers)


def test_apply_mask_message_round_trips_a_painted_mask() -> None:
    mask = np.zeros((30, 40), np.uint8)
    mask[5:20, 10:30] = 3
    mask[25:, :5] = 1
    content, buffers = encode_apply_mask(6, mask)
    assert content["header"] == {"dtype": "uint8", "shape": [30, 40], "encoding": "zlib"}
    request = protocol.parse_message(content, buffers)
    assert isinstance(request, protocol.ApplyMask) and request.frame == 6
    np.testing.assert_array_equal(request.mask, mask)
    assert not request.mask.flags.writeable
    empty = protocol.parse_message(*encode_apply_mask(0, np.zeros((3, 4), np.uint8)))
    assert isinstance(empty, protocol.ApplyMask) and empty.mask.shape == (3, 4) and not empty.mask.any()


@pytest.mark.parametrize("header, buffers, match", [
    ({"dtype": "uint8", "shape": [4, 5], "encoding": "zlib"}, [zlib.compress(bytes(19))], "holds 19 values"),
    ({"dtype": "uint8", "shape": [4, 5], "encoding": "zlib"}, [zlib.compress(bytes(4000))], "holds 21"),
    ({"dtype": "uint8", "shape": [4, 5], "encoding": "zlib"}, [b"not zlib"], "not valid zlib"),
    ({"dtype": "uint8", "shape": [4, 5], "encoding": "raw"}, [bytes(20)], "travels zlib'd"),
    ({"dtype": "uint8", "shape": [4, 5], "encoding": "zlib"}, [], "travels zlib'd"),
    ({"dtype": "int32", "shape": [4, 5], "encoding": "zlib"}, [zlib.compress(bytes(20))], "dtype: 'uint8'"),
    ({"dtype": "uint8", "shape": [4, 5, 3], "encoding": "zlib"}, [zlib.compress(bytes(60))], "shape \\[H, W\\]"),
    ({"dtype": "uint8", "shape": [100000, 100000], "encoding": "zlib"}, [zlib.compress(bytes(9))], "larger than"),
])
def test_malformed_mask_payloads_are_rejected(header, buffers, match) -> None:
    """Sizes are checked against the header while inflating: a zip bomb stops at H*W + 1 bytes."""
    with pytest.raises(ProtocolError, match=match):
        protocol.parse_message({"type": "apply_mask", "frame": 0, "header": header}, buffers)


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
    ({"type": "undo"}, protocol.Undo()),
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
    ({"type": "undo_round"}, "unknown message type"),  # protocol 2's verb, replaced by undo
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
    assert golden["protocol_version"] == protocol.PROTOCOL_VERSION
    buffer = base64.b64decode(golden["buffer_base64"])
    request = protocol.parse_message(golden["content"], [buffer])
    assert isinstance(request, protocol.RunRound)
    strokes = [s for s in golden["strokes"] if s["kind"] == "stroke"]
    assert [s.object_id for s in request.scribbles] == [s["objectId"] for s in strokes]
    for scribble, stroke in zip(request.scribbles, strokes):
        np.testing.assert_allclose(scribble.points.ravel(), stroke["points"], rtol=1e-6)
        assert scribble.radius == pytest.approx(stroke["radius"])
    clicks = [s for s in golden["strokes"] if s["kind"] == "click"]
    assert request.clicks == tuple(protocol.Click(c["objectId"], c["points"][0], c["points"][1], c["radius"])
                                   for c in clicks)
    assert request.boxes == tuple(Box(b["objectId"], b["x0"], b["y0"], b["x1"], b["y1"]) for b in golden["boxes"])
    content, buffers = encode_run(request.frame, request.scribbles, request.clicks, request.boxes)
    assert content == golden["content"] and buffers == [buffer]


def test_golden_apply_mask_message_shared_with_the_typescript_side() -> None:
    golden = json.loads(GOLDEN.read_text())["apply_mask"]
    request = protocol.parse_message(golden["content"], [base64.b64decode(golden["buffer_base64"])])
    assert isinstance(request, protocol.ApplyMask) and request.frame == golden["frame"]
    expected = np.array(golden["values"], np.uint8).reshape(golden["height"], golden["width"])
    np.testing.assert_array_equal(request.mask, expected)


def test_run_and_apply_mask_carry_an_optional_propagation_range() -> None:
    stroke = [Scribble(1, np.array([[1.0, 2.0]]), 2.0)]
    request = protocol.parse_message(*encode_run(3, stroke))
    assert isinstance(request, protocol.RunRound) and request.propagation == protocol.WHOLE_VIDEO
    ranged = encode_run(3, stroke, propagation={"start": 2, "stop": 9, "direction": "forward"})
    request = protocol.parse_message(*ranged)
    assert isinstance(request, protocol.RunRound) and request.propagation == protocol.Propagation(2, 9, "forward")
    content, buffers = encode_apply_mask(4, np.ones((3, 4), np.uint8))
    content["propagation"] = {"start": 0, "stop": 4, "direction": "backward"}
    applied = protocol.parse_message(content, buffers)
    assert isinstance(applied, protocol.ApplyMask) and applied.propagation == protocol.Propagation(0, 4, "backward")


@pytest.mark.parametrize("propagation, match", [
    ({"start": 5, "stop": 2, "direction": "both"}, "start 5 is after stop 2"),
    ({"start": 0, "stop": 2, "direction": "sideways"}, "direction must be one of"),
    ({"start": "0", "stop": 2, "direction": "both"}, "'start' must be an integer"),
    ([0, 2], "must be an object"),
])
def test_bad_propagation_ranges_are_refused(propagation, match) -> None:
    content, buffers = encode_run(3, [Scribble(1, np.array([[1.0, 2.0]]), 2.0)], propagation=propagation)
    with pytest.raises(ProtocolError, match=match):
        protocol.parse_message(content, buffers)


def test_committed_schema_is_what_the_python_types_generate() -> None:
    """schema.json is shared with js/tests/protocol.test.ts: a change to one side alone fails there or here.
    Regenerate with ``python -m manet_widget.protocol.schema --write`` after changing both sides."""
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == message_schema()
    assert committed["protocol_version"] == protocol.PROTOCOL_VERSION


def test_every_request_in_the_schema_is_parsed_and_every_reply_is_typed() -> None:
    schema = message_schema()
    for kind in schema["requests"]:
        try:
            protocol.parse_message({"type": kind}, [])
        except ProtocolError as error:
            assert "unknown message type" not in str(error)
    assert set(schema["replies"]) == {"frame", "mask", "map", "round_started", "round_finished", "round_cancelled",
                                      "exported", "error"}
    reply = protocol.MapReply(1, 2, "global", 3, {"encoding": "none"}, "no map").to_json()
    assert reply == {"type": "map", "index": 1, "object_id": 2, "kind": "global", "version": 3,
                     "header": {"encoding": "none"}, "reason": "no map"}
    assert "reason" not in protocol.MapReply(1, 2, "global", 3, {"encoding": "none"}).to_json()
    assert set(reply) == set(schema["replies"]["map"]["properties"])


def test_the_widget_publishes_the_protocol_version() -> None:
    from manet_widget.widget import Annotator

    assert Annotator.protocol_version.default_value == protocol.PROTOCOL_VERSION


def test_messages_the_front_end_sends_match_the_schema() -> None:
    """What js/protocol.ts builds (the golden file, and the same shapes from the test encoders)."""
    golden = json.loads(GOLDEN.read_text())
    check_message("requests", golden["content"])
    check_message("requests", golden["apply_mask"]["content"])
    stroke = [Scribble(1, np.array([[1.0, 2.0]]), None)]
    check_message("requests", encode_run(0, stroke, [protocol.Click(2, 1.0, 1.0, None)], [Box(1, 0, 0, 4, 4)],
                                         propagation={"start": 0, "stop": 3, "direction": "forward"})[0])
    with pytest.raises(jsonschema.ValidationError, match="sideways"):
        sideways = {"start": 0, "stop": 3, "direction": "sideways"}
        check_message("requests", encode_run(0, stroke, propagation=sideways)[0])
