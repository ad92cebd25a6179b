"""The annotator controller driven with fake front-end messages and a scripted session (no browser).

The fake session follows the ``manet.Session`` contract (interact starts a pending round,
propagate yields frame by frame and commits when exhausted, cancel/close discards) and lets a
test hold propagation between frames with a semaphore, so cancel and responsiveness are
checked deterministically.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from manet.errors import PropagationCancelled, SessionStateError
from manet.inference.scribbles import Annotation, Box, Scribble, click_radius, make_annotation
from manet_widget import protocol
from manet_widget.controller import AnnotatorController


@dataclass
class FakeRound:
    index: int
    annotation: Annotation
    seconds: float
    masks: np.ndarray


@dataclass
class FakeMaps:
    global_map: np.ndarray
    local_map: np.ndarray | None
    augmented_map: np.ndarray | None


class FakeSession:
    """Masks are the scribbled discs on every frame, shifted right by one pixel per frame."""

    def __init__(self, num_frames: int = 6, height: int = 24, width: int = 32) -> None:
        rng = np.random.default_rng(0)
        self.video = rng.integers(0, 255, (num_frames, height, width, 3), dtype=np.uint8)
        self.num_frames, self.height, self.width = num_frames, height, width
        self._rounds: list[FakeRound] = []
        self._pending: tuple[Annotation, np.ndarray] | None = None
        self.gate: threading.Semaphore | None = None
        self.fail_at: int | None = None
        self.yielded: list[int] = []

    @property
    def rounds(self) -> list[FakeRound]:
        return list(self._rounds)

    @property
    def masks(self) -> np.ndarray:
        if not self._rounds:
            return np.zeros((self.num_frames, self.height, self.width), np.uint8)
        return self._rounds[-1].masks.copy()

    def frame(self, t: int) -> np.ndarray:
        return self.video[t]

    def interact(self, scribbles: list[Scribble | Box], frame: int | None = None) -> np.ndarray:
        assert frame is not None
        annotation = make_annotation(frame, scribbles, self.num_frames, self.width, self.height)
        mask = self.masks[frame].copy()
        for box in annotation.boxes:
            mask[int(box.y0):int(box.y1), int(box.x0):int(box.x1)] = box.object_id
        for s in annotation.scribbles:
            for x, y in s.points:
                cv2.circle(mask, (int(x), int(y)), int(s.radius or 1), int(s.object_id), -1)
        self._pending = (annotation, mask)
        return mask

    def interact_mask(self, mask: np.ndarray, frame: int) -> np.ndarray:
        annotation = make_annotation(frame, [], self.num_frames, self.width, self.height, mask=mask)
        assert annotation.mask is not None
        self._pending = (annotation, np.array(annotation.mask))
        return np.array(annotation.mask)

    @property
    def object_ids(self) -> list[int]:
        return sorted({i for r in self._rounds for i in r.annotation.object_ids if i > 0})

    def propagate(self, cancel: Callable[[], bool] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        if self._pending is None:
            raise SessionStateError("call interact first")
        annotation, mask = self._pending
        order = list(range(annotation.frame + 1, self.num_frames)) + list(range(annotation.frame - 1, -1, -1))
        result = self.masks
        result[annotation.frame] = mask
        completed = False
        try:
            for t in order:
                if self.gate is not None:
                    assert self.gate.acquire(timeout=10), "test never released the gate"
                if cancel is not None and cancel():
                    raise PropagationCancelled("cancelled")
                if self.fail_at == t:
                    raise RuntimeError(f"model exploded at frame {t}")
                result[t] = np.roll(mask, t - annotation.frame, axis=1)
                self.yielded.append(t)
                yield t, result[t].copy()
            completed = True
        finally:
            if completed:
                self._rounds.append(FakeRound(len(self._rounds), annotation, 0.01, result))
            self._pending = None

    def suggest_frame(self) -> int:
        if not self._rounds:
            raise SessionStateError("no round")
        done = {r.annotation.frame for r in self._rounds}
        return next(t for t in range(self.num_frames - 1, -1, -1) if t not in done)

    def undo_round(self) -> None:
        if not self._rounds:
            raise SessionStateError("there is no round to undo")
        self._rounds.pop()

    def reset(self) -> None:
        self._rounds = []

    def maps(self, t: int, object_id: int) -> FakeMaps:
        if not self._rounds:
            raise SessionStateError("no round")
        grid = np.linspace(0, 1, 12 * 16, dtype=np.float32).reshape(12, 16)
        return FakeMaps(grid, None, grid if t == self._rounds[-1].annotation.frame else None)

    def upsample_map(self, grid_map: np.ndarray) -> np.ndarray:
        return cv2.resize(grid_map, (self.width, self.height), interpolation=cv2.INTER_LINEAR)


class Recorder:
    """A front end that records what the controller sends."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        self.state: dict[str, Any] = {}
        self.updates: list[dict[str, Any]] = []

    def send_message(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        self.messages.append((content, buffers))

    def update_state(self, values: Mapping[str, Any]) -> None:
        self.updates.append(dict(values))
        self.state.update(values)

    def of_type(self, kind: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [m for m in self.messages if m[0]["type"] == kind]


def make(**session_args: Any) -> tuple[FakeSession, Recorder, AnnotatorController]:
    session = FakeSession(**session_args)
    recorder = Recorder()
    controller = AnnotatorController(session, recorder)
    recorder.update_state(controller.initial_state())
    return session, recorder, controller


def run_content(frame: int, scribbles: list[Scribble]) -> tuple[dict[str, Any], list[bytes]]:
    return protocol.encode_run(frame, scribbles)


STROKE = [Scribble(1, np.array([[8.0, 10.0], [12.0, 12.0]]), 3.0)]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_initial_state_describes_the_video_and_one_object() -> None:
    _, recorder, _ = make()
    state = recorder.state
    assert (state["num_frames"], state["height"], state["width"]) == (6, 24, 32)
    assert state["objects"] == [{"id": 1, "name": "object 1", "color": "#e6194b"}]
    assert state["status"] == "idle" and state["round_index"] == 0 and state["suggested_frame"] == -1


def test_frames_are_served_as_jpeg_on_request_and_cached() -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "request_frame", "index": 3}, [])
    controller.handle_message({"type": "request_frame", "index": 3}, [])
    (first, buffers_a), (_, buffers_b) = recorder.of_type("frame")
    assert first["index"] == 3 and first["header"]["encoding"] == "jpeg"
    assert buffers_a[0] is buffers_b[0]  # the second reply reused the cached encoding
    decoded = protocol.decode_array(first["header"], buffers_a)
    assert decoded.shape == session.video[3].shape


