"""Sessions saved to disk load back indistinguishable, and saves survive interruptions."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet.inference import persistence
from manet.inference.persistence import Autosaver, save_session
from manet.inference.scribbles import Box

FIRST = [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[40, 5], [46, 10]], radius=1.5)]
SECOND = [Scribble(2, [[30.25, 8.5], [34.75, 12.125]]), Scribble(1, [[14, 22]], radius=2.0)]
THIRD = [Scribble(0, [[13, 21], [18, 24]]), Scribble(2, [[32, 10]], radius=1.0)]


@pytest.fixture
def clip() -> np.ndarray:
    return moving_square_video(frames=6, height=32, width=48)


@pytest.fixture
def two_rounds(tiny_model, clip) -> manet.Session:
    session = manet.Session(tiny_model, clip)
    session.run_round(FIRST, frame=2)
    session.run_round(SECOND, frame=4)
    return session


def load_session(folder, model, video=None, config=None) -> manet.Session:
    return manet.Session.load(folder, model, video, config)


def assert_global_equal(first, second) -> None:
    assert torch.equal(first.maps, second.maps) and torch.equal(first.written, second.written)


def assert_sessions_equal(live: manet.Session, loaded: manet.Session, timed_rounds: int | None = None) -> None:
    """Everything observable is equal; wall times of the first ``timed_rounds`` rounds too (default all)."""
    assert np.array_equal(live.masks, loaded.masks)
    assert np.array_equal(live.confidence, loaded.confidence)
    assert live.object_ids == loaded.object_ids and live.annotated_frames == loaded.annotated_frames
    assert len(live.rounds) == len(loaded.rounds) and loaded.pending is None
    for mine, theirs in zip(live.rounds, loaded.rounds):
        assert (mine.index, mine.channels) == (theirs.index, theirs.channels)
        assert mine.seconds == theirs.seconds or mine.index >= (timed_rounds or len(live.rounds))
        assert mine.annotation.frame == theirs.annotation.frame
        for stroke, copy in zip(mine.annotation.scribbles, theirs.annotation.scribbles, strict=True):
            assert stroke.object_id == copy.object_id and stroke.radius == copy.radius
            assert np.array_equal(stroke.points, copy.points), "pixel points must survive exactly"
        assert mine.annotation.boxes == theirs.annotation.boxes
        assert (mine.annotation.mask is None) == (theirs.annotation.mask is None)
        assert mine.annotation.mask is None or np.array_equal(mine.annotation.mask, theirs.annotation.mask)
        assert torch.equal(mine.logits, theirs.logits)
        assert (mine.augmented is None and theirs.augmented is None) or torch.equal(mine.augmented, theirs.augmented)
        assert_global_equal(mine.global_before, theirs.global_before)
    assert live.objects == loaded.objects
    live_state, loaded_state = live.state(), loaded.state()
    assert_global_equal(live_state.global_memory, loaded_state.global_memory)
    assert len(live_state.local_rounds) == len(loaded_state.local_rounds)
    for mine, theirs in zip(live_state.local_rounds, loaded_state.local_rounds):
        assert mine.interactive_frame == theirs.interactive_frame and mine.maps.keys() == theirs.maps.keys()
        assert all(torch.equal(mine.maps[t], theirs.maps[t]) for t in mine.maps)
    for frame in range(live.num_frames):
        for object_id in live.object_ids:
            ours, restored = live.maps(frame, object_id), loaded.maps(frame, object_id)
            for name in ("global_map", "local_map", "augmented_map"):
                mine, theirs = getattr(ours, name), getattr(restored, name)
                assert (mine is None and theirs is None) or np.array_equal(mine, theirs)


def test_loaded_session_is_indistinguishable_and_continues_identically(tmp_path, tiny_model, clip, two_rounds) -> None:
    folder = save_session(two_rounds, tmp_path / "saved")
    loaded = load_session(folder, tiny_model, video=clip)
    assert_sessions_equal(two_rounds, loaded)
    assert np.array_equal(loaded.embeddings.computed, two_rounds.embeddings.computed)
    assert np.array_equal(loaded.embeddings.export(), two_rounds.embeddings.export())
    encoded = loaded.embeddings.encoder_seconds
    live_masks = two_rounds.run_round(THIRD, frame=0)
    loaded_masks = loaded.run_round(THIRD, frame=0)
    assert loaded.embeddings.encoder_seconds == encoded, "saved embeddings are used, not recomputed"
    assert np.array_equal(live_masks, loaded_masks)
    assert_sessions_equal(two_rounds, loaded, timed_rounds=2)
    two_rounds.undo_round()
    loaded.undo_round()
    loaded.undo_round()
    two_rounds.undo_round()
    assert_sessions_equal(two_rounds, loaded)


def test_boxes_and_mask_annotations_round_trip(tmp_path, tiny_model, clip) -> None:
    session = manet.Session(tiny_model, clip)
    session.run_round([Box(1, 8, 12.5, 30, 30), Scribble(0, [[44, 4]], radius=np.float32(1.5))], frame=1)
    painted = np.zeros((32, 48), dtype=np.int64)
    painted[10:20, 5:25], painted[0:4, 40:48] = 1, 3
    session.interact_mask(painted, frame=3)
    for _ in session.propagate():
        pass
    save_session(session, tmp_path / "saved")
    loaded = load_session(tmp_path / "saved", tiny_model, clip)
    assert_sessions_equal(session, loaded)
    assert loaded.fixed_frames().keys() == {3} and np.array_equal(loaded.mask(3), painted.astype(np.uint8))
    assert np.array_equal(session.run_round(THIRD, frame=5), loaded.run_round(THIRD, frame=5))


def test_without_embeddings_the_next_round_is_still_identical(tmp_path, tiny_model, clip, two_rounds) -> None:
    save_session(two_rounds, tmp_path / "light", include_embeddings=False)
    assert not list((tmp_path / "light").glob("embeddings-*"))
    loaded = load_session(tmp_path / "light", tiny_model, video=clip)
    assert not loaded.embeddings.computed.any()
    assert_sessions_equal(two_rounds, loaded)
    assert np.array_equal(two_rounds.run_round(THIRD, frame=5), loaded.run_round(THIRD, frame=5))
    assert_sessions_equal(two_rounds, loaded, timed_rounds=2)


def test_spilled_embeddings_round_trip(tmp_path, tiny_model, clip) -> None:
    config = manet.SessionConfig(embedding_budget_mb=0.001)
    session = manet.Session(tiny_model, clip, config)
    session.run_round(FIRST, frame=2)
    assert session.embeddings.spilled
    loaded = load_session(save_session(session, tmp_path / "saved"), tiny_model, clip)
    assert loaded.embeddings.spilled, "the saved budget applies to the loaded session too"
    assert np.array_equal(np.asarray(loaded.embeddings.export()), np.asarray(session.embeddings.export()))
    assert_sessions_equal(session, loaded)
    assert np.array_equal(session.run_round(SECOND, frame=4), loaded.run_round(SECOND, frame=4))


def test_session_without_rounds_round_trips(tmp_path, tiny_model, clip) -> None:
    session = manet.Session(tiny_model, clip)
    save_session(session, tmp_path / "empty")
    loaded = load_session(tmp_path / "empty", tiny_model, video=clip)
    assert not loaded.rounds and loaded.state().global_memory is None and not loaded.masks.any()
    assert np.array_equal(session.run_round(FIRST, frame=1), loaded.run_round(FIRST, frame=1))


def test_video_is_reopened_from_its_recorded_path(tmp_path, tiny_model, clip) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, image in enumerate(clip):
        cv2.imwrite(str(frames / f"{index:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    session = manet.Session(tiny_model, str(frames))
    session.run_round(FIRST, frame=2)
    save_session(session, tmp_path / "saved")
    reopened = load_session(tmp_path / "saved", tiny_model)
    assert "image folder" in reopened.video.source_description
    assert np.array_equal(reopened.masks, session.masks)
    frames.rename(tmp_path / "moved")
    with pytest.raises(manet.SessionFileError, match="video="):
        load_session(tmp_path / "saved", tiny_model)
    moved = load_session(tmp_path / "saved", tiny_model, video=str(tmp_path / "moved"))
    same_pixels = load_session(tmp_path / "saved", tiny_model, video=clip)  # lossless: same fingerprint
    assert np.array_equal(moved.masks, session.masks) and np.array_equal(same_pixels.masks, session.masks)


def test_in_memory_video_must_be_passed_again(tmp_path, tiny_model, two_rounds) -> None:
    save_session(two_rounds, tmp_path / "saved")
    with pytest.raises(manet.SessionFileError, match="in-memory video.*video="):
        load_session(tmp_path / "saved", tiny_model)


def test_config_may_change_but_not_the_working_size(tmp_path, tiny_model, clip, two_rounds) -> None:
    save_session(two_rounds, tmp_path / "saved")
    loaded = load_session(tmp_path / "saved", tiny_model, clip, config=manet.SessionConfig(memory_rounds=3))
    assert loaded.config.memory_rounds == 3
    with pytest.raises(manet.SessionFileError, match="working size"):
        load_session(tmp_path / "saved", tiny_model, clip, config=manet.SessionConfig(working_size=16))


def test_saving_refuses_a_running_propagation_and_skips_a_pending_round(tmp_path, tiny_model, clip,
                                                                         two_rounds) -> None:
    two_rounds.interact(THIRD, frame=0)
    frames = two_rounds.propagate()
    next(frames)
    with pytest.raises(manet.SessionStateError, match="propagation is running"):
        save_session(two_rounds, tmp_path / "busy")
    frames.close()
    two_rounds.interact(THIRD, frame=0)
    loaded = load_session(save_session(two_rounds, tmp_path / "pending"), tiny_model, clip)
    assert loaded.pending is None and len(loaded.rounds) == 2


def test_saving_refuses_folders_that_hold_other_files(tmp_path, two_rounds) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(manet.SessionFileError, match="new or empty folder"):
        save_session(two_rounds, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(manet.SessionFileError, match="is a file"):
        save_session(two_rounds, tmp_path / "notes.txt")


def _inodes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_ino for path in folder.iterdir()}


def test_autosaver_writes_embeddings_once_then_only_new_round_data(tmp_path, tiny_model, clip) -> None:
    session = manet.Session(tiny_model, clip)
    saver = Autosaver(session, tmp_path / "auto")
    session.run_round(FIRST, frame=2)
    saver.save()
    first = _inodes(tmp_path / "auto")
    session.run_round(SECOND, frame=4)
    saver.save()
    second = _inodes(tmp_path / "auto")
    kept = {name for name in first if name in second and first[name] == second[name]}
    assert {name.split("-")[0] for name in kept} == {"embeddings", "computed", "round"}
    assert next(name for name in kept if name.startswith("round")).startswith("round-000-")
    new = sorted(name.split("-")[0] for name in set(second) - set(first))
    assert new == ["global", "round"], "only the new round and the current global memory are written"
    assert not any(name.endswith(".tmp") for name in second)
    assert_sessions_equal(session, load_session(tmp_path / "auto", tiny_model, clip))
    session.undo_round()
    saver.save()
    assert len(list((tmp_path / "auto").glob("round-*"))) == 1, "files of undone rounds are removed"
    assert_sessions_equal(session, load_session(tmp_path / "auto", tiny_model, clip))


def _partial_write(real):
    """A save_file that leaves half a file behind and dies, as a process killed mid-write would."""
    def write(tensors, filename, *args, **kwargs):
        real(tensors, filename, *args, **kwargs)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt("killed while writing")
    return write


def test_interrupted_autosave_leaves_last_good_save_loadable(tmp_path, tiny_model, clip, monkeypatch) -> None:
    session = manet.Session(tiny_model, clip)
    saver = Autosaver(session, tmp_path / "auto")
    session.run_round(FIRST, frame=2)
    saver.save()
    good_masks = session.masks
    session.run_round(SECOND, frame=4)
    monkeypatch.setattr(persistence, "save_file", _partial_write(persistence.save_file))
    with pytest.raises(KeyboardInterrupt):
        saver.save()
    monkeypatch.undo()
    restored = load_session(tmp_path / "auto", tiny_model, clip)
    assert len(restored.rounds) == 1 and np.array_equal(restored.masks, good_masks)

    def die_writing_manifest(folder, manifest, tag):
        (folder / f"manifest.json.{tag}.tmp").write_text('{"format": "manet-ses')
        raise KeyboardInterrupt("killed while writing the manifest")
    monkeypatch.setattr(persistence, "_replace_manifest", die_writing_manifest)
    with pytest.raises(KeyboardInterrupt):
        saver.save()
    monkeypatch.undo()
    assert len(load_session(tmp_path / "auto", tiny_model, clip).rounds) == 1
    saver.save()
    assert_sessions_equal(session, load_session(tmp_path / "auto", tiny_model, clip))
    named = {"manifest.json"} | persistence._named_files(persistence.read_manifest(tmp_path / "auto"))
    assert {path.name for path in (tmp_path / "auto").iterdir()} == named, "leftovers of crashed saves are removed"


def test_interrupted_first_save_is_reported_and_then_replaced(tmp_path, tiny_model, clip, two_rounds,
                                                              monkeypatch) -> None:
    monkeypatch.setattr(persistence, "save_file", _partial_write(persistence.save_file))
    with pytest.raises(KeyboardInterrupt):
        save_session(two_rounds, tmp_path / "first")
    monkeypatch.undo()
    assert any((tmp_path / "first").iterdir()), "the interrupted save left partial files"
    with pytest.raises(manet.SessionFileError, match="manifest.json is missing"):
        load_session(tmp_path / "first", tiny_model, clip)
    save_session(two_rounds, tmp_path / "first")
    assert_sessions_equal(two_rounds, load_session(tmp_path / "first", tiny_model, clip))


def test_sessions_saved_before_objects_existed_still_load(tmp_path, tiny_model, clip, two_rounds) -> None:
    import json

    folder = save_session(two_rounds, tmp_path / "saved")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "manet-session-2" and [o["id"] for o in manifest["objects"]] == [1, 2]
    manifest["format"] = "manet-session-1"
    del manifest["objects"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_session(folder, tiny_model, clip)
    assert loaded.objects == (manet.ObjectInfo(1, "object 1", manet.color_for(1)),
                              manet.ObjectInfo(2, "object 2", manet.color_for(2)))
    assert_sessions_equal(two_rounds, loaded)


def test_autosave_after_a_rename_writes_the_manifest_alone(tmp_path, tiny_model, clip, two_rounds) -> None:
    saver = Autosaver(two_rounds, tmp_path / "auto")
    saver.save()
    first = _inodes(tmp_path / "auto")
    two_rounds.rename_object(2, "tree")
    saver.save()
    second = _inodes(tmp_path / "auto")
    assert {name for name in second if second[name] != first.get(name)} == {"manifest.json"}
    assert persistence.describe_save(tmp_path / "auto").objects[1].name == "tree"
    two_rounds.delete_object(2)
    saver.save()
    assert_sessions_equal(two_rounds, load_session(tmp_path / "auto", tiny_model, clip))


def _edit_manifest_config(folder: Path, edit) -> None:
    import json

    path = Path(folder) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest["model"]["config"])
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_a_save_from_an_earlier_version_of_the_config_still_loads(tmp_path, tiny_model, two_rounds) -> None:
    two_rounds.save(tmp_path / "s")
    # Earlier versions wrote the skip as a flag and had no bound field: the same architecture.
    _edit_manifest_config(tmp_path / "s", lambda config: (config.update(matching_skip=False),
                                                          config.pop("propagation_bound")))
    assert tiny_model.config.matching_skip == "none" and tiny_model.config.propagation_bound is None
    assert np.array_equal(load_session(tmp_path / "s", tiny_model, two_rounds.video).masks, two_rounds.masks)


def test_a_save_of_another_architecture_is_refused_naming_the_difference(tmp_path, tiny_model, two_rounds) -> None:
    two_rounds.save(tmp_path / "s")
    _edit_manifest_config(tmp_path / "s", lambda config: config.update(head_width=16))
    with pytest.raises(manet.SessionFileError, match=r"another model architecture.*head_width"):
        load_session(tmp_path / "s", tiny_model, two_rounds.video)
    _edit_manifest_config(tmp_path / "s", lambda config: config.update(no_such_field=1))
    with pytest.raises(manet.SessionFileError, match="cannot be read"):
        load_session(tmp_path / "s", tiny_model, two_rounds.video)


def test_a_save_made_before_the_backbone_was_fine_tuned_is_refused_for_its_weights(tmp_path, clip) -> None:
    """Fine-tuned backbone blocks change weights, not the architecture: a save made with the
    ImageNet backbone is refused with the weights message (not an architecture to load with)."""
    import dataclasses

    from manet.config import ModelConfig
    from manet.model.network import MANet

    torch.manual_seed(0)
    config = dataclasses.replace(ModelConfig.lite(), pretrained_backbone=False)
    session = manet.Session(MANet(config).eval(), clip)
    session.run_round(FIRST, frame=2)
    session.save(tmp_path / "s")
    tuned = MANet(dataclasses.replace(config, tuned_backbone_blocks=13)).eval()
    with pytest.raises(manet.SessionFileError, match="other model weights"):
        load_session(tmp_path / "s", tuned, clip)
