"""Sessions on disk: save every committed round, load it back indistinguishable.

A session folder holds immutable data files and one ``manifest.json`` that names them::

    manifest.json                       format version, video, model, config, rounds (JSON)
    embeddings-<tag>.npy                (T, E, h, w) float16 pixel embeddings (optional)
    computed-<tag>.npy                  (T,) bool: which frames' embeddings are valid
    global-<tag>.safetensors            the current global memory: maps (T, C, h, w) f16, written (C,)
    round-<i>-<tag>.safetensors         round i: logits, augmented map, global memory before the
                                        round, local memory maps (``local.<frame>``), mask prompt

Why a manifest instead of swapping whole folders: a save writes new data files under fresh
names, then replaces ``manifest.json`` with ``os.replace`` (atomic), then deletes files no
manifest names any more. At every instant the folder holds one complete save, with no window
in which the folder is missing, and :class:`Autosaver` can keep the files of unchanged rounds
and of the embeddings instead of copying them. Tensors use safetensors or ``.npy``, never pickle.

A pending round (``interact`` without a finished ``propagate``) is not saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from manet.config import SessionConfig
from manet.errors import FrameIndexError, ManetError, ScribbleError, SessionFileError, SessionStateError
from manet.inference.memory import GlobalMemory, LocalMemory, LocalRound
from manet.inference.scribbles import Annotation, Box, Scribble, make_annotation, to_davis
from manet.inference.session import Session
from manet.inference.state import Channels, RoundRecord
from manet.io.video import VideoSource
from manet.model.network import MANet

FORMAT = "manet-session-1"
MANIFEST = "manifest.json"
_FORMAT_PATTERN = re.compile(r"^manet-session-(\d+)$")
# Files this module writes; only these are ever deleted from a session folder.
_OWN_FILE = re.compile(r"^((embeddings|computed)-[0-9a-f]+\.npy|(global|round-\d+)-[0-9a-f]+\.safetensors"
                       r"|manifest\.json\.[0-9a-f]+\.tmp)$")


# ----------------------------------------------------------------------------- identities
def model_digest(model: MANet) -> str:
    """sha256 over every state-dict entry's name, dtype, shape and bytes (detects other weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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


def save_session(session: Session, folder: str | os.PathLike[str], *, include_embeddings: bool = True) -> Path:
    """Write the session's committed state to ``folder`` (created if needed) and return its path.

    The previous save in ``folder`` stays loadable until the new one is complete. Raises
    :class:`SessionStateError` while a propagation is running and :class:`SessionFileError` when
    ``folder`` holds files that are not a saved session.
    """
    return _write(session, Path(folder), include_embeddings, _Reusable())


class Autosaver:
    """Save one session to one folder after every round, cheaply.

    The first :meth:`save` writes everything; later ones write only the current global memory,
    new rounds and (when more frames were embedded) the embeddings, and name the unchanged
    files of the previous save again. Each save is as atomic as :func:`save_session`.
    Not thread-safe: call it from the thread that runs the rounds.
    """

    def __init__(self, session: Session, folder: str | os.PathLike[str], *, include_embeddings: bool = True) -> None:
        self.session = session
        self.folder = Path(folder)
        self.include_embeddings = include_embeddings
        self._reusable = _Reusable()

    def save(self) -> Path:
        """Save now; on any error the folder keeps its last complete save."""
        reusable = _Reusable(list(self._reusable.rounds), self._reusable.embeddings, self._reusable.model_sha256)
        path = _write(self.session, self.folder, self.include_embeddings, reusable)
        self._reusable = reusable
        return path


def _write(session: Session, folder: Path, include_embeddings: bool, reusable: _Reusable) -> Path:
    if len(session._local.rounds) != len(session._rounds):
        raise SessionStateError("a propagation is running: save after it has finished or been cancelled")
    _prepare_folder(folder)
    tag = secrets.token_hex(6)
    if reusable.model_sha256 is None:
        reusable.model_sha256 = model_digest(session.model)
    manifest = _header(session, reusable.model_sha256)
    manifest["embeddings"] = _write_embeddings(session, folder, tag, reusable) if include_embeddings else None
    manifest["global_memory"] = _write_global(session._global, folder / f"global-{tag}.safetensors")
    manifest["rounds"] = _write_rounds(session, folder, tag, reusable)
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


def _header(session: Session, model_sha256: str) -> dict[str, Any]:
    video = session.video
    path = video_path(video)
    grid = list(session._rounds[-1].logits.shape[2:]) if session._rounds else None
    return {
        "format": FORMAT,
        "video": {"description": video.source_description, "fingerprint": video.fingerprint(),
                  "path": None if path is None else str(path), "num_frames": session.num_frames,
                  "height": session.height, "width": session.width},
        "working_size": list(session.working_size),
        "grid": grid,
        "model": {"config": session.model.config.to_dict(), "sha256": model_sha256},
        "session_config": session.config.to_dict(),
        "channels": list(session._channels.ids),
    }