def test_masks_before_any_round_are_empty() -> None:
    _, recorder, controller = make()
    controller.handle_message({"type": "request_mask", "index": 2}, [])
    (reply, buffers), = recorder.of_type("mask")
    assert reply["header"]["encoding"] == "empty" and buffers == [] and reply["pending"] is False


def test_a_round_streams_the_interactive_mask_first_then_every_frame_and_commits() -> None:
    session, recorder, controller = make()
    controller.handle_message(*run_content(2, STROKE))
    assert controller.wait(5)
    kinds = [m[0]["type"] for m in recorder.messages]
    assert kinds[0] == "round_started" and kinds[-1] == "round_finished"
    pending = [m for m in recorder.of_type("mask") if m[0]["pending"]]
    assert [m[0]["index"] for m in pending] == [2, 3, 4, 5, 1, 0]
    interactive = protocol.decode_array(pending[0][0]["header"], pending[0][1])
    assert interactive[10, 8] == 1 and interactive[0, 31] == 0
    state = recorder.state
    assert state["round_index"] == 1 and state["mask_version"] == 1 and state["status"] == "idle"
    assert state["annotated_frames"] == [2] and state["suggested_frame"] == 5
    assert state["round_history"][0]["frame"] == 2 and state["round_history"][0]["strokes"] == 1
    assert state["progress"] == {"done": 6, "total": 6}
    np.testing.assert_array_equal(controller.masks, session.masks)
    controller.handle_message({"type": "request_mask", "index": 4}, [])
    reply, buffers = recorder.of_type("mask")[-1]
    assert reply["version"] == 1 and not reply["pending"]
    np.testing.assert_array_equal(protocol.decode_array(reply["header"], buffers), session.masks[4])


