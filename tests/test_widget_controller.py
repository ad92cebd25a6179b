"""The annotator controller driven with front-end messages and a real tiny session (no browser):
frames, masks, rounds, cancel, undo, objects, maps, exports and prompts. The session and the
recording front end are in ``widget_session.py``; exports write real files into ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import torch
from protocol_encoders import encode_apply_mask, encode_run
from synthetic_video import moving_square_video
from widget_session import FRAMES, HEIGHT, OTHER, STROKE, WIDTH, Recorder, decoded, make, wait_for

import manet
import manet.inference.propagation as propagation
from manet.config import ModelConfig
from manet.inference.scribbles import Box, Scribble, click_radius
from manet.io import masks as masks_io
from manet.model.network import MANet
from manet_widget import protocol
from manet_widget.controller import AnnotatorController


def test_initial_state_describes_the_video_and_gives_the_session_one_object() -> None:
    session, recorder, _ = make()
    state = recorder.state
    assert (state["num_frames"], state["height"], state["width"]) == (FRAMES, HEIGHT, WIDTH)
    assert state["objects"] == [{"id": 1, "name": "object 1", "color": "#e6194b"}]
    assert [item.id for item in session.objects] == [1]  # the list is the session's
    assert state["status"] == "idle" and state["round_index"] == 0 and state["suggested_frame"] == -1
    assert state["can_undo"] is False


def test_frames_are_served_as_jpeg_on_request_and_cached() -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "request_frame", "index": 3}, [])
    controller.handle_message({"type": "request_frame", "index": 3}, [])
    (first, buffers_a), (_, buffers_b) = recorder.of_type("frame")
    assert first["index"] == 3 and first["header"]["encoding"] == "jpeg"
    assert buffers_a[0] is buffers_b[0]  # the second reply reused the cached encoding
    square = (slice(19, 29), slice(17, 27))  # inside frame 3's red square: JPEG keeps flat colour
    assert np.abs(decoded((first, buffers_a))[square].astype(int) - session.frame(3)[square]).mean() < 12


def test_masks_before_any_round_are_empty() -> None:
    _, recorder, controller = make()
    controller.handle_message({"type": "request_mask", "index": 2}, [])
    (reply, buffers), = recorder.of_type("mask")
    assert reply["header"]["encoding"] == "empty" and buffers == [] and reply["pending"] is False


def test_a_round_streams_the_interactive_mask_first_then_every_frame_and_commits() -> None:
    session, recorder, controller = make()
    controller.handle_message(*encode_run(2, STROKE))
    assert controller.wait(30) and recorder.state["error"] == ""
    kinds = [m[0]["type"] for m in recorder.messages]
    assert kinds[0] == "round_started" and kinds[-1] == "round_finished"
    assert recorder.of_type("round_started")[0][0] == {"type": "round_started", "round": 1, "frame": 2, "start": 0,
                                                       "stop": FRAMES - 1}
    assert recorder.pending_indices() == [2, 3, 4, 5, 1, 0]
    state = recorder.state
    assert state["round_index"] == 1 and state["mask_version"] == 1 and state["status"] == "idle"
    assert state["annotated_frames"] == [2] and 0 <= state["suggested_frame"] < FRAMES
    assert state["round_history"][0]["frame"] == 2 and state["round_history"][0]["strokes"] == 1
    assert state["progress"] == {"done": FRAMES, "total": FRAMES} and state["can_undo"] is True
    np.testing.assert_array_equal(controller.masks, session.masks)
    np.testing.assert_array_equal(decoded(recorder.of_type("mask")[0]), session.masks[2])  # streamed = committed
    controller.handle_message({"type": "request_mask", "index": 4}, [])
    reply, buffers = recorder.of_type("mask")[-1]
    assert reply["version"] == 1 and not reply["pending"]
    np.testing.assert_array_equal(protocol.decode_array(reply["header"], buffers), session.masks[4])


def test_kernel_stays_responsive_and_cancel_keeps_the_previous_round() -> None:
    session, recorder, controller = make()
    controller.handle_message(*encode_run(0, STROKE))
    assert controller.wait(30)
    before = controller.masks
    session.gate = threading.Semaphore(0)
    controller.handle_message(*encode_run(3, OTHER))
    session.gate.release(2)
    wait_for(lambda: len(session.yielded) == (FRAMES - 1) + 2)
    # The handler returned while propagation is held: the main thread still serves frames.
    controller.handle_message({"type": "request_frame", "index": 1}, [])
    assert recorder.of_type("frame")[-1][0]["index"] == 1
    assert recorder.state["status"] == "propagating"
    controller.handle_message({"type": "cancel"}, [])
    assert recorder.state["status"] == "cancelling"
    session.gate.release(10)
    assert controller.wait(30)
    assert recorder.of_type("round_cancelled")[-1][0]["round"] == 2
    assert len(session.rounds) == 1 and recorder.state["round_index"] == 1 and session.pending is None
    assert recorder.state["mask_version"] == 1 and recorder.state["status"] == "idle"
    np.testing.assert_array_equal(controller.masks, before)
    np.testing.assert_array_equal(session.masks, before)
    assert recorder.state["error"] == ""


def test_run_undo_and_delete_while_busy_are_refused_and_reported() -> None:
    session, recorder, controller = make()
    session.gate = threading.Semaphore(0)
    controller.handle_message(*encode_run(0, STROKE))
    wait_for(lambda: recorder.state["status"] == "propagating")
    controller.handle_message(*encode_run(1, STROKE))
    assert "busy" in recorder.state["error"] and recorder.of_type("error")
    controller.handle_message({"type": "undo"}, [])
    assert "cannot undo while propagating" in recorder.state["error"]
    controller.handle_message({"type": "delete_object", "object_id": 1}, [])
    assert "cannot delete an object while propagating" in recorder.state["error"]
    session.gate.release(100)
    assert controller.wait(30) and len(session.rounds) == 1 and [o.id for o in session.objects] == [1]


def test_undo_restores_the_previous_masks_and_bumps_the_version() -> None:
    session, recorder, controller = make()
    controller.start_round(STROKE, 0)
    controller.wait(30)
    first = controller.masks
    controller.start_round(OTHER, 4)
    controller.wait(30)
    assert recorder.state["round_index"] == 2 and not np.array_equal(controller.masks, first)
    controller.handle_message({"type": "undo"}, [])
    assert recorder.state["round_index"] == 1 and recorder.state["mask_version"] == 3
    assert recorder.state["annotated_frames"] == [0]
    np.testing.assert_array_equal(controller.masks, first)
    controller.handle_message({"type": "reset"}, [])
    assert recorder.state["round_index"] == 0 and not controller.masks.any() and not session.rounds


def test_errors_from_bad_messages_and_failing_sessions_reach_the_widget(caplog) -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "fly"}, [])
    assert recorder.state["error"].startswith("ProtocolError: unknown message type")
    controller.handle_message(*encode_run(1, [Scribble(1, np.array([[500.0, 5.0]]), 2.0)]))
    assert recorder.state["error"].startswith("ScribbleError") and "outside" in recorder.state["error"]
    session.fail_at = 3
    with caplog.at_level("ERROR", logger="manet_widget"):
        controller.handle_message(*encode_run(1, STROKE))
        assert controller.wait(30)
    assert "model exploded at frame 3" in recorder.state["error"]
    assert "model exploded" in caplog.text
    assert recorder.of_type("error")[-1][0]["message"] == recorder.state["error"]
    assert recorder.state["status"] == "idle" and session.rounds == [] and session.pending is None
    controller.handle_message({"type": "undo"}, [])
    assert recorder.state["error"].startswith("SessionStateError")


def test_objects_are_the_sessions_and_deleting_one_a_round_holds_is_undoable() -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "add_object", "name": "car"}, [])
    controller.handle_message({"type": "rename_object", "object_id": 1, "name": "dog"}, [])
    assert [(o["id"], o["name"]) for o in recorder.state["objects"]] == [(1, "dog"), (2, "car")]
    assert [(o.id, o.name) for o in session.objects] == [(1, "dog"), (2, "car")]
    controller.start_round([*STROKE, *OTHER], 0)
    controller.wait(30)
    with_both = controller.masks
    assert set(np.unique(with_both)) >= {1, 2}
    version = recorder.state["mask_version"]
    controller.handle_message({"type": "delete_object", "object_id": 1}, [])
    assert recorder.state["error"] == ""
    assert [o["id"] for o in recorder.state["objects"]] == [2]
    assert 1 not in np.unique(controller.masks) and recorder.state["mask_version"] == version + 1
    controller.handle_message({"type": "request_mask", "index": 0}, [])
    assert 1 not in np.unique(decoded(recorder.of_type("mask")[-1]))
    controller.handle_message({"type": "undo"}, [])
    assert [(o["id"], o["name"]) for o in recorder.state["objects"]] == [(1, "dog"), (2, "car")]
    np.testing.assert_array_equal(controller.masks, with_both)
    controller.handle_message({"type": "rename_object", "object_id": 7, "name": "cat"}, [])
    assert recorder.state["error"].startswith("UnknownObjectError")
    controller.handle_message({"type": "rename_object", "object_id": 1, "name": "  "}, [])
    assert recorder.state["error"].startswith("ValueError") and "non-empty" in recorder.state["error"]


def test_maps_are_sent_upsampled_and_quantised_or_explained() -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "request_map", "index": 0, "object_id": 1, "kind": "global"}, [])
    assert "run a round first" in recorder.of_type("map")[-1][0]["reason"]
    controller.start_round(STROKE, 2)
    controller.wait(30)
    controller.handle_message({"type": "request_map", "index": 4, "object_id": 1, "kind": "global"}, [])
    values = decoded(recorder.of_type("map")[-1])
    assert values.shape == (HEIGHT, WIDTH) and values.dtype == np.uint8
    expected = np.clip(session.upsample_map(session.maps(4, 1).global_map) * 255 + 0.5, 0, 255).astype(int)
    assert np.abs(values.astype(int) - expected).max() <= 1
    controller.handle_message({"type": "request_map", "index": 3, "object_id": 1, "kind": "augmented"}, [])
    assert "only on scribbled frames" in recorder.of_type("map")[-1][0]["reason"]



def test_a_global_or_augmented_map_request_computes_no_local_map(monkeypatch) -> None:
    torch.manual_seed(0)
    # heads that are pure matching (zero classifiers), as in the shipped weights: rounds defer the
    # local maps, and only a request for one computes it
    model = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="both")).eval()
    session = manet.Session(model, moving_square_video(FRAMES, HEIGHT, WIDTH))
    recorder = Recorder()
    controller = AnnotatorController(session, recorder)
    recorder.update_state(controller.initial_state())
    controller.start_round(STROKE, 2)
    controller.wait(30)
    calls: list[int] = []
    original = propagation.local_distances
    monkeypatch.setattr(propagation, "local_distances", lambda *args, **kwargs: calls.append(1) or original(
        *args, **kwargs))
    for kind in ("global", "augmented"):
        controller.handle_message({"type": "request_map", "index": 4, "object_id": 1, "kind": kind}, [])
    assert recorder.of_type("map")[-2][0]["header"]["encoding"] != "none", "the global map was sent"
    assert not calls, "a global or augmented map request computed the deferred local map"
    controller.handle_message({"type": "request_map", "index": 4, "object_id": 1, "kind": "local"}, [])
    assert calls, "the local map request computed it"
    local = recorder.of_type("map")[-1]
    assert local[0]["kind"] == "local" and local[0]["header"]["encoding"] != "none"
    expected = np.clip(session.upsample_map(session.maps(4, 1).local_map) * 255 + 0.5, 0, 255).astype(int)
    assert np.abs(decoded(local).astype(int) - expected).max() <= 1


def test_exports_write_real_files_in_the_background(tmp_path: Path) -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "export", "format": "npz", "path": str(tmp_path / "m.npz")}, [])
    assert "run a round first" in recorder.state["error"]
    controller.start_round(STROKE, 0)
    controller.wait(30)
    controller.handle_message({"type": "rename_object", "object_id": 1, "name": "dog"}, [])
    for export_format, name in (("npz", "m.npz"), ("png", "pngs"), ("coco", "c.json"), ("video", "v.mp4")):
        controller.handle_message({"type": "export", "format": export_format, "path": str(tmp_path / name)}, [])
        assert controller.wait(60) and recorder.state["error"] == "", recorder.state["error"]
    assert [m[0]["path"] for m in recorder.of_type("exported")] == [
        str(tmp_path / name) for name in ("m.npz", "pngs", "c.json", "v.mp4")]
    assert session.masks.any()
    np.testing.assert_array_equal(masks_io.load_npz_masks(tmp_path / "m.npz"), session.masks)
    assert masks_io.load_npz_names(tmp_path / "m.npz") == {1: "dog"}
    np.testing.assert_array_equal(masks_io.load_png_masks(tmp_path / "pngs"), session.masks)
    np.testing.assert_array_equal(masks_io.load_coco(tmp_path / "c.json"), session.masks)
    categories = json.loads((tmp_path / "c.json").read_text())["categories"]
    assert {"id": 1, "name": "dog"}.items() <= categories[0].items()
    assert (tmp_path / "v.mp4").stat().st_size > 0
    assert {"done": FRAMES, "total": FRAMES} in [u.get("progress") for u in recorder.updates]


# ---------------------------------------------------------------------------------- clicks, boxes, paint
def test_clicks_strokes_and_boxes_mix_in_one_run_message() -> None:
    session, recorder, controller = make()
    clicks = [protocol.Click(1, 20.0, 24.0, None), protocol.Click(0, 3.0, 3.0, 2.5)]
    boxes = [Box(2, 40.0, 30.0, 60.0, 44.0)]
    controller.handle_message(*encode_run(1, STROKE, clicks, boxes))
    assert controller.wait(30) and recorder.state["error"] == ""
    annotation = session.rounds[0].annotation
    assert annotation.frame == 1 and annotation.boxes == tuple(boxes)
    points = [(s.object_id, s.points.tolist(), s.radius) for s in annotation.scribbles]
    assert points[0] == (1, STROKE[0].points.tolist(), 3.0)
    assert points[1:] == [(1, [[20.0, 24.0]], click_radius(HEIGHT, WIDTH)), (0, [[3.0, 3.0]], 2.5)]
    assert recorder.state["round_history"][0] | {"seconds": 0} == {
        "round": 1, "frame": 1, "objects": [0, 1, 2], "strokes": 1, "clicks": 2, "boxes": 1, "mask": False,
        "seconds": 0}
    assert [o["id"] for o in recorder.state["objects"]] == [1, 2]


def test_click_radius_trait_is_the_session_default() -> None:
    _, recorder, _ = make()
    assert recorder.state["click_radius"] == click_radius(HEIGHT, WIDTH)


def test_box_outside_the_frame_is_refused_with_a_message_and_nothing_runs() -> None:
    session, recorder, controller = make()
    controller.handle_message(*encode_run(0, STROKE, boxes=[Box(1, 10.0, 10.0, 90.0, 20.0)]))
    assert recorder.state["error"].startswith("ScribbleError") and "outside the 64x48 frame" in recorder.state["error"]
    assert recorder.of_type("error") and not recorder.of_type("round_started")
    assert not controller.busy and recorder.state["status"] == "idle" and session.rounds == []
    controller.handle_message(*encode_run(0, STROKE))  # the widget still works afterwards
    assert controller.wait(30) and len(session.rounds) == 1


def test_applied_mask_is_the_frames_result_and_propagates() -> None:
    session, recorder, controller = make()
    painted = np.zeros((HEIGHT, WIDTH), np.uint8)
    painted[16:32, 12:28] = 3
    painted[40:46, 2:8] = 1
    controller.handle_message(*encode_apply_mask(2, painted))
    assert controller.wait(30) and recorder.state["error"] == ""
    assert recorder.pending_indices() == [2, 3, 4, 5, 1, 0]
    np.testing.assert_array_equal(decoded(recorder.of_type("mask")[0]), painted)
    np.testing.assert_array_equal(controller.masks[2], painted)
    assert session.rounds[0].annotation.mask is not None
    assert recorder.state["round_history"][0]["mask"] is True and recorder.state["round_index"] == 1
    assert [o["id"] for o in recorder.state["objects"]] == [1, 3]


def test_mask_of_the_wrong_shape_shows_an_error_and_changes_nothing() -> None:
    session, recorder, controller = make()
    controller.handle_message(*encode_apply_mask(2, np.ones((20, WIDTH), np.uint8)))
    assert recorder.state["error"].startswith("ScribbleError") and f"({HEIGHT}, {WIDTH})" in recorder.state["error"]
    controller.handle_message(*encode_apply_mask(9, np.ones((HEIGHT, WIDTH), np.uint8)))
    assert recorder.state["error"].startswith("FrameIndexError")
    assert recorder.state["status"] == "idle" and session.rounds == [] and not recorder.of_type("round_started")
