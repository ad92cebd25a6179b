"""The controller's propagation range and autosave, on a real tiny session (see ``widget_session.py``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from protocol_encoders import encode_run
from widget_session import FRAMES, OTHER, STROKE, HeldSession, Recorder, make

import manet
from manet_widget.controller import AnnotatorController


# ---------------------------------------------------------------------------------- propagation range
def test_a_ranged_round_recomputes_only_its_frames() -> None:
    session, recorder, controller = make()
    controller.start_round(STROKE, 0)
    controller.wait(30)
    first = controller.masks
    controller.handle_message(*encode_run(4, OTHER, propagation={"start": 3, "stop": 5, "direction": "both"}))
    assert controller.wait(30) and recorder.state["error"] == ""
    assert recorder.of_type("round_started")[-1][0] | {"round": 0} == {
        "type": "round_started", "round": 0, "frame": 4, "start": 3, "stop": 5}
    assert recorder.pending_indices()[FRAMES:] == [4, 5, 3]
    assert recorder.state["progress"] == {"done": 3, "total": 3}
    np.testing.assert_array_equal(controller.masks[:3], first[:3])
    # the round added object 2 and the controller shows the session's new masks of its frames
    # (whether object 2 wins pixels on them is up to the random-weight model)
    assert session.rounds[-1].channels.ids == (0, 1, 2)
    np.testing.assert_array_equal(controller.masks[3:], session.masks[3:])
    controller.handle_message(*encode_run(2, OTHER, propagation={"start": 0, "stop": 5, "direction": "backward"}))
    assert controller.wait(30)
    assert recorder.pending_indices()[FRAMES + 3:] == [2, 1, 0]


def test_a_frame_outside_the_range_is_refused_before_anything_runs() -> None:
    session, recorder, controller = make()
    controller.handle_message(*encode_run(1, STROKE, propagation={"start": 3, "stop": 5, "direction": "both"}))
    assert recorder.state["error"].startswith("FrameIndexError") and "outside the propagation range 3..5" in \
        recorder.state["error"]
    controller.handle_message(*encode_run(1, STROKE, propagation={"start": 0, "stop": 9, "direction": "both"}))
    assert "not inside the video's frames 0..5" in recorder.state["error"]
    assert not recorder.of_type("round_started") and session.rounds == []


# ---------------------------------------------------------------------------------- autosave
class RecordingAutosave:
    """Records what the session holds at each save; ``gate`` holds a save, ``fail`` makes the next one raise."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saves: list[tuple[int, list[str]]] = []
        self.session: manet.Session | None = None
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.fail: Exception | None = None

    def save(self) -> Path:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30), "test never released the save"
        if self.fail is not None:
            raise self.fail
        assert self.session is not None and self.session.pending is None  # never mid-round
        self.saves.append((len(self.session.rounds), [o.name for o in self.session.objects]))
        return self.folder


def make_saving(tmp_path: Path) -> tuple[HeldSession, Recorder, AnnotatorController, RecordingAutosave]:
    saver = RecordingAutosave(tmp_path)
    session, recorder, controller = make(autosave=saver)
    saver.session = session
    return session, recorder, controller, saver


def test_autosave_runs_after_each_round_object_edit_undo_and_reset(tmp_path: Path) -> None:
    _session, recorder, controller, saver = make_saving(tmp_path)
    assert recorder.state["autosave_state"] == "ready" and recorder.state["autosave_path"] == str(tmp_path)
    controller.handle_message(*encode_run(0, STROKE))
    assert controller.wait(30)
    assert saver.saves == [(1, ["object 1"])]
    assert recorder.state["autosave_state"] == "saved" and recorder.state["status"] == "idle"
    statuses = [u["status"] for u in recorder.updates if "status" in u]
    assert statuses[-2:] == ["saving", "idle"]
    assert [m[0]["type"] for m in recorder.messages][-1] == "round_finished"  # shown before the save starts
    controller.handle_message({"type": "rename_object", "object_id": 1, "name": "dog"}, [])
    assert controller.wait(30) and saver.saves[-1] == (1, ["dog"])
    controller.start_round(STROKE, 3)
    controller.wait(30)
    controller.handle_message({"type": "undo"}, [])
    assert controller.wait(30)
    controller.handle_message({"type": "reset"}, [])
    assert controller.wait(30)
    assert [count for count, _ in saver.saves] == [1, 1, 2, 1, 0]