def test_kernel_stays_responsive_and_cancel_keeps_the_previous_round() -> None:
    session, recorder, controller = make()
    controller.handle_message(*run_content(0, STROKE))
    assert controller.wait(5)
    before = controller.masks
    session.gate = threading.Semaphore(0)
    second = [Scribble(1, np.array([[25.0, 20.0]]), 2.0)]
    controller.handle_message(*run_content(3, second))
    session.gate.release(2)
    wait_for(lambda: len(session.yielded) == 5 + 2)
    # The handler returned while propagation is held: the main thread still serves frames.
    controller.handle_message({"type": "request_frame", "index": 1}, [])
    assert recorder.of_type("frame")[-1][0]["index"] == 1
    assert recorder.state["status"] == "propagating"
    controller.handle_message({"type": "cancel"}, [])
    assert recorder.state["status"] == "cancelling"
    session.gate.release(10)
    assert controller.wait(5)
    assert recorder.of_type("round_cancelled")[-1][0]["round"] == 2
    assert len(session.rounds) == 1 and recorder.state["round_index"] == 1
    assert recorder.state["mask_version"] == 1 and recorder.state["status"] == "idle"
    np.testing.assert_array_equal(controller.masks, before)
    np.testing.assert_array_equal(session.masks, before)
    assert recorder.state["error"] == ""


def test_run_while_busy_is_refused_and_reported() -> None:
    session, recorder, controller = make()
    session.gate = threading.Semaphore(0)
    controller.handle_message(*run_content(0, STROKE))
    wait_for(lambda: recorder.state["status"] == "propagating")
    controller.handle_message(*run_content(1, STROKE))
    assert "busy" in recorder.state["error"] and recorder.of_type("error")
    controller.handle_message({"type": "undo_round"}, [])
    assert "cannot undo a round while propagating" in recorder.state["error"]
    session.gate.release(100)
    assert controller.wait(5) and len(session.rounds) == 1


def test_undo_round_restores_the_previous_masks_and_bumps_the_version() -> None:
    _, recorder, controller = make()
    controller.start_round(STROKE, 0)
    controller.wait(5)
    first = controller.masks
    controller.start_round([Scribble(1, np.array([[20.0, 5.0]]), 2.0)], 4)
    controller.wait(5)
    assert recorder.state["round_index"] == 2 and not np.array_equal(controller.masks, first)
    controller.handle_message({"type": "undo_round"}, [])
    assert recorder.state["round_index"] == 1 and recorder.state["mask_version"] == 3
    assert recorder.state["annotated_frames"] == [0]
    np.testing.assert_array_equal(controller.masks, first)
    controller.handle_message({"type": "reset"}, [])
    assert recorder.state["round_index"] == 0 and not controller.masks.any()


def test_errors_from_bad_messages_and_failing_sessions_reach_the_widget(caplog) -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "fly"}, [])
    assert recorder.state["error"].startswith("ProtocolError: unknown message type")
    controller.handle_message(*run_content(1, [Scribble(1, np.array([[500.0, 5.0]]), 2.0)]))
    assert recorder.state["error"].startswith("ScribbleError") and "outside" in recorder.state["error"]
    session.fail_at = 3
    with caplog.at_level("ERROR", logger="manet_widget"):
        controller.handle_message(*run_content(1, STROKE))
        assert controller.wait(5)
    assert "model exploded at frame 3" in recorder.state["error"]
    assert "model exploded" in caplog.text
    assert recorder.of_type("error")[-1][0]["message"] == recorder.state["error"]
    assert recorder.state["status"] == "idle" and session.rounds == [] and session._pending is None
    controller.handle_message({"type": "undo_round"}, [])
    assert "no round to undo" in recorder.state["error"]


def test_objects_can_be_added_renamed_and_deleted_unless_they_have_masks() -> None:
    _, recorder, controller = make()
    controller.handle_message({"type": "add_object", "name": "car"}, [])
    controller.handle_message({"type": "rename_object", "object_id": 1, "name": "dog"}, [])
    assert [(o["id"], o["name"]) for o in recorder.state["objects"]] == [(1, "dog"), (2, "car")]
    controller.start_round(STROKE, 0)
    controller.wait(5)
    controller.handle_message({"type": "delete_object", "object_id": 1}, [])
    assert "has masks in committed rounds" in recorder.state["error"]
    controller.handle_message({"type": "delete_object", "object_id": 2}, [])
    assert [o["id"] for o in recorder.state["objects"]] == [1]
    controller.start_round([Scribble(5, np.array([[3.0, 3.0]]), 2.0)], 1)
    controller.wait(5)
    assert [o["id"] for o in recorder.state["objects"]] == [1, 5]