def _write_embeddings(session: Session, folder: Path, tag: str, reusable: _Reusable) -> dict[str, Any] | None:
    data = session.embeddings.export()
    if data is None:
        return None
    computed = session.embeddings.computed.copy()
    if reusable.embeddings is not None and np.array_equal(reusable.embeddings[0], computed) \
            and _files_exist(folder, reusable.embeddings[1]):
        return reusable.embeddings[1]
    entry: dict[str, Any] = {"file": f"embeddings-{tag}.npy", "computed_file": f"computed-{tag}.npy", "shape": list(data.shape)}
    _save_npy(folder / entry["file"], data)
    _save_npy(folder / entry["computed_file"], computed)
    reusable.embeddings = (computed, entry)
    return entry


def _write_global(memory: GlobalMemory | None, path: Path) -> dict[str, Any] | None:
    if memory is None:
        return None
    _save_tensors(path, {"maps": memory.maps, "written": memory.written})
    return {"file": path.name, "channels": memory.channels}


def _write_rounds(session: Session, folder: Path, tag: str, reusable: _Reusable) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    kept: list[tuple[RoundRecord, dict[str, Any]]] = []
    for index, (record, local) in enumerate(zip(session._rounds, session._local.rounds)):
        previous = reusable.rounds[index] if index < len(reusable.rounds) else None
        if previous is not None and previous[0] is record and _files_exist(folder, previous[1]):
            entry = previous[1]
        else:
            entry = _write_round(session, record, local, folder / f"round-{index:03d}-{tag}.safetensors")
        entries.append(entry)
        kept.append((record, entry))
    reusable.rounds = kept
    return entries


def _write_round(session: Session, record: RoundRecord, local: LocalRound, path: Path) -> dict[str, Any]:
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
        "annotation": _plain(to_davis([annotation], session.num_frames, session.width, session.height)),
        "strokes": [{"object_id": s.object_id, "points": s.points.tolist(), "radius": _plain(s.radius)}
                    for s in annotation.scribbles],
        "boxes": [[box.object_id, *(_plain(v) for v in (box.x0, box.y0, box.x1, box.y1))] for box in annotation.boxes],
        "has_mask": annotation.mask is not None,
        "local_interactive_frame": local.interactive_frame,
        "local_frames": sorted(local.maps),
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


