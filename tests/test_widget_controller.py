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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from manet.errors import PropagationCancelled, SessionStateError
from manet.inference.scribbles import Annotation, Scribble, make_annotation
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
    def object_ids(self) -> list[int]:
        return sorted({i for r in self._rounds for i in r.annotation.object_ids if i > 0})

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

    def interact(self, scribbles: list[Scribble], frame: int | None = None) -> np.ndarray:
        assert frame is not None
        annotation = make_annotation(frame, scribbles, self.num_frames, self.width, self.height)
        mask = self.masks[frame].copy()
        for s in annotation.scribbles:
            for x, y in s.points:
                cv2.circle(mask, (int(x), int(y)), int(s.radius or 1), int(s.object_id), -1)
        self._pending = (annotation, mask)
        return mask

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

    def update_state(self, values: dict[str, Any]) -> None:
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
    meta, header, data = protocol.encode_strokes(scribbles)
    return {"type": "run", "frame": frame, "strokes": meta, "header": header}, [data]


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