def test_maps_are_sent_upsampled_and_quantised_or_explained() -> None:
    session, recorder, controller = make()
    controller.handle_message({"type": "request_map", "index": 0, "object_id": 1, "kind": "global"}, [])
    assert "run a round first" in recorder.of_type("map")[-1][0]["reason"]
    controller.start_round(STROKE, 2)
    controller.wait(5)
    controller.handle_message({"type": "request_map", "index": 2, "object_id": 1, "kind": "augmented"}, [])
    reply, buffers = recorder.of_type("map")[-1]
    values = protocol.decode_array(reply["header"], buffers)
    assert values.shape == (24, 32) and values.dtype == np.uint8
    expected = np.round(session.upsample_map(session.maps(2, 1).global_map) * 255)
    assert np.abs(values.astype(int) - expected).max() <= 1
    controller.handle_message({"type": "request_map", "index": 3, "object_id": 1, "kind": "augmented"}, [])
    assert "only on scribbled frames" in recorder.of_type("map")[-1][0]["reason"]
    controller.handle_message({"type": "request_map", "index": 3, "object_id": 1, "kind": "local"}, [])
    assert "no local map" in recorder.of_type("map")[-1][0]["reason"]


def test_export_calls_the_library_exporter_in_the_background(monkeypatch, tmp_path) -> None:
    calls: list[tuple[str, Any, Any]] = []
    fake = types.ModuleType("manet.io.export")
    fake.export_npz = lambda masks, path: calls.append(("npz", masks.copy(), path))  # type: ignore[attr-defined]
    fake.export_overlay_video = lambda masks, source, path: calls.append(("video", source, path))  # type: ignore[attr-defined]

    def export_coco(masks: np.ndarray, path: Any, object_names: Any = None, progress: Any = None) -> None:
        calls.append(("coco", object_names, path))
        progress(1, 2)

    fake.export_coco = export_coco  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "manet.io.export", fake)
    session, recorder, controller = make()
    controller.handle_message({"type": "export", "format": "npz", "path": str(tmp_path / "m.npz")}, [])
    assert "run a round first" in recorder.state["error"]
    controller.start_round(STROKE, 0)
    controller.wait(5)
    controller.handle_message({"type": "export", "format": "npz", "path": str(tmp_path / "m.npz")}, [])
    controller.wait(5)
    controller.handle_message({"type": "export", "format": "video", "path": str(tmp_path / "v.mp4")}, [])
    controller.wait(5)
    assert calls[0][0] == "npz" and calls[0][2] == tmp_path / "m.npz"
    np.testing.assert_array_equal(calls[0][1], session.masks)
    assert calls[1] == ("video", session, tmp_path / "v.mp4")
    assert [m[0]["path"] for m in recorder.of_type("exported")] == [str(tmp_path / "m.npz"), str(tmp_path / "v.mp4")]
    controller.handle_message({"type": "rename_object", "object_id": 1, "name": "dog"}, [])
    controller.handle_message({"type": "export", "format": "coco", "path": str(tmp_path / "c.json")}, [])
    controller.wait(5)
    assert calls[2] == ("coco", {1: "dog"}, tmp_path / "c.json")
    assert {"done": 1, "total": 2} in [u.get("progress") for u in recorder.updates]
    controller.handle_message({"type": "export", "format": "png", "path": str(tmp_path / "p")}, [])
    controller.wait(5)
    assert "has no export_png_folder" in recorder.state["error"]


# ---------------------------------------------------------------------------------- clicks, boxes, paint
def test_clicks_strokes_and_boxes_mix_in_one_run_message() -> None:
    session, recorder, controller = make()
    clicks = [protocol.Click(1, 20.0, 6.0, None), protocol.Click(0, 3.0, 3.0, 2.5)]
    boxes = [Box(2, 2.0, 14.0, 12.0, 22.0)]
    controller.handle_message(*protocol.encode_run(1, STROKE, clicks, boxes))
    assert controller.wait(5) and recorder.state["error"] == ""
    annotation = session.rounds[0].annotation
    assert annotation.frame == 1 and annotation.boxes == tuple(boxes)
    points = [(s.object_id, s.points.tolist(), s.radius) for s in annotation.scribbles]
    assert points[0] == (1, STROKE[0].points.tolist(), 3.0)
    assert points[1:] == [(1, [[20.0, 6.0]], click_radius(24, 32)), (0, [[3.0, 3.0]], 2.5)]
    assert recorder.state["round_history"][0] | {"seconds": 0} == {
        "round": 1, "frame": 1, "objects": [0, 1, 2], "strokes": 1, "clicks": 2, "boxes": 1, "mask": False,
        "seconds": 0}
    assert [o["id"] for o in recorder.state["objects"]] == [1, 2]
    interactive = protocol.decode_array(*next((m[0]["header"], m[1]) for m in recorder.of_type("mask")))
    assert (interactive[14:22, 2:12] == 2).mean() > 0.9 and interactive[6, 20] == 1


