"""Sessions on disk: save every committed round, load it back indistinguishable.

A session folder holds immutable data files and one ``manifest.json`` that names them::

    manifest.json                       format version, video, model, config, objects, rounds (JSON)
    embeddings-<tag>.npy                (T, E, h, w) float16 pixel embeddings (optional)
    computed-<tag>.npy                  (T,) bool: which frames' embeddings are valid
    global-<tag>.safetensors            the current global memory: maps (T, C, h, w) f16, written (C,)
    round-<i>-<tag>.safetensors         round i: logits, augmented map, global memory before the
                                        round, local memory maps (``local.<frame>``), mask prompt

Why a manifest instead of swapping whole folders: a save writes new data files under fresh
names, then replaces ``manifest.json`` with ``os.replace`` (atomic), then deletes files no
manifest names any more. At every instant the folder holds one complete save, with no window
in which the folder is missing, and :class:`Autosaver` can keep the files of unchanged rounds,
of an unchanged global memory and of the embeddings instead of copying them. Tensors use
safetensors or ``.npy``, never pickle.

What is saved is the session's :class:`~manet.inference.state.SessionState` plus the identity of
its video, model and config; this module never needs the session class. A pending round
(``interact`` without a finished ``propagate``) is not saved, nor are undo steps of object
deletions (a loaded session undoes its rounds). Reading is in
:mod:`manet.inference.persistence_read`; ``Session.load`` is its entry point.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import save_file

from manet.config import SessionConfig
from manet.errors import SessionFileError, SessionStateError
from manet.inference.embeddings import EmbeddingStore
from manet.inference.memory import GlobalMemory, LocalRound
from manet.inference.persistence_read import (
    FORMAT,
    MANIFEST,
    SavedSession,
    SaveSummary,
    describe_save,
    holds_save,
    model_digest,
    read_manifest,
    read_session,
)
from manet.inference.scribbles import to_davis
from manet.inference.state import RoundRecord, SessionState
from manet.io.video import VideoSource
from manet.model.network import MANet

__all__ = ["FORMAT", "MANIFEST", "Autosaver", "SavableSession", "SavedSession", "SaveSummary", "describe_save",
           "holds_save", "model_digest", "read_manifest", "read_session", "save_session", "video_path"]

# Files this module writes; only these are ever deleted from a session folder.
_OWN_FILE = re.compile(r"^((embeddings|computed)-[0-9a-f]+\.npy|(global|round-\d+)-[0-9a-f]+\.safetensors"
                       r"|manifest\.json\.[0-9a-f]+\.tmp)$")


class SavableSession(Protocol):
    """What saving needs of a session (``manet.Session`` has it all)."""

    @property
    def video(self) -> VideoSource: ...

    @property
    def model(self) -> MANet: ...

    @property
    def config(self) -> SessionConfig: ...

    @property
    def working_size(self) -> tuple[int, int]: ...

    @property
    def embeddings(self) -> EmbeddingStore: ...

    @property
    def is_propagating(self) -> bool: ...

    def state(self) -> SessionState: ...


def video_path(video: VideoSource) -> Path | None:
    """The file or folder a video was opened from, or None for in-memory arrays."""
    public = getattr(video, "path", None)
    if isinstance(public, (str, os.PathLike)):
        return Path(public).resolve()
    private = getattr(video, "_path", None)  # FileVideo
    if isinstance(private, Path):
        return private.resolve()
    files = getattr(video, "_files", None)  # ImageFolderVideo: a folder, or one image file
    if isinstance(files, list) and files:
        if video.source_description.startswith("single image"):
            return Path(files[0]).resolve()
        return Path(files[0]).resolve().parent
    return None


# ----------------------------------------------------------------------------- saving
@dataclass
class _Reusable:
    """Files of an earlier save in the same folder that a new save may name again."""

    rounds: list[tuple[RoundRecord, dict[str, Any]]] = field(default_factory=list)
    embeddings: tuple[np.ndarray, dict[str, Any]] | None = None
    model_sha256: str | None = None
    global_memory: tuple[GlobalMemory, dict[str, Any]] | None = None


def save_session(session: SavableSession, folder: str | os.PathLike[str], *,
                 include_embeddings: bool = True) -> Path:
    """Write the session's committed state to ``folder`` (created if needed) and return its path.

    The previous save in ``folder`` stays loadable until the new one is complete. Raises
    :class:`SessionStateError` while a propagation is running and :class:`SessionFileError` when
    ``folder`` holds files that are not a saved session.
    """
    return _write(session, Path(folder), include_embeddings, _Reusable())


class Autosaver:
    """Save one session to one folder after every round, cheaply.

    The first :meth:`save` writes everything; later ones write only what changed (new rounds,
    a new global memory, the embeddings when more frames were embedded) and name the unchanged
    files of the previous save again; a save after an object rename writes the manifest alone.
    Each save is as atomic as :func:`save_session`. Not thread-safe: call it from the thread
    that runs the rounds.
    """

    def __init__(self, session: SavableSession, folder: str | os.PathLike[str], *,
                 include_embeddings: bool = True) -> None:
        self.session = session
        self.folder = Path(folder)
        self.include_embeddings = include_embeddings
        self._reusable = _Reusable()

    def save(self) -> Path:
        """Save now; on any error the folder keeps its last complete save."""
        previous = self._reusable
        reusable = _Reusable(list(previous.rounds), previous.embeddings, previous.model_sha256, previous.global_memory)
        path = _write(self.session, self.folder, self.include_embeddings, reusable)
        self._reusable = reusable
        return path


def _write(session: SavableSession, folder: Path, include_embeddings: bool, reusable: _Reusable) -> Path:
    if session.is_propagating:
        raise SessionStateError("a propagation is running: save after it has finished or been cancelled")
    state = session.state()
    _prepare_folder(folder)
    tag = secrets.token_hex(6)
    if reusable.model_sha256 is None:
        reusable.model_sha256 = model_digest(session.model)
    manifest = _header(session, state, reusable.model_sha256)
    embeddings = _write_embeddings(session.embeddings, folder, tag, reusable) if include_embeddings else None
    manifest["embeddings"] = embeddings
    manifest["global_memory"] = _write_global(state.global_memory, folder, tag, reusable)
    manifest["rounds"] = _write_rounds(state, session.video, folder, tag, reusable)
    _replace_manifest(folder, manifest, tag)
    _remove_unnamed_files(folder, manifest)
    if not include_embeddings:
        reusable.embeddings = None
    return folder


def _prepare_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise SessionFileError(f"{folder} is a file; save the session to a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    foreign = [entry.name for entry in folder.iterdir() if entry.name != MANIFEST and not _OWN_FILE.match(entry.name)]
    if foreign and not (folder / MANIFEST).is_file():
        raise SessionFileError(f"{folder} holds other files ({', '.join(sorted(foreign)[:3])}, ...); "
                               "save the session to a new or empty folder")


def _header(session: SavableSession, state: SessionState, model_sha256: str) -> dict[str, Any]:
    video = session.video
    path = video_path(video)
    grid = list(state.rounds[-1].logits.shape[2:]) if state.rounds else None
    return {
        "format": FORMAT,
        "video": {"description": video.source_description, "fingerprint": video.fingerprint(),
                  "path": None if path is None else str(path), "num_frames": video.num_frames,
                  "height": video.height, "width": video.width},
        "working_size": list(session.working_size),
        "grid": grid,
        "model": {"config": session.model.config.to_dict(), "sha256": model_sha256},
        "session_config": session.config.to_dict(),
        "channels": list(state.channels.ids),
        "objects": [item.to_json() for item in state.objects],
    }


def _write_embeddings(embeddings: EmbeddingStore, folder: Path, tag: str,
                      reusable: _Reusable) -> dict[str, Any] | None:
    data = embeddings.export()
    if data is None:
        return None
    computed = embeddings.computed.copy()
    if reusable.embeddings is not None and np.array_equal(reusable.embeddings[0], computed) \
            and _files_exist(folder, reusable.embeddings[1]):
        return reusable.embeddings[1]
    entry: dict[str, Any] = {"file": f"embeddings-{tag}.npy", "computed_file": f"computed-{tag}.npy",
                             "shape": list(data.shape)}
    _save_npy(folder / entry["file"], data)
    _save_npy(folder / entry["computed_file"], computed)
    reusable.embeddings = (computed, entry)
    return entry


def _write_global(memory: GlobalMemory | None, folder: Path, tag: str, reusable: _Reusable) -> dict[str, Any] | None:
    if memory is None:
        return None
    # A committed global memory is replaced, never changed in place: the same object, same file.
    kept = reusable.global_memory
    if kept is not None and kept[0] is memory and kept[1]["channels"] == memory.channels \
            and _files_exist(folder, kept[1]):
        return kept[1]
    path = folder / f"global-{tag}.safetensors"
    _save_tensors(path, {"maps": memory.maps, "written": memory.written})
    entry = {"file": path.name, "channels": memory.channels}
    reusable.global_memory = (memory, entry)
    return entry


def _write_rounds(state: SessionState, video: VideoSource, folder: Path, tag: str,
                  reusable: _Reusable) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    kept: list[tuple[RoundRecord, dict[str, Any]]] = []
    for index, (record, local) in enumerate(zip(state.rounds, state.local_rounds)):
        previous = reusable.rounds[index] if index < len(reusable.rounds) else None
        if previous is not None and previous[0] is record and _files_exist(folder, previous[1]):
            entry = previous[1]
        else:
            entry = _write_round(video, record, local, folder / f"round-{index:03d}-{tag}.safetensors")
        entries.append(entry)
        kept.append((record, entry))
    reusable.rounds = kept
    return entries


def _write_round(video: VideoSource, record: RoundRecord, local: LocalRound, path: Path) -> dict[str, Any]:
    tensors = {"logits": record.logits, "global_before.maps": record.global_before.maps,
               "global_before.written": record.global_before.written}
    if record.augmented is not None:
        tensors["augmented"] = record.augmented
    annotation = record.annotation
    if annotation.mask is not None:
        tensors["annotation.mask"] = torch.from_numpy(np.array(annotation.mask, dtype=np.uint8))
    for frame, maps in local.maps.items():
        tensors[f"local.{frame}"] = maps
    _save_tensors(path, tensors)
    return {
        "index": record.index, "file": path.name, "frame": annotation.frame,
        "channels": list(record.channels.ids), "seconds": record.seconds,
        "annotation": _plain(to_davis([annotation], video.num_frames, video.width, video.height)),
        "strokes": [{"object_id": s.object_id, "points": s.points.tolist(), "radius": _plain(s.radius)}
                    for s in annotation.scribbles],
        "boxes": [[box.object_id, *(_plain(v) for v in (box.x0, box.y0, box.x1, box.y1))] for box in annotation.boxes],
        "has_mask": annotation.mask is not None,
        "local_interactive_frame": local.interactive_frame,
        "local_frames": sorted(local.maps),
        "local_deferred": [[frame, local.deferred[frame]] for frame in sorted(local.deferred)],
    }


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars inside lists and dicts turned into Python numbers (exactly)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({name: value.detach().cpu().contiguous().clone() for name, value in tensors.items()}, str(path))
    _fsync_file(path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def _replace_manifest(folder: Path, manifest: dict[str, Any], tag: str) -> None:
    temporary = folder / f"{MANIFEST}.{tag}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, allow_nan=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder / MANIFEST)
    _fsync_directory(folder)


def _named_files(manifest: dict[str, Any]) -> set[str]:
    names = {entry["file"] for entry in manifest["rounds"]}
    if manifest.get("global_memory"):
        names.add(manifest["global_memory"]["file"])
    if manifest.get("embeddings"):
        names |= {manifest["embeddings"]["file"], manifest["embeddings"]["computed_file"]}
    return names


def _remove_unnamed_files(folder: Path, manifest: dict[str, Any]) -> None:
    named = _named_files(manifest)
    for entry in folder.iterdir():
        if _OWN_FILE.match(entry.name) and entry.name not in named:
            entry.unlink(missing_ok=True)


def _files_exist(folder: Path, entry: dict[str, Any]) -> bool:
    return all((folder / entry[key]).is_file() for key in ("file", "computed_file") if key in entry)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
