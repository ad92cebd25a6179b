"""The annotator's autosave folder: the session with its objects, read through persistence."""

from __future__ import annotations

import json

import pytest
from synthetic_video import moving_square_video

import manet
from manet import Scribble
from manet_widget import autosave

FIRST = [Scribble(1, [[12, 20], [20, 26]]), Scribble(0, [[40, 5], [46, 10]])]


@pytest.fixture
def clip():
    return moving_square_video(frames=4, height=32, width=48)


def test_objects_are_saved_with_the_session_and_resumed(tmp_path, tiny_model, clip) -> None:
    session = manet.Session(tiny_model, clip)
    saver = autosave.SessionAutosave(session, tmp_path)
    session.run_round(FIRST, frame=1)
    session.rename_object(1, "ball")
    session.add_object("net")
    saver.save([{"id": 1, "name": "ball"}, {"id": 2, "name": "net"}])
    assert (tmp_path / autosave.OBJECTS_FILE).is_file(), "an object list passed in still writes the side file"
    saver.save()
    assert not (tmp_path / autosave.OBJECTS_FILE).exists(), "the manifest's list supersedes the side file"
    assert autosave.holds_session(tmp_path)
    assert autosave.saved_objects(tmp_path) == [(1, "ball"), (2, "net")]
    resumed = autosave.open_session(clip, tiny_model, tmp_path)
    assert resumed.objects == session.objects


def test_older_side_files_name_the_objects(tmp_path, tiny_model, clip) -> None:
    session = manet.Session(tiny_model, clip)
    session.run_round(FIRST, frame=1)
    saver = autosave.SessionAutosave(session, tmp_path)
    saver.save()
    (tmp_path / autosave.OBJECTS_FILE).write_text(json.dumps({"objects": [{"id": 1, "name": "kept"}]}))
    assert autosave.saved_objects(tmp_path) == [(1, "kept")]
    assert autosave.saved_objects(tmp_path / "nothing") == []


def test_target_checks_read_the_manifest_through_persistence(tmp_path, tiny_model, clip) -> None:
    session = manet.Session(tiny_model, clip)
    session.run_round(FIRST, frame=1)
    autosave.SessionAutosave(session, tmp_path).save()
    autosave.check_target(session, tmp_path)  # its own folder
    with pytest.raises(manet.SessionStateError, match="resume"):
        autosave.check_target(manet.Session(tiny_model, clip), tmp_path)
    with pytest.raises(manet.SessionFileError, match="another video"):
        autosave.check_target(manet.Session(tiny_model, moving_square_video(frames=4, height=32, width=48, seed=3)),
                              tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "manet-session-9"}')
    with pytest.raises(manet.SessionFileError, match="newer manet"):
        autosave.check_target(session, tmp_path)