def test_click_radius_trait_is_the_session_default() -> None:
    _, recorder, _ = make(height=200, width=300)
    assert recorder.state["click_radius"] == click_radius(200, 300) == 8.0


def test_box_outside_the_frame_is_refused_with_a_message_and_nothing_runs() -> None:
    session, recorder, controller = make()
    controller.handle_message(*protocol.encode_run(0, STROKE, boxes=[Box(1, 10.0, 10.0, 40.0, 20.0)]))
    assert recorder.state["error"].startswith("ScribbleError") and "outside the 32x24 frame" in recorder.state["error"]
    assert recorder.of_type("error") and not recorder.of_type("round_started")
    assert not controller.busy and recorder.state["status"] == "idle" and session.rounds == []
    controller.handle_message(*protocol.encode_run(0, STROKE))  # the widget still works afterwards
    assert controller.wait(5) and len(session.rounds) == 1


def test_applied_mask_is_the_frames_result_and_propagates() -> None:
    session, recorder, controller = make()
    painted = np.zeros((24, 32), np.uint8)
    painted[4:12, 6:20] = 3
    painted[15:20, 2:5] = 1
    controller.handle_message(*protocol.encode_apply_mask(2, painted))
    assert controller.wait(5) and recorder.state["error"] == ""
    pending = [m for m in recorder.of_type("mask") if m[0]["pending"]]
    assert [m[0]["index"] for m in pending] == [2, 3, 4, 5, 1, 0]
    np.testing.assert_array_equal(protocol.decode_array(pending[0][0]["header"], pending[0][1]), painted)
    np.testing.assert_array_equal(controller.masks[2], painted)
    assert session.rounds[0].annotation.mask is not None
    assert recorder.state["round_history"][0]["mask"] is True and recorder.state["round_index"] == 1
    assert [o["id"] for o in recorder.state["objects"]] == [1, 3]
    controller.handle_message({"type": "request_mask", "index": 2}, [])
    reply, buffers = recorder.of_type("mask")[-1]
    np.testing.assert_array_equal(protocol.decode_array(reply["header"], buffers), painted)


def test_mask_of_the_wrong_shape_shows_an_error_and_changes_nothing() -> None:
    session, recorder, controller = make()
    controller.handle_message(*protocol.encode_apply_mask(2, np.ones((20, 32), np.uint8)))
    assert recorder.state["error"].startswith("ScribbleError") and "(24, 32)" in recorder.state["error"]
    assert not controller.busy and session.rounds == [] and not recorder.of_type("round_started")
    content, buffers = protocol.encode_apply_mask(2, np.ones((24, 32), np.uint8))
    content["header"]["shape"] = [32, 24]
    controller.handle_message(content, buffers)
    assert "(24, 32)" in recorder.state["error"]
    controller.handle_message(*protocol.encode_apply_mask(9, np.ones((24, 32), np.uint8)))
    assert recorder.state["error"].startswith("FrameIndexError")
    assert recorder.state["status"] == "idle" and session.rounds == []


# ---------------------------------------------------------------------------------- autosave
class FakeAutosave:
    """Records saves; ``gate`` holds a save until released, ``fail`` makes the next save raise."""

    def __init__(self, folder: Any) -> None:
        self.folder = folder
        self.saves: list[tuple[int, list[dict[str, Any]]]] = []
        self.object_saves: list[list[dict[str, Any]]] = []
        self.session: FakeSession | None = None
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.fail: Exception | None = None

    def save(self, objects: Any) -> Any:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test never released the save"
        if self.fail is not None:
            raise self.fail
        assert self.session is not None and self.session._pending is None  # never mid-round
        self.saves.append((len(self.session.rounds), [dict(o) for o in objects]))
        return self.folder

    def save_objects(self, objects: Any) -> None:
        self.object_saves.append([dict(o) for o in objects])


