"""The session's public state: ``state()``/``from_state``, memories from tensors, the round
transaction, and propagation over a range of frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference.memory import GlobalMemory, LocalMemory, LocalRound
from manet.inference.state import Channels, SessionState

FIRST = [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[50, 40], [60, 44]])]
SECOND = [Scribble(1, [[30, 20], [34, 30]]), Scribble(2, [[50, 36], [56, 40]])]


def test_from_state_rebuilds_a_session_that_continues_identically(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(FIRST, frame=2)
    session.rename_object(1, "square")
    state = session.state()
    assert isinstance(state, manet.SessionState) and state.version == 2
    assert len(state.rounds) == len(state.local_rounds) == 1 and state.channels.ids == (0, 1)
    copy = manet.Session.from_state(tiny_model, video, state)
    assert copy.objects == session.objects and np.array_equal(copy.masks, session.masks)
    assert copy.can_undo
    assert np.array_equal(copy.run_round(SECOND, frame=6), session.run_round(SECOND, frame=6))
    copy.undo()
    assert np.array_equal(copy.masks, manet.Session.from_state(tiny_model, video, state).masks)


def test_from_state_refuses_a_state_of_another_video(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(FIRST, frame=2)
    with pytest.raises(manet.SessionStateError, match="logits"):
        manet.Session.from_state(tiny_model, moving_square_video(frames=5), session.state())
    with pytest.raises(manet.SessionStateError, match="annotation"):
        manet.Session.from_state(tiny_model, moving_square_video(height=40), session.state())


def test_session_state_checks_its_invariants(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(FIRST, frame=2)
    state = session.state()
    with pytest.raises(manet.SessionStateError, match="local-memory rounds"):
        dataclasses.replace(state, local_rounds=())
    with pytest.raises(manet.SessionStateError, match="channels"):
        dataclasses.replace(state, channels=Channels((0, 1, 2)))
    with pytest.raises(manet.SessionStateError, match="global memory"):
        dataclasses.replace(state, global_memory=None)
    with pytest.raises(manet.SessionStateError, match="object list"):
        dataclasses.replace(state, objects=())
    assert SessionState((), (), Channels(), (), None).rounds == ()


def test_memories_are_built_from_tensors() -> None:
    maps = torch.full((3, 2, 4, 5), 0.5, dtype=torch.float16)
    memory = GlobalMemory.from_tensors(maps, torch.tensor([True, False]))
    assert memory.maps is maps and memory.channels == 2
    assert torch.all(memory.read(1, 2) == 0.5)
    copy = memory.clone()
    copy.write(0, torch.zeros(2, 4, 5))
    assert torch.all(memory.read(0, 2) == 0.5), "a clone shares nothing"
    with pytest.raises(ValueError, match="float16"):
        GlobalMemory.from_tensors(maps.float(), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="written"):
        GlobalMemory.from_tensors(maps, torch.tensor([True]))
    local = LocalMemory([LocalRound(4, {5: torch.zeros(2, 2, 3, dtype=torch.float16)})])
    assert local.read(5, 2).shape == (2, 2, 3) and local.chosen_round(5, 2) == 0


def test_a_cancelled_round_rolls_back_its_transaction_in_full(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(FIRST, frame=2)
    state = session.state()
    memory = state.global_memory
    assert memory is not None
    maps = memory.maps.clone()
    session.interact(SECOND, frame=6)
    frames = session.propagate()
    next(frames)
    assert session.is_propagating
    assert len(session.state().local_rounds) == 1, "state() holds committed rounds only, even mid-round"
    frames.close()
    after = session.state()
    assert not session.is_propagating and after.global_memory is memory and torch.equal(memory.maps, maps)
    assert after.rounds == state.rounds and len(after.local_rounds) == 1
    session.run_round(SECOND, frame=6)  # the local memory is in step: the next round commits
    assert len(session.state().local_rounds) == 2


def test_a_range_recomputes_only_its_frames_and_keeps_the_others(tiny_model) -> None:
    video = moving_square_video(frames=12)
    session = manet.Session(tiny_model, video)
    session.run_round(FIRST, frame=2)
    before_masks, before = session.masks, session.state().rounds[-1].logits.clone()
    before_confidence = session.confidence
    session.interact(SECOND, frame=8)
    visited = [index for index, _ in session.propagate(start=6, stop=10)]
    assert visited == [9, 10, 7, 6]
    masks, state = session.masks, session.state()
    outside = [0, 1, 2, 3, 4, 5, 11]
    assert np.array_equal(masks[outside], before_masks[outside]), "frames outside keep their masks"
    assert 2 not in np.unique(masks[outside]), "a new object does not appear outside the range"
    logits = state.rounds[-1].logits
    assert logits.shape[1] == 3 and torch.equal(logits[outside, :2], before[outside])
    assert np.allclose(session.confidence[outside], before_confidence[outside], atol=1e-3)
    assert sorted(state.local_rounds[-1].maps) == [6, 7, 9, 10], "the local memory records visited frames"
    session.undo()
    assert np.array_equal(session.masks, before_masks)


def test_directions_and_range_errors(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.interact(FIRST, frame=3)
    assert [index for index, _ in session.propagate(direction="forward")] == [4, 5, 6, 7]
    assert not session.masks[:3].any(), "round 1: unvisited frames stay background"
    session.interact(FIRST, frame=3)
    assert [index for index, _ in session.propagate(direction="backward", start=1)] == [2, 1]
    session.interact(FIRST, frame=3)
    before = session.masks
    for kwargs, error, message in [
        ({"start": 4}, ValueError, "does not hold the interactive frame 3"),
        ({"stop": 8}, manet.FrameIndexError, "outside the video"),
        ({"start": -1}, manet.FrameIndexError, "outside the video"),
        ({"direction": "sideways"}, ValueError, "direction"),
    ]:
        with pytest.raises(error, match=message):
            next(session.propagate(**kwargs))
        assert session.pending is not None and not session.is_propagating and np.array_equal(session.masks, before)
    assert len(list(session.propagate(start=0, stop=7))) == 7
