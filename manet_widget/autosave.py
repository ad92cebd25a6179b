"""Autosave of the annotator: the session after every change of its rounds or objects.

The session, its object list (names and colours) included, is written by
``manet.inference.persistence.Autosaver`` (atomic, and cheap after the first save); manifests
are read through ``manet.inference.persistence`` only. Resuming (:func:`open_session`) is
``manet.Session.load`` on the same folder.

Older annotators kept object names in a side file, :data:`OBJECTS_FILE`; it is still read for
folders saved before sessions held their objects, and written while a caller passes an object
list to :meth:`SessionAutosave.save` or :meth:`SessionAutosave.save_objects`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from manet.errors import SessionFileError, SessionStateError
from manet.inference import persistence

OBJECTS_FILE = "annotator.json"
MANIFEST = persistence.MANIFEST


class SessionAutosave:
    """Saves one session (and, for older callers, an object-name list) into one folder.

    ``save`` runs on the controller's worker thread, one call at a time (the underlying
    ``Autosaver`` is not thread-safe); ``save_objects`` may run on any thread.
    """

    def __init__(self, session: Any, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()
        self._saver = persistence.Autosaver(session, self.folder)
        self._objects_lock = threading.Lock()

    def save(self, objects: Sequence[Mapping[str, Any]] | None = None) -> Path:
        """Write the session's committed rounds and objects; returns the folder.

        ``objects`` (``{"id", "name"}`` entries) also rewrites the side file; without it the side
        file is removed, as the manifest's object list supersedes it.
        """
        path = self._saver.save()
        if objects is not None:
            self.save_objects(objects)
        else:
            with self._objects_lock:
                (self.folder / OBJECTS_FILE).unlink(missing_ok=True)
        return Path(path)

    def save_objects(self, objects: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite only the side file of object names; skipped before the first session save,
        because a folder with foreign files and no manifest is refused by the session saver."""
        if not persistence.holds_save(self.folder):
            return
        entries = [{"id": int(item["id"]), "name": str(item["name"])} for item in objects]
        with self._objects_lock:
            temporary = self.folder / f"{OBJECTS_FILE}.tmp"
            temporary.write_text(json.dumps({"objects": entries}, indent=1), encoding="utf-8")
            os.replace(temporary, self.folder / OBJECTS_FILE)


def saved_objects(folder: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """(id, name) of the objects when ``folder`` was last saved; [] when unknown.

    Names in the side file (older annotators) win over the manifest's defaults.
    """
    path = Path(folder).expanduser()
    try:
        names = {item.id: item.name for item in persistence.describe_save(path).objects}
    except SessionFileError:
        names = {}
    try:
        entries = json.loads((path / OBJECTS_FILE).read_text(encoding="utf-8"))["objects"]
        names.update({int(entry["id"]): str(entry["name"]) for entry in entries})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return sorted(names.items())


def holds_session(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a saved session (its manifest)."""
    return persistence.holds_save(Path(folder).expanduser())


def check_target(session: Any, folder: str | os.PathLike[str]) -> None:
    """Refuse an autosave folder whose save this session would overwrite by mistake.

    Raises:
        SessionFileError: the folder holds a save of another video, or an unreadable manifest.
        SessionStateError: the folder holds saved rounds of this video but ``session`` has
            none (a restarted kernel that should resume instead).
    """
    path = Path(folder).expanduser()
    if not holds_session(path):
        return
    try:
        summary = persistence.describe_save(path)
    except SessionFileError as error:
        raise SessionFileError(f"{path / MANIFEST} cannot be read ({error}); pass another autosave folder") from error
    video = getattr(session, "video", None)
    if video is not None and video.fingerprint() != summary.video_fingerprint:
        raise SessionFileError(f"autosave folder {path} holds the session of another video; "
                               "pass another folder (or delete this one to start over)")
    if summary.num_rounds and not session.rounds:
        raise SessionStateError(
            f"autosave folder {path} holds {summary.num_rounds} saved rounds of this video and the session has "
            "none: resume them with Annotator.from_video(video, autosave=folder) or manet.Session.load(folder, "
            "model), or pass another folder")


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
