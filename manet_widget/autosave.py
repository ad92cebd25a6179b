"""Autosave of the annotator: the session after every change of its rounds, plus the object list.

The session itself is written by ``manet.inference.persistence.Autosaver`` (atomic, and cheap
after the first save). The widget adds one small file, :data:`OBJECTS_FILE`, with the names of
the listed objects, which live in the widget and not in the session. Resuming
(:func:`open_session`) is ``manet.Session.load`` on the same folder.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from manet.errors import SessionFileError, SessionStateError

OBJECTS_FILE = "annotator.json"
MANIFEST = "manifest.json"


class SessionAutosave:
    """Saves one session and its object names into one folder.

    ``save`` runs on the controller's worker thread, one call at a time (the underlying
    ``Autosaver`` is not thread-safe); ``save_objects`` may run on any thread.
    """

    def __init__(self, session: Any, folder: str | os.PathLike[str]) -> None:
        from manet.inference.persistence import Autosaver

        self.folder = Path(folder).expanduser()
        self._saver = Autosaver(session, self.folder)
        self._objects_lock = threading.Lock()

    def save(self, objects: Sequence[Mapping[str, Any]]) -> Path:
        """Write the session's committed rounds and the object list; returns the folder."""
        path = self._saver.save()
        self.save_objects(objects)
        return Path(path)

    def save_objects(self, objects: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite only the object list (after a rename); skipped before the first session save,
        because a folder with foreign files and no manifest is refused by the session saver."""
        if not (self.folder / MANIFEST).is_file():
            return
        entries = [{"id": int(item["id"]), "name": str(item["name"])} for item in objects]
        with self._objects_lock:
            temporary = self.folder / f"{OBJECTS_FILE}.tmp"
            temporary.write_text(json.dumps({"objects": entries}, indent=1), encoding="utf-8")
            os.replace(temporary, self.folder / OBJECTS_FILE)


def saved_objects(folder: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """(id, name) of the objects listed when ``folder`` was last saved; [] when unknown."""
    path = Path(folder).expanduser() / OBJECTS_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["objects"]
        return [(int(entry["id"]), str(entry["name"])) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def holds_session(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a saved session (its manifest)."""
    return (Path(folder).expanduser() / MANIFEST).is_file()


def check_target(session: Any, folder: str | os.PathLike[str]) -> None:
    """Refuse an autosave folder whose save this session would overwrite by mistake.

    Raises:
        SessionFileError: the folder holds a save of another video.
        SessionStateError: the folder holds saved rounds of this video but ``session`` has
            none (a restarted kernel that should resume instead).
    """
    path = Path(folder).expanduser()
    if not holds_session(path):
        return
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        saved_video = manifest["video"]["fingerprint"]
        saved_rounds = len(manifest["rounds"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SessionFileError(f"{path / MANIFEST} cannot be read ({error}); pass another autosave folder") from error
    video = getattr(session, "video", None)
    if video is not None and video.fingerprint() != saved_video:
        raise SessionFileError(f"autosave folder {path} holds the session of another video; "
                               "pass another folder (or delete this one to start over)")
    if saved_rounds and not session.rounds:
        raise SessionStateError(
            f"autosave folder {path} holds {saved_rounds} saved rounds of this video and the session has none: "
            "resume them with Annotator.from_video(video, autosave=folder) or manet.Session.load(folder, model), "
            "or pass another folder")


def open_session(video: Any, model: Any, folder: str | os.PathLike[str], config: Any = None) -> Any:
    """A session on ``video``: resumed from ``folder`` when it holds a save, else a new one.

    Raises:
        SessionFileError: the folder's save cannot be resumed (another video or model, damage);
            the message says to pass another folder or delete this one.
    """
    import manet

    path = Path(folder).expanduser()
    if not holds_session(path):
        return manet.Session(model, video, config=config)
    try:
        return manet.Session.load(path, model, video, config=config)
    except SessionFileError as error:
        raise SessionFileError(f"autosave folder {path} holds a saved session that cannot be resumed: {error}. "
                               "Pass another autosave folder, or delete this one to start over.") from error
