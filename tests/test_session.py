"""The session end to end on a tiny synthetic video with a tiny random model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.config import SessionConfig
from manet.inference.memory import LocalMemory
from manet.inference.scribbles import to_davis
from manet.model.matching import upsample_maps


def square_scribbles() -> list[Scribble]:
    return [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[50, 40], [60, 44]])]


def snapshot(session: manet.Session) -> tuple:
    state = session.state()
    memory = state.global_memory.maps.clone() if state.global_memory is not None else None
    return session.masks.copy(), memory, len(session.rounds), list(session.object_ids), len(state.local_rounds)


def assert_same(first: tuple, second: tuple) -> None:
    assert np.array_equal(first[0], second[0])
    assert (first[1] is None and second[1] is None) or torch.equal(first[1], second[1])
    assert first[2:] == second[2:]


def test_round_returns_masks_at_original_size_and_commits(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    mask = session.interact(square_scribbles(), frame=2)
    assert mask.shape == (48, 64) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1}
    assert session.pending is not None and not session.rounds
    order = [index for index, frame_mask in session.propagate()]
    assert order == [3, 4, 5, 6, 7, 1, 0], "forward to the end, then backward"
    assert len(session.rounds) == 1 and session.pending is None
    masks = session.masks
    assert masks.shape == (8, 48, 64) and masks.dtype == np.uint8
    assert np.array_equal(masks[2], mask), "the interactive frame keeps the interaction head's mask"
    assert session.object_ids == [1]
    assert session.confidence.shape == (8,)


def test_working_resolution_is_a_session_setting(tiny_model) -> None:
    video = moving_square_video(frames=3, height=96, width=128)
    session = manet.Session(tiny_model, video, SessionConfig(working_size=48))
    assert session.working_size == (48, 64)
    assert session.grid == (12, 16)
    masks = session.run_round([Scribble(1, [[30, 40], [50, 50]])], frame=0)
    assert masks.shape == (3, 96, 128)


def test_objects_may_first_appear_in_a_later_round(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round([Scribble(1, [[12, 20], [20, 26]])], frame=0)
    session.run_round([Scribble(2, [[40, 40], [44, 44]]), Scribble(0, [[5, 5]], radius=2)], frame=5)
    assert session.object_ids == [1, 2]
    assert session.annotated_frames == [0, 5]
    maps = session.maps(5, 2)
    assert maps.global_map.shape == session.grid and maps.augmented_map is not None
    assert maps.local_map is None, "the interactive frame of the last round has no local map of its own rounds"
    other = session.maps(3, 1)
    assert other.local_map is not None and other.augmented_map is None
    assert 0.0 <= other.global_map.min() and other.global_map.max() <= 1.0


def test_undo_round_restores_previous_round_exactly(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(square_scribbles(), frame=2)
    before = snapshot(session)
    session.run_round([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    session.undo_round()
    assert_same(before, snapshot(session))
    session.undo_round()
    assert not session.rounds and not session.masks.any()
    with pytest.raises(manet.SessionStateError):
        session.undo_round()


def test_cancel_and_early_close_leave_the_session_as_it_was(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(square_scribbles(), frame=2)
    before = snapshot(session)
    session.interact([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    seen = []
    with pytest.raises(manet.PropagationCancelled):
        for index, _ in session.propagate(cancel=lambda: len(seen) >= 2):
            seen.append(index)
    assert_same(before, snapshot(session))
    assert session.pending is None, "a cancelled round's scribbles are dropped, as before interact()"
    session.interact([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    generator = session.propagate()
    next(generator)
    generator.close()
    assert_same(before, snapshot(session))
    assert session.pending is None
    # The session still works after a cancelled round, and the result is the uncancelled one's.
    session.interact([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    list(session.propagate())
    assert len(session.rounds) == 2


def test_same_round_twice_gives_same_result(tiny_model, video) -> None:
    first = manet.Session(tiny_model, video).run_round(square_scribbles(), frame=2)
    second = manet.Session(tiny_model, video).run_round(square_scribbles(), frame=2)
    assert np.array_equal(first, second)


def test_davis_dict_round_trip(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    annotation = manet.Annotation(4, tuple(square_scribbles()))
    davis = to_davis([annotation], 8, 64, 48)
    from_dict = session.interact(davis)
    from_list = session.interact(square_scribbles(), frame=4)
    assert np.array_equal(from_dict, from_list)


@pytest.mark.parametrize("config", [
    SessionConfig(global_memory=False), SessionConfig(local_memory=False), SessionConfig(memory_rounds=3),
    SessionConfig(augmented_map=False), SessionConfig(window=2),
])
def test_ablation_switches_run_multi_round(tiny_model, video, config: SessionConfig) -> None:
    session = manet.Session(tiny_model, video, config)
    session.run_round(square_scribbles(), frame=2)
    session.run_round([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    assert session.masks.shape == (8, 48, 64)


def test_global_memory_aggregates_over_rounds(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(square_scribbles(), frame=2)
    first = session.maps(4, 1).global_map.copy()
    session.run_round([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    second = session.maps(4, 1).global_map
    assert np.all(second <= first + 1e-3), "eq 3: the memory only ever decreases"


def test_bad_input_raises_and_leaves_session_unchanged(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(square_scribbles(), frame=2)
    before = snapshot(session)
    with pytest.raises(manet.ScribbleError):
        session.interact([], frame=1)
    with pytest.raises(manet.ScribbleError):
        session.interact([Scribble(1, [[70, 10]])], frame=1)  # x beyond the 64-pixel width
    with pytest.raises(manet.ScribbleError):
        Scribble(1, np.zeros((0, 2)))
    with pytest.raises(manet.ScribbleError):
        Scribble(300, [[1, 1]])
    with pytest.raises(manet.FrameIndexError):
        session.interact(square_scribbles(), frame=8)
    with pytest.raises(manet.FrameIndexError):
        session.interact(square_scribbles())
    with pytest.raises(manet.ScribbleError):
        session.interact({"scribbles": [[{"path": [[1.5, 0.2]], "object_id": 1}]] + [[]] * 7})
    with pytest.raises(manet.ScribbleError):
        session.interact({"scribbles": [[]] * 3})
    with pytest.raises(manet.UnknownObjectError):
        session.maps(0, 9)
    with pytest.raises(manet.FrameIndexError):
        session.mask(-1)
    assert_same(before, snapshot(session))
    fresh = manet.Session(tiny_model, video)
    with pytest.raises(manet.SessionStateError):
        next(fresh.propagate())
    with pytest.raises(manet.SessionStateError):
        fresh.maps(0, 1)


def test_bad_video_input(tiny_model) -> None:
    with pytest.raises(manet.VideoError):
        manet.Session(tiny_model, np.zeros((4, 8, 8, 3), dtype=np.float32))
    with pytest.raises(manet.VideoError):
        manet.Session(tiny_model, np.zeros((0, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(manet.VideoError):
        manet.Session(tiny_model, "/nonexistent/video.mp4")


def test_suggest_frame_skips_annotated_frames(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.run_round(square_scribbles(), frame=2)
    suggestion = session.suggest_frame()
    assert suggestion != 2 and 0 <= suggestion < 8
    assert suggestion == int(np.argmin(np.where(np.arange(8) == 2, np.inf, session.confidence)))


def test_embeddings_are_computed_once(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    progress = []
    session.prepare(lambda done, total: progress.append((done, total)))
    assert progress[-1][0] == progress[-1][1] == 8
    calls = []
    original = session.embeddings._encode
    session.embeddings._encode = lambda frames: calls.append(frames) or original(frames)
    session.run_round(square_scribbles(), frame=2)
    session.run_round([Scribble(1, [[30, 20], [34, 30]])], frame=6)
    assert calls == [], "later rounds reuse cached embeddings"


def test_embeddings_spill_to_disk_beyond_budget(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video, SessionConfig(embedding_budget_mb=0.001))
    masks = session.run_round(square_scribbles(), frame=2)
    assert session.embeddings.spilled
    in_memory = manet.Session(tiny_model, video).run_round(square_scribbles(), frame=2)
    assert np.array_equal(masks, in_memory)


def test_later_rounds_reuse_stems_and_distances_with_the_same_result(tiny_model, video) -> None:
    reusing = manet.Session(tiny_model, video)
    recomputing = manet.Session(tiny_model, video, SessionConfig(reuse_budget_mb=0))
    for session in (reusing, recomputing):
        session.run_round(square_scribbles(), frame=2)
    kept = len(reusing.reuse)
    # 7 stems (every frame but the interactive one) and 7 neighbour pairs.
    assert kept == 14 and len(recomputing.reuse) == 0
    misses = reusing.reuse.misses
    # Round 2 starts elsewhere: frames 3..5 are now visited backwards, reading reversed distances.
    for session in (reusing, recomputing):
        session.run_round([Scribble(1, [[44, 30], [48, 34]])], frame=6)
    assert reusing.reuse.misses == misses + 1, "only frame 2's stem (interactive in round 1) was new"
    agreement = (reusing.masks == recomputing.masks).mean()
    assert agreement > 0.999, f"reused results changed the masks ({agreement:.4f} of pixels agree)"


def test_reuse_stays_within_its_budget(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video, SessionConfig(reuse_budget_mb=0.05))
    session.run_round(square_scribbles(), frame=0)
    assert 0 < len(session.reuse) < 14
    assert session.reuse.used_bytes <= 0.05 * 2**20
    with pytest.raises(ValueError, match="neighbouring frames"):
        session.reuse.distances(3, 5, lambda: torch.zeros(1))


def test_augmented_map_is_computed_when_propagation_starts(tiny_model, video) -> None:
    session = manet.Session(tiny_model, video)
    session.interact(square_scribbles(), frame=2)
    assert session.pending is not None and session.pending.augmented is None, "not on the interact path"
    for _ in session.propagate():
        break  # even a propagation closed after one frame leaves nothing committed
    assert not session.rounds
    session.interact(square_scribbles(), frame=2)
    list(session.propagate())
    augmented = session.maps(2, 1).augmented_map
    assert augmented is not None and augmented.shape == session.grid
    assert float(augmented.min()) < 1e-3, "the scribbled pixels match themselves"
    off = manet.Session(tiny_model, video, SessionConfig(augmented_map=False))
    off.run_round(square_scribbles(), frame=2)
    assert off.maps(2, 1).augmented_map is None


def test_reuse_pool_keeps_layout_and_refuses_what_does_not_fit() -> None:
    from manet.inference.reuse import _SlotPool

    pool = _SlotPool(3 * 1 * 8 * 5 * 6 * 4)
    stem = torch.randn(1, 8, 5, 6).contiguous(memory_format=torch.channels_last)
    assert pool.put(0, stem) and pool.put(1, stem * 2) and pool.put(2, stem)
    assert not pool.put(3, stem), "three slots fit the budget"
    kept = pool.get(1)
    assert kept is not None and torch.equal(kept, stem * 2)
    assert kept.is_contiguous(memory_format=torch.channels_last), "the heads' layout survives"
    assert not pool.put(4, torch.randn(1, 8, 5, 7)), "another shape has no slot"
    assert pool.get(3) is None and pool.used_bytes == 3 * stem.numel() * 4
    assert not _SlotPool(10).put(0, stem), "an entry larger than the budget is not kept"


def _two_rounds(tiny_model, video, config: SessionConfig) -> tuple[manet.Session, dict[int, np.ndarray]]:
    """Rounds on frames 1 and 6; returns the session and round 1's global maps of object 1."""
    session = manet.Session(tiny_model, video, config)
    session.run_round([Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[50, 40], [60, 44]])], frame=1)
    first = {frame: session.maps(frame, 1).global_map.copy() for frame in range(session.num_frames)}
    session.run_round([Scribble(1, [[30, 20], [34, 30]]), Scribble(0, [[4, 4], [10, 6]])], frame=6)
    return session, first