def make_saving(tmp_path: Any) -> tuple[FakeSession, Recorder, AnnotatorController, FakeAutosave]:
    session, recorder = FakeSession(), Recorder()
    saver = FakeAutosave(tmp_path)
    saver.session = session
    controller = AnnotatorController(session, recorder, autosave=saver)
    recorder.update_state(controller.initial_state())
    return session, recorder, controller, saver


def test_autosave_runs_after_each_round_undo_and_reset(tmp_path) -> None:
    _session, recorder, controller, saver = make_saving(tmp_path)
    assert recorder.state["autosave_state"] == "ready" and recorder.state["autosave_path"] == str(tmp_path)
    controller.handle_message(*run_content(0, STROKE))
    assert controller.wait(5)
    assert saver.saves == [(1, [{"id": 1, "name": "object 1", "color": "#e6194b"}])]
    assert recorder.state["autosave_state"] == "saved" and recorder.state["status"] == "idle"
    statuses = [u["status"] for u in recorder.updates if "status" in u]
    assert statuses[-2:] == ["saving", "idle"]
    kinds = [m[0]["type"] for m in recorder.messages]
    assert kinds[-1] == "round_finished"  # the round shows as finished before the save starts
    controller.handle_message({"type": "rename_object", "object_id": 1, "name": "dog"}, [])
    assert saver.object_saves[-1][0]["name"] == "dog"
    controller.start_round(STROKE, 3)
    controller.wait(5)
    controller.handle_message({"type": "undo_round"}, [])
    assert controller.wait(5)
    controller.handle_message({"type": "reset"}, [])
    assert controller.wait(5)
    assert [count for count, _ in saver.saves] == [1, 2, 1, 0]


def test_autosave_runs_off_the_main_thread_and_a_run_queues_behind_it(tmp_path) -> None:
    session, recorder, controller, saver = make_saving(tmp_path)
    saver.gate = threading.Event()
    controller.handle_message(*run_content(0, STROKE))
    assert saver.started.wait(5)
    assert recorder.state["status"] == "saving" and recorder.state["round_index"] == 1
    controller.handle_message({"type": "request_frame", "index": 2}, [])  # served while saving
    assert recorder.of_type("frame")[-1][0]["index"] == 2
    controller.handle_message({"type": "request_map", "index": 0, "object_id": 1, "kind": "global"}, [])
    assert recorder.of_type("map")[-1][0]["header"]["encoding"] == "zlib"
    controller.handle_message(*run_content(4, [Scribble(1, np.array([[20.0, 5.0]]), 2.0)]))
    assert recorder.state["error"] == "" and recorder.state["status"] == "running"
    saver.gate.set()
    assert controller.wait(5)
    assert len(session.rounds) == 2 and [count for count, _ in saver.saves] == [1, 2]
    assert recorder.state["status"] == "idle" and recorder.state["autosave_state"] == "saved"


def test_undo_during_a_save_waits_for_it(tmp_path) -> None:
    session, recorder, controller, saver = make_saving(tmp_path)
    saver.gate = threading.Event()
    controller.start_round(STROKE, 0)
    assert saver.started.wait(5)
    threading.Timer(0.1, saver.gate.set).start()
    controller.handle_message({"type": "undo_round"}, [])
    assert recorder.state["error"] == "" and session.rounds == []
    assert controller.wait(5) and [count for count, _ in saver.saves] == [1, 0]


def test_a_failing_autosave_shows_an_error_and_keeps_the_round(tmp_path) -> None:
    session, recorder, controller, saver = make_saving(tmp_path)
    saver.fail = OSError("No space left on device")
    controller.handle_message(*run_content(0, STROKE))
    assert controller.wait(5)
    assert recorder.state["error"] == "OSError: No space left on device"
    assert recorder.of_type("error")[-1][0]["message"] == recorder.state["error"]
    assert recorder.state["autosave_state"] == "error" and recorder.state["status"] == "idle"
    assert recorder.state["round_index"] == 1 and len(session.rounds) == 1
    saver.fail = None
    controller.start_round(STROKE, 2)
    assert controller.wait(5) and recorder.state["autosave_state"] == "saved" and recorder.state["error"] == ""