def test_autosave_runs_off_the_main_thread_and_a_run_queues_behind_it(tmp_path: Path) -> None:
    session, recorder, controller, saver = make_saving(tmp_path)
    saver.gate = threading.Event()
    controller.handle_message(*encode_run(0, STROKE))
    assert saver.started.wait(30)
    assert recorder.state["status"] == "saving" and recorder.state["round_index"] == 1
    controller.handle_message({"type": "request_frame", "index": 2}, [])  # served while saving
    assert recorder.of_type("frame")[-1][0]["index"] == 2
    controller.handle_message({"type": "request_map", "index": 0, "object_id": 1, "kind": "global"}, [])
    assert recorder.of_type("map")[-1][0]["header"]["encoding"] == "zlib"
    controller.handle_message(*encode_run(4, OTHER))
    assert recorder.state["error"] == "" and recorder.state["status"] == "running"
    saver.gate.set()
    assert controller.wait(30)
    assert len(session.rounds) == 2 and [count for count, _ in saver.saves] == [1, 2]
    assert recorder.state["status"] == "idle" and recorder.state["autosave_state"] == "saved"


def test_undo_during_a_save_waits_for_it(tmp_path: Path) -> None:
    session, recorder, controller, saver = make_saving(tmp_path)
    saver.gate = threading.Event()
    controller.start_round(STROKE, 0)
    assert saver.started.wait(30)
    threading.Timer(0.1, saver.gate.set).start()
    controller.handle_message({"type": "undo"}, [])
    assert recorder.state["error"] == "" and session.rounds == []
    assert controller.wait(30) and [count for count, _ in saver.saves] == [1, 0]


def test_a_failing_autosave_shows_an_error_and_keeps_the_round(tmp_path: Path) -> None:
    session, recorder, controller, saver = make_saving(tmp_path)
    saver.fail = OSError("No space left on device")
    controller.handle_message(*encode_run(0, STROKE))
    assert controller.wait(30)
    assert recorder.state["error"] == "OSError: No space left on device"
    assert recorder.of_type("error")[-1][0]["message"] == recorder.state["error"]
    assert recorder.state["autosave_state"] == "error" and recorder.state["status"] == "idle"
    assert recorder.state["round_index"] == 1 and len(session.rounds) == 1
    saver.fail = None
    controller.start_round(STROKE, 2)
    assert controller.wait(30) and recorder.state["autosave_state"] == "saved" and recorder.state["error"] == ""


@pytest.mark.parametrize("direction, expected", [("forward", [4, 5]), ("backward", [4, 3, 2, 1, 0])])
def test_direction_limits_the_round_to_one_side(direction: str, expected: list[int]) -> None:
    _, recorder, controller = make()
    controller.handle_message(*encode_run(4, STROKE, propagation={"start": 0, "stop": 5, "direction": direction}))
    assert controller.wait(30) and recorder.state["error"] == ""
    assert recorder.pending_indices() == expected
    assert recorder.state["progress"] == {"done": len(expected), "total": len(expected)}


def test_an_object_renamed_during_a_round_is_saved_even_when_the_round_is_cancelled(tmp_path: Path) -> None:
    _session, recorder, controller, saver = make_saving(tmp_path)

    def rename_then_cancel(content: dict[str, Any]) -> None:
        # Messages handled between two frames of the round, as the kernel's main thread would.
        if content["type"] == "mask" and content["pending"] and recorder.on_message is not None:
            recorder.on_message = None
            controller.handle_message({"type": "rename_object", "object_id": 1, "name": "dog"}, [])
            assert recorder.state["objects"][0]["name"] == "dog" and saver.saves == []  # never mid-round
            controller.handle_message({"type": "cancel"}, [])

    recorder.on_message = rename_then_cancel
    controller.handle_message(*encode_run(0, STROKE))
    assert controller.wait(30) and recorder.of_type("round_cancelled") and recorder.state["error"] == ""
    assert saver.saves == [(0, ["dog"])]
