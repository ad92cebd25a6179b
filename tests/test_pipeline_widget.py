"""The annotator's first minute: a round started while the embeddings are being prepared does not
wait for them (the warm-up stops after its batch and resumes once the round ends), and the round
job reports where its time went."""

from __future__ import annotations

import time

import numpy as np
import torch
from synthetic_video import moving_square_video
from widget_session import HEIGHT, STROKE, WIDTH, HeldSession, Recorder, wait_for

import manet
from manet_widget import protocol
from manet_widget.controller import AnnotatorController

FRAMES = 16


def slow_session(seconds: float) -> tuple[HeldSession, list[list[int]]]:
    torch.manual_seed(0)
    session = HeldSession(manet.load_model("tiny", weights=None), moving_square_video(FRAMES, HEIGHT, WIDTH))
    calls: list[list[int]] = []
    original = session.embeddings._encode

    def encode(frames: list[int]) -> np.ndarray:
        calls.append(list(frames))
        time.sleep(seconds)
        return original(frames)

    session.embeddings._encode = encode  # type: ignore[method-assign]
    return session, calls


def test_a_round_during_preparation_starts_at_once_and_preparation_resumes_after() -> None:
    session, calls = slow_session(0.1)
    recorder = Recorder()
    controller = AnnotatorController(session, recorder)
    recorder.update_state(controller.initial_state())
    embedded_at_mask: list[int] = []
    recorder.on_message = lambda content: (embedded_at_mask.append(int(session.embeddings.computed.sum()))
                                           if content["type"] == "mask" and content["index"] == 13 else None)
    controller.start_prepare()
    wait_for(lambda: recorder.state["progress"]["done"] > 0)
    controller.start_round(STROKE, 13, protocol.Propagation(12, 15))
    wait_for(lambda: bool(embedded_at_mask))
    assert embedded_at_mask[0] < FRAMES, "the interactive mask did not wait for the whole preparation"
    assert controller.wait(60) and recorder.state["error"] == ""
    assert len(session.rounds) == 1
    statuses = [update["status"] for update in recorder.updates if "status" in update]
    assert statuses.index("preparing", statuses.index("running")) > statuses.index("running"), \
        "the warm-up resumed after the round"
    assert session.embeddings.computed.all() and (session.embeddings.encoded == 1).all()
    position = next(i for i, frames in enumerate(calls) if 13 in frames)
    assert calls[position] == [13] and position <= 2, "the scribbled frame went before the preparation's queue"


def test_the_round_job_times_the_session_and_the_widget_apart() -> None:
    session, _ = slow_session(0.0)
    recorder = Recorder()
    controller = AnnotatorController(session, recorder)
    controller.start_round(STROKE, 0)
    assert controller.wait(60) and controller.last_round is not None
    timing = controller.last_round.timing.as_dict()
    assert timing["frames"] == FRAMES - 1
    assert timing["session_seconds"] > 0 and timing["widget_seconds"] > 0
    assert timing["widget_ms_per_frame"] == 1000 * timing["widget_seconds"] / (FRAMES - 1)

