"""A real tiny session and a recording front end for the controller tests (importable by name).

The session is ``manet.Session`` on a random-weight ``ModelConfig.tiny()`` model and the synthetic
moving-square video. :class:`HeldSession` only adds a hook to its propagation: a test can hold it
between frames (``gate``) or make it fail at a frame, so cancel and responsiveness are checked
deterministically.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jsonschema
import numpy as np
import torch
from synthetic_video import moving_square_video

import manet
from manet.inference.scribbles import Scribble
from manet_widget import protocol
from manet_widget.controller import AnnotatorController, Autosave
from manet_widget.protocol.schema import message_schema

SCHEMA = message_schema()

FRAMES, HEIGHT, WIDTH = 6, 48, 64


class HeldSession(manet.Session):
    """A real session whose propagation can wait for the test between frames or fail at a frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate: threading.Semaphore | None = None
        self.fail_at: int | None = None
        self.yielded: list[int] = []

    def propagate(self, cancel: Callable[[], bool] | None = None, **kwargs: Any) -> Iterator[tuple[int, np.ndarray]]:
        inner = super().propagate(cancel, **kwargs)
        try:
            for index, mask in inner:
                if self.gate is not None:
                    assert self.gate.acquire(timeout=30), "test never released the gate"
                if self.fail_at == index:
                    raise RuntimeError(f"model exploded at frame {index}")
                self.yielded.append(index)
                yield index, mask
        finally:
            inner.close()  # type: ignore[attr-defined]


def check_message(direction: str, content: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``content`` is a valid ``direction`` ("requests"
    or "replies") message of the protocol schema - what js/protocol.ts accepts."""
    schema = SCHEMA[direction].get(content.get("type"))
    assert schema is not None, f"{content.get('type')!r} is not a {direction[:-1]} type of the protocol"
    jsonschema.Draft202012Validator({"$defs": SCHEMA["$defs"], **schema}).validate(content)


class Recorder:
    """A front end that records what the controller sends; every message must match the schema."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []
        self.state: dict[str, Any] = {}
        self.updates: list[dict[str, Any]] = []
        # Called with each message as it is sent (on the sending thread, between two frames of a round).
        self.on_message: Callable[[dict[str, Any]], None] | None = None

    def send_message(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        check_message("replies", content)
        self.messages.append((content, buffers))
        if self.on_message is not None:
            self.on_message(content)

    def update_state(self, values: Mapping[str, Any]) -> None:
        self.updates.append(dict(values))
        self.state.update(values)

    def of_type(self, kind: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [m for m in self.messages if m[0]["type"] == kind]

    def pending_indices(self) -> list[int]:
        return [m[0]["index"] for m in self.of_type("mask") if m[0]["pending"]]


def new_session() -> HeldSession:
    torch.manual_seed(0)
    return HeldSession(manet.load_model("tiny", weights=None), moving_square_video(FRAMES, HEIGHT, WIDTH))


def make(autosave: Autosave | None = None) -> tuple[HeldSession, Recorder, AnnotatorController]:
    session, recorder = new_session(), Recorder()
    controller = AnnotatorController(session, recorder, autosave=autosave)
    recorder.update_state(controller.initial_state())
    return session, recorder, controller


STROKE = [Scribble(1, np.array([[16.0, 20.0], [22.0, 26.0]]), 3.0)]
OTHER = [Scribble(2, np.array([[55.0, 6.0], [58.0, 10.0]]), 2.0)]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def decoded(message: tuple[dict[str, Any], list[bytes]]) -> np.ndarray:
    return protocol.decode_array(message[0]["header"], message[1])