def _local_map_of_round(session: manet.Session, round_index: int, frame: int) -> np.ndarray:
    """Object 1's local map of ``frame`` as round ``round_index`` recorded it, at the grid."""
    recorded = session.state().local_rounds[round_index].maps[frame][1:2].float()
    return upsample_maps(recorded, session.grid)[0].numpy()


def test_global_memory_switch_keeps_round_one_maps(tiny_model, video) -> None:
    off, first = _two_rounds(tiny_model, video, SessionConfig(global_memory=False))
    for frame in range(8):
        assert np.array_equal(off.maps(frame, 1).global_map, first[frame]), f"frame {frame} changed in round 2"
    on, first_on = _two_rounds(tiny_model, video, SessionConfig())
    changed = [frame for frame in range(8) if not np.array_equal(on.maps(frame, 1).global_map, first_on[frame])]
    assert changed, "with aggregation on, round 2 lowers the global maps somewhere (eq 3)"


def test_local_memory_switch_and_r_choose_the_round_read(tiny_model, video, monkeypatch) -> None:
    # Propagation reads the local memory with R rounds, or 1 with the local memory off.
    asked: list[int] = []
    original = LocalMemory.read
    monkeypatch.setattr(LocalMemory, "read", lambda memory, frame, rounds, resolve=None: asked.append(rounds) or
                        original(memory, frame, rounds, resolve))
    # Frame 2 is nearer round 1's interactive frame (1) than round 2's (6).
    paper, _ = _two_rounds(tiny_model, video, SessionConfig(memory_rounds=2))
    assert set(asked) == {2}
    asked.clear()
    round_one, round_two = _local_map_of_round(paper, 0, 2), _local_map_of_round(paper, 1, 2)
    assert not np.array_equal(round_one, round_two), "the two rounds recorded different maps"
    assert np.array_equal(paper.maps(2, 1).local_map, round_one), "R = 2: the nearest annotated round"
    # Frame 7 is nearer round 2's interactive frame: R = 2 reads round 2 there.
    assert np.array_equal(paper.maps(7, 1).local_map, _local_map_of_round(paper, 1, 7))
    recent_only, _ = _two_rounds(tiny_model, video, SessionConfig(memory_rounds=1))
    assert np.array_equal(recent_only.maps(2, 1).local_map, _local_map_of_round(recent_only, 1, 2)), "R = 1"
    asked.clear()
    off, _ = _two_rounds(tiny_model, video, SessionConfig(local_memory=False, memory_rounds=2))
    assert set(asked) == {1}, "with the local memory off, propagation reads the current round only"
    assert np.array_equal(off.maps(2, 1).local_map, _local_map_of_round(off, 1, 2)), "off: the current round's"
