"""Objects belong to the session: listing, naming, colours, deletion as an undoable step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import manet
from manet import ObjectInfo, Scribble

FIRST = [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[50, 40], [60, 44]])]


def painted_mask() -> np.ndarray:
    """Frame 5 painted with object 1 on the square and object 2 in a corner."""
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[16:32, 18:34] = 1
    mask[36:46, 44:60] = 2
    return mask


def two_rounds(tiny_model, video) -> manet.Session:
    session = manet.Session(tiny_model, video)
    session.run_round(FIRST, frame=1)
    session.interact_mask(painted_mask(), frame=5)
    list(session.propagate())
    return session


def captured(session: manet.Session) -> dict:
    """Everything observable of the committed state, copied."""
    state = session.state()
    assert state.global_memory is not None
    return {
        "masks": session.masks.copy(),
        "objects": session.objects,
        "channels": [record.channels for record in state.rounds],
        "logits": [record.logits.clone() for record in state.rounds],
        "before": [record.global_before.maps.clone() for record in state.rounds],
        "augmented": [None if r.augmented is None else r.augmented.clone() for r in state.rounds],
        "global": (state.global_memory.maps.clone(), state.global_memory.written.clone()),
        "local": [{frame: maps.clone() for frame, maps in entry.maps.items()} for entry in state.local_rounds],
        "annotations": [record.annotation for record in state.rounds],
    }


def assert_same(first: dict, second: dict) -> None:
    assert np.array_equal(first["masks"], second["masks"])
    assert first["objects"] == second["objects"] and first["channels"] == second["channels"]
    for name in ("logits", "before"):
        assert all(torch.equal(a, b) for a, b in zip(first[name], second[name], strict=True)), name
    assert all((a is None and b is None) or torch.equal(a, b)
               for a, b in zip(first["augmented"], second["augmented"], strict=True))
    assert torch.equal(first["global"][0], second["global"][0]) and torch.equal(first["global"][1], second["global"][1])
    for mine, theirs in zip(first["local"], second["local"], strict=True):
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[t], theirs[t]) for t in mine)
    for mine, theirs in zip(first["annotations"], second["annotations"], strict=True):
        assert (mine.frame, mine.object_ids, len(mine.scribbles)) == (theirs.frame, theirs.object_ids,
                                                                       len(theirs.scribbles))
        assert (mine.mask is None) == (theirs.mask is None)
        assert mine.mask is None or np.array_equal(mine.mask, theirs.mask)


def test_objects_are_listed_named_and_coloured(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    assert session.objects == ()
    first = session.add_object("car")
    assert first == ObjectInfo(1, "car", manet.color_for(1)) and first.color == manet.PALETTE[0]
    assert session.add_object(color="#ABCDEF", object_id=7) == ObjectInfo(7, "object 7", "#abcdef")
    assert session.add_object().id == 2, "the smallest free id"
    session.run_round([Scribble(3, [[12, 20], [20, 26]]), Scribble(0, [[50, 40], [60, 44]])], frame=1)
    assert [item.id for item in session.objects] == [1, 2, 3, 7], "a scribble introduces its object"
    assert session.objects[2] == ObjectInfo(3, "object 3", manet.color_for(3))
    assert session.rename_object(3, "  person ").name == "person"
    assert session.recolor_object(3, "#00ff00").color == "#00ff00"
    with pytest.raises(manet.UnknownObjectError):
        session.rename_object(9, "x")
    with pytest.raises(ValueError, match="non-empty"):
        session.rename_object(3, "   ")
    with pytest.raises(ValueError, match="#rrggbb"):
        session.recolor_object(3, "green")
    with pytest.raises(ValueError, match="exists already"):
        session.add_object(object_id=7)
    with pytest.raises(ValueError, match="1..255"):
        session.add_object(object_id=0)
    assert session.objects[2] == ObjectInfo(3, "person", "#00ff00"), "failed edits change nothing"


def test_deleting_an_object_after_two_rounds_removes_it_everywhere_and_undo_restores(tiny_model, video) -> None:
    session = two_rounds(tiny_model, video)
    session.rename_object(2, "sign")
    assert 2 in np.unique(session.masks) and session.object_ids == [1, 2]
    before = captured(session)
    session.delete_object(2)

    state = session.state()
    assert state.global_memory is not None
    assert state.channels.ids == (0, 1) and session.object_ids == [1]
    assert [item.id for item in session.objects] == [1]
    assert [record.channels.ids for record in state.rounds] == [(0, 1), (0, 1)]
    # Both memories: object 2's channel (index 2) is gone, the others are untouched.
    assert torch.equal(state.global_memory.maps, before["global"][0][:, :2])
    assert torch.equal(state.global_memory.written, before["global"][1][:2])
    for entry, old in zip(state.local_rounds, before["local"], strict=True):
        assert entry.maps.keys() == old.keys()
        assert all(torch.equal(entry.maps[t], old[t][:2]) for t in entry.maps)
    for record, logits in zip(state.rounds, before["logits"], strict=True):
        assert torch.equal(record.logits, logits[:, :2])
        assert record.augmented is None or record.augmented.shape[0] == 2
    # Every mask: no pixel of object 2; pixels of other objects keep their ids.
    masks = session.masks
    assert 2 not in np.unique(masks)
    elsewhere = before["masks"] != 2
    assert np.array_equal(masks[elsewhere], before["masks"][elsewhere])
    assert 2 not in np.unique(session.fixed_frames()[5]), "the painted mask lost object 2 too"
    assert 2 not in state.rounds[1].annotation.object_ids
    with pytest.raises(manet.UnknownObjectError):
        session.maps(3, 2)
    with pytest.raises(manet.UnknownObjectError):
        session.delete_object(2)

    session.undo()
    assert_same(before, captured(session))
    assert session.objects[1].name == "sign"
    # Undo goes on through the rounds as before.
    session.undo()
    assert len(session.rounds) == 1 and session.object_ids == [1]


def test_rounds_after_a_deletion_undo_in_order_and_match_a_session_without_the_object(tiny_model, video) -> None:
    session = two_rounds(tiny_model, video)
    session.delete_object(2)
    deleted = captured(session)
    session.run_round([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    assert session.can_undo and session.object_ids == [1]
    session.undo()  # the round
    assert_same(deleted, captured(session))
    session.undo()  # the deletion
    assert session.object_ids == [1, 2]
    session.undo()
    session.undo()
    assert not session.rounds and not session.can_undo
    with pytest.raises(manet.SessionStateError, match="nothing to undo"):
        session.undo()


def test_a_new_object_may_take_a_deleted_id_and_undo_brings_the_old_one_back(tiny_model, video) -> None:
    session = two_rounds(tiny_model, video)
    session.rename_object(2, "old")
    session.delete_object(2)
    assert session.add_object("new").id == 2
    session.undo()
    assert session.objects[1].name == "old" and session.object_ids == [1, 2]


def test_deleting_a_listed_object_without_masks_and_refusals(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.add_object("unused")
    session.delete_object(1)
    assert session.objects == () and session.can_undo
    session.undo()
    assert session.objects == (ObjectInfo(1, "unused", manet.color_for(1)),)
    session.run_round(FIRST, frame=1)
    session.interact(FIRST, frame=4)
    frames = session.propagate()
    next(frames)
    assert session.is_propagating and not session.can_undo
    with pytest.raises(manet.SessionStateError, match="propagation is running"):
        session.delete_object(1)
    frames.close()
    assert not session.is_propagating
    session.interact(FIRST, frame=4)
    session.delete_object(1)
    assert session.pending is None, "a deletion drops the pending round"


def test_objects_and_deletions_survive_save_and_load(tmp_path, tiny_model, video) -> None:
    session = two_rounds(tiny_model, video)
    session.interact([Scribble(2, [[50, 40], [54, 42]])], frame=7)  # a round only about object 2
    list(session.propagate())
    session.recolor_object(1, "#123456")
    session.delete_object(2)
    assert session.rounds[2].annotation.object_ids == []
    loaded = manet.Session.load(session.save(tmp_path / "saved"), tiny_model, video)
    assert loaded.objects == session.objects and loaded.objects[0].color == "#123456"
    assert np.array_equal(loaded.masks, session.masks)
    assert [record.channels for record in loaded.rounds] == [record.channels for record in session.rounds]
    assert np.array_equal(loaded.run_round(FIRST, frame=3), session.run_round(FIRST, frame=3))