# ----------------------------------------------------------------------------- loading
def load_session(folder: str | os.PathLike[str], model: MANet, video: Any = None,
                 config: SessionConfig | None = None) -> Session:
    """Rebuild a saved session: same rounds, masks, maps and memories; its next round gives the
    same result the unsaved session's would.

    Args:
        folder: a folder written by :func:`save_session` or :class:`Autosaver`.
        model: the model the session was saved with (checked by config and weights digest).
        video: the video (anything :class:`~manet.Session` accepts); default: reopen the
            recorded file or folder.
        config: session settings; default the saved ones. The working size must stay the same.
    Raises:
        SessionFileError: unknown format version, missing or damaged file, other video or model.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    try:
        return _build(folder, manifest, model, video, config)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        if isinstance(error, ManetError):
            raise
        raise SessionFileError(f"{folder / MANIFEST} is malformed ({type(error).__name__}: {error}); "
                               "the folder is not a complete saved session") from error


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise SessionFileError(f"{path} is missing: {folder} is not a saved session (or its first save was "
                               "interrupted); save the session again")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SessionFileError(f"{path} cannot be read as JSON ({error}); the save is damaged") from error
    version = manifest.get("format") if isinstance(manifest, dict) else None
    if version == FORMAT:
        return manifest
    match = _FORMAT_PATTERN.match(version) if isinstance(version, str) else None
    if match is not None and int(match.group(1)) > 1:
        raise SessionFileError(f"{path} has format {version!r}, written by a newer manet; upgrade manet "
                               f"(this version reads {FORMAT!r})")
    raise SessionFileError(f"{path} has format {version!r}, not {FORMAT!r}: it is not a manet session folder")


def _build(folder: Path, manifest: dict[str, Any], model: MANet, video: Any,
           config: SessionConfig | None) -> Session:
    _check_model(manifest["model"], model)
    source = _open_video(manifest["video"], video)
    config = config or SessionConfig.from_dict(manifest["session_config"])
    session = Session(model, source, config)
    saved_size = tuple(manifest["working_size"])
    if session.working_size != saved_size:
        raise SessionFileError(f"the session was saved at working size {saved_size}, the config gives "
                               f"{session.working_size}; load with the saved working_size")
    grid = _restore_embeddings(folder, manifest, session)
    records, local_rounds, grid = _read_rounds(folder, manifest, session, grid)
    memory = _read_global(folder, manifest.get("global_memory"), session.num_frames, grid)
    if memory is not None:
        session._global = memory
    session._rounds = records
    session._local = LocalMemory()
    session._local.rounds = local_rounds
    session._channels = Channels(tuple(int(i) for i in manifest["channels"]))
    expected = records[-1].channels if records else Channels()
    if session._channels != expected or (records and memory is None):
        raise SessionFileError(f"{folder / MANIFEST} is inconsistent: its channels or global memory do not "
                               "match its last round; the save is damaged")
    session._mask_cache = {}
    return session


def _check_model(saved: dict[str, Any], model: MANet) -> None:
    current = json.loads(json.dumps(model.config.to_dict()))
    if saved["config"] != current:
        differences = sorted(key for key in set(saved["config"]) | set(current)
                             if saved["config"].get(key) != current.get(key))
        raise SessionFileError(f"the session was saved with another model architecture (differs in "
                               f"{differences}); load it with ModelConfig.from_dict({saved['config']!r})")
    if saved["sha256"] != model_digest(model):
        raise SessionFileError("the session was saved with other model weights (state-dict digest differs); "
                               "load the checkpoint the session was made with")


def _open_video(saved: dict[str, Any], video: Any) -> VideoSource:
    if video is None:
        recorded = saved.get("path")
        if recorded is None:
            raise SessionFileError(f"the session was made on an in-memory video ({saved['description']}); "
                                   "pass it again with video=...")
        if not Path(recorded).exists():
            raise SessionFileError(f"the session's video {recorded} no longer exists; pass video=<its new path>")
        video = recorded
    source = VideoSource.open(video)
    fingerprint = source.fingerprint()
    if fingerprint != saved["fingerprint"]:
        raise SessionFileError(f"the video does not match the saved session: saved {saved['description']} "
                               f"({saved['fingerprint']}), given {source.source_description} ({fingerprint}); "
                               "pass the video the session was made on")
    return source


def _restore_embeddings(folder: Path, manifest: dict[str, Any], session: Session) -> tuple[int, int] | None:
    """Adopt saved embeddings; returns the grid they imply (or the manifest's, or None)."""
    entry = manifest.get("embeddings")
    saved_grid = manifest.get("grid")
    grid = (int(saved_grid[0]), int(saved_grid[1])) if saved_grid else None
    if not entry:
        return grid
    data = _load_npy(folder / entry["file"], mmap=True)
    computed = _load_npy(folder / entry["computed_file"], mmap=False)
    shape = (session.num_frames, session.model.config.embedding_dim)
    if data.dtype != np.float16 or data.ndim != 4 or data.shape[:2] != shape or list(data.shape) != entry["shape"]:
        raise SessionFileError(f"{folder / entry['file']} holds {data.dtype} {data.shape}, expected float16 "
                               f"{entry['shape']}; delete it and save again")
    if computed.dtype != np.bool_ or computed.shape != (session.num_frames,):
        raise SessionFileError(f"{folder / entry['computed_file']} holds {computed.dtype} {computed.shape}, "
                               f"expected bool ({session.num_frames},); the save is damaged")
    if grid is not None and data.shape[2:] != grid:
        raise SessionFileError(f"{folder / entry['file']} is on grid {data.shape[2:]}, the rounds on {grid}")
    session.embeddings.restore(data, computed)
    return (int(data.shape[2]), int(data.shape[3]))


def _read_rounds(folder: Path, manifest: dict[str, Any], session: Session,
                 grid: tuple[int, int] | None) -> tuple[list[RoundRecord], list[LocalRound], tuple[int, int] | None]:
    records: list[RoundRecord] = []
    local_rounds: list[LocalRound] = []
    for position, entry in enumerate(manifest["rounds"]):
        if entry["index"] != position:
            raise SessionFileError(f"{folder / MANIFEST} lists round {entry['index']} at position {position}")
        path = folder / entry["file"]
        tensors = _load_tensors(path)
        channels = Channels(tuple(int(i) for i in entry["channels"]))
        logits = tensors.get("logits")
        _expect(path, "logits", logits, torch.float16, 4)
        assert logits is not None
        if logits.shape[:2] != (session.num_frames, len(channels)) or (grid and tuple(logits.shape[2:]) != grid):
            raise SessionFileError(f"{path}: logits have shape {tuple(logits.shape)}, expected "
                                   f"({session.num_frames}, {len(channels)}, grid); the save is damaged")
        grid = (int(logits.shape[2]), int(logits.shape[3]))
        before = _global_from(path, tensors, "global_before.", session.num_frames, grid)
        augmented = tensors.get("augmented")
        if augmented is not None and (not augmented.is_floating_point() or tuple(augmented.shape) != (len(channels), *grid)):
            raise SessionFileError(f"{path}: augmented map has shape {tuple(augmented.shape)}, expected "
                                   f"({len(channels)}, {grid[0]}, {grid[1]})")
        annotation = _annotation(path, entry, tensors.get("annotation.mask"), session)
        records.append(RoundRecord(position, annotation, channels, float(entry["seconds"]), logits, before, augmented))
        local_rounds.append(_local_round(path, entry, tensors, len(channels)))
    return records, local_rounds, grid


def _annotation(path: Path, entry: dict[str, Any], mask: torch.Tensor | None, session: Session) -> Annotation:
    if bool(entry["has_mask"]) != (mask is not None):
        raise SessionFileError(f"{path}: the round's mask annotation is missing or unexpected; the save is damaged")
    try:
        prompts: list[Scribble | Box] = [
            Scribble(int(s["object_id"]), np.asarray(s["points"], dtype=np.float64),
                     None if s["radius"] is None else float(s["radius"])) for s in entry["strokes"]]
        prompts += [Box(int(box[0]), *box[1:]) for box in entry["boxes"]]
        return make_annotation(int(entry["frame"]), prompts, session.num_frames, session.width, session.height,
                               mask=None if mask is None else mask.numpy())
    except (ScribbleError, FrameIndexError) as error:
        raise SessionFileError(f"{path}: round {entry['index']}'s annotation is invalid ({error}); "
                               "the save is damaged") from error


def _local_round(path: Path, entry: dict[str, Any], tensors: dict[str, torch.Tensor], channels: int) -> LocalRound:
    local = LocalRound(int(entry["local_interactive_frame"]))
    stored = sorted(int(name.split(".", 1)[1]) for name in tensors if name.startswith("local."))
    if stored != sorted(int(frame) for frame in entry["local_frames"]):
        raise SessionFileError(f"{path}: local memory frames {stored} differ from the manifest's list")
    for frame in stored:
        maps = tensors[f"local.{frame}"]
        _expect(path, f"local.{frame}", maps, torch.float16, 3)
        if maps.shape[0] > channels:
            raise SessionFileError(f"{path}: local.{frame} has {maps.shape[0]} channels, the round {channels}")
        local.maps[frame] = maps
    return local


def _read_global(folder: Path, entry: dict[str, Any] | None, num_frames: int,
                 grid: tuple[int, int] | None) -> GlobalMemory | None:
    if not entry:
        return None
    path = folder / entry["file"]
    if grid is None:
        raise SessionFileError(f"{folder / MANIFEST} names a global memory but no round or embeddings; "
                               "the save is damaged")
    return _global_from(path, _load_tensors(path), "", num_frames, grid)


def _global_from(path: Path, tensors: dict[str, torch.Tensor], prefix: str, num_frames: int,
                 grid: tuple[int, int]) -> GlobalMemory:
    maps, written = tensors.get(prefix + "maps"), tensors.get(prefix + "written")
    _expect(path, prefix + "maps", maps, torch.float16, 4)
    _expect(path, prefix + "written", written, torch.bool, 1)
    assert maps is not None and written is not None
    if maps.shape[0] != num_frames or tuple(maps.shape[2:]) != grid or written.shape[0] != maps.shape[1]:
        raise SessionFileError(f"{path}: {prefix}maps {tuple(maps.shape)} / written {tuple(written.shape)} do not "
                               f"fit {num_frames} frames on grid {grid}; the save is damaged")
    memory = GlobalMemory.__new__(GlobalMemory)
    memory.maps, memory.written = maps, written
    return memory


def _expect(path: Path, name: str, tensor: torch.Tensor | None, dtype: torch.dtype, ndim: int) -> None:
    if tensor is None:
        raise SessionFileError(f"{path} lacks the tensor {name!r}; the save is damaged")
    if tensor.dtype != dtype or tensor.ndim != ndim:
        raise SessionFileError(f"{path}: {name} is {tensor.dtype} with {tensor.ndim} dims, expected {dtype} "
                               f"with {ndim}; the save is damaged")


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return _read_file(path, lambda: load_file(str(path)))


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    return _read_file(path, lambda: np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))


def _read_file(path: Path, read: Callable[[], Any]) -> Any:
    if not path.is_file():
        raise SessionFileError(f"{path} is missing; the saved session is incomplete")
    try:
        return read()
    except Exception as error:  # safetensors and numpy raise assorted types on damaged files
        raise SessionFileError(f"{path} is damaged ({type(error).__name__}: {error}); "
                               "the saved session cannot be loaded") from error
