"""The first minute with a new video: the interactive frame is embedded before the background
preparation's queue, round 1 embeds frames as it propagates (the encoder one thread ahead), and
no frame is ever embedded twice, whichever threads ask."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference import propagation
from manet.inference.embeddings import EmbeddingStore

FRAMES = 16


def stroke() -> list[Scribble]:
    return [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[50, 40], [60, 44]])]


def slow_encoder(store: EmbeddingStore, seconds: float) -> list[list[int]]:
    """Make every encoder call take ``seconds`` longer; returns the log of the frames of each call,
    appended when the call starts."""
    calls: list[list[int]] = []
    original = store._encode

    def encode(frames: list[int]) -> np.ndarray:
        calls.append(list(frames))
        time.sleep(seconds)
        return original(frames)

    store._encode = encode  # type: ignore[method-assign]
    return calls


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "manet-embedding-prefetch"]


@pytest.fixture
def long_video() -> np.ndarray:
    return moving_square_video(frames=FRAMES)


def test_interact_embeds_its_frame_before_the_preparation_queue(tiny_model, long_video) -> None:
    session = manet.Session(tiny_model, long_video)
    calls = slow_encoder(session.embeddings, 0.05)
    preparing = threading.Event()
    worker = threading.Thread(target=session.prepare, kwargs={"progress": lambda done, total: preparing.set()})
    worker.start()
    assert preparing.wait(30), "preparation never finished a batch"
    calls_before = len(calls)
    session.interact(stroke(), frame=FRAMES - 1)  # the last frame: the preparation's order reaches it last
    embedded_at_mask = int(session.embeddings.computed.sum())
    worker.join(60)
    position = next(i for i, frames in enumerate(calls) if FRAMES - 1 in frames)
    assert calls[position] == [FRAMES - 1], "the interactive frame is embedded alone, at once"
    assert position <= calls_before + 1, "it waits for at most the preparation batch already running"
    assert embedded_at_mask < FRAMES, "the mask came back before the preparation finished"
    assert session.embeddings.computed.all(), "preparation went on after the interactive frame"
    assert (session.embeddings.encoded == 1).all(), "no frame embedded twice"


def test_no_frame_is_embedded_twice_whatever_the_threads(tiny_model, long_video) -> None:
    session = manet.Session(tiny_model, long_video)
    slow_encoder(session.embeddings, 0.002)
    store = session.embeddings
    rng = np.random.default_rng(0)
    orders = [rng.permutation(FRAMES) for _ in range(3)]
    readers = [threading.Thread(target=lambda o=order: [store.get(int(t)) for t in o]) for order in orders]
    preparer = threading.Thread(target=session.prepare)
    for thread in [preparer, *readers]:
        thread.start()
    for thread in [preparer, *readers]:
        thread.join(60)
    assert store.computed.all()
    np.testing.assert_array_equal(store.encoded, np.ones(FRAMES))


def test_prepare_stops_when_asked_and_resumes_where_it_stopped(tiny_model, long_video) -> None:
    session = manet.Session(tiny_model, long_video)
    assert session.prepare(stop=lambda: True) is False
    assert session.embeddings.computed.sum() == 1, "one frame per preparation batch"
    assert session.prepare() is True
    assert (session.embeddings.encoded == 1).all()


def test_prefetch_stays_a_bounded_distance_ahead_and_stops_on_close(tiny_model, long_video) -> None:
    store = manet.Session(tiny_model, long_video).embeddings
    order = list(range(5, FRAMES)) + list(range(4, -1, -1))
    with store.prefetch(order, ahead=2) as prefetch:
        wait_for(lambda: store.computed.sum() == 3)
        time.sleep(0.1)
        assert sorted(np.flatnonzero(store.computed)) == [5, 6, 7], "at most 2 frames past the consumer's"
        prefetch.advance(9)
        wait_for(lambda: store.computed[:12].sum() == 7)
        assert store.computed[[5, 6, 7, 8, 9, 10, 11]].all() and store.computed.sum() == 7
    assert not prefetch_threads(), "closing ends the producer thread"
    with pytest.raises(ValueError, match="ahead must be at least 1"):
        store.prefetch(order, ahead=0)


def test_pipelined_round_one_gives_the_masks_of_the_plain_one(tiny_model, long_video, monkeypatch) -> None:
    monkeypatch.setattr(propagation, "PREFETCH_AHEAD", 0)
    plain = manet.Session(tiny_model, long_video)
    plain_masks = plain.run_round(stroke(), frame=6)
    monkeypatch.setattr(propagation, "PREFETCH_AHEAD", 2)
    pipelined = manet.Session(tiny_model, long_video)
    calls = slow_encoder(pipelined.embeddings, 0.01)
    pipelined_masks = pipelined.run_round(stroke(), frame=6)
    np.testing.assert_array_equal(pipelined_masks, plain_masks)
    assert torch.equal(pipelined.rounds[-1].logits, plain.rounds[-1].logits)
    assert all(len(frames) == 1 for frames in calls), "round 1 embeds frame by frame, as it propagates"
    assert calls[0] == [6] and (pipelined.embeddings.encoded == 1).all()
    assert not prefetch_threads()


@pytest.mark.parametrize("ahead", [0, 2])
def test_cancel_during_pipelined_round_one_keeps_the_session_consistent(tiny_model, long_video, monkeypatch,
                                                                        ahead: int) -> None:
    monkeypatch.setattr(propagation, "PREFETCH_AHEAD", ahead)
    reference = manet.Session(tiny_model, long_video).run_round(stroke(), frame=3)
    session = manet.Session(tiny_model, long_video)
    slow_encoder(session.embeddings, 0.01)
    session.interact(stroke(), frame=3)
    seen: list[int] = []
    with pytest.raises(manet.PropagationCancelled):
        for index, _ in session.propagate(cancel=lambda: len(seen) >= 4):
            seen.append(index)
    assert not prefetch_threads(), "the producer ends with the cancelled round"
    assert session.rounds == [] and session.pending is None and not session.is_propagating
    assert len(session.state().local_rounds) == 0
    assert 0 < session.embeddings.computed.sum() < FRAMES, "frames embedded before the cancel are kept"
    np.testing.assert_array_equal(session.run_round(stroke(), frame=3), reference)
    assert (session.embeddings.encoded == 1).all()


def test_an_early_closed_pipelined_round_stops_its_producer(tiny_model, long_video, monkeypatch) -> None:
    monkeypatch.setattr(propagation, "PREFETCH_AHEAD", 2)
    session = manet.Session(tiny_model, long_video)
    slow_encoder(session.embeddings, 0.01)
    session.interact(stroke(), frame=0)
    generator = session.propagate()
    next(generator)
    assert prefetch_threads()
    generator.close()
    assert not prefetch_threads() and session.pending is None
