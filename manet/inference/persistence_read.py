"""Reading session folders (see :mod:`manet.inference.persistence` for the layout).

Everything read is checked: shapes, dtypes and cross-references between the manifest and its
files. A problem raises :class:`~manet.errors.SessionFileError` naming the file and saying
what to do. This module builds a :class:`SessionState`, never a session.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from manet.config import ModelConfig, SessionConfig
from manet.errors import FrameIndexError, ManetError, ScribbleError, SessionFileError, SessionStateError
from manet.inference.device import encoder_size_for, working_size_for
from manet.inference.memory import GlobalMemory, LocalRound
from manet.inference.objects import ObjectInfo, ObjectRegistry
from manet.inference.scribbles import Annotation, Box, Scribble, make_annotation
from manet.inference.state import Channels, RoundRecord, SessionState
from manet.io.video import VideoSource
from manet.model.network import MANet

FORMAT_VERSION = 2
FORMAT = f"manet-session-{FORMAT_VERSION}"
MANIFEST = "manifest.json"
_FORMAT_PATTERN = re.compile(r"^manet-session-(\d+)$")
# Version 1 had no object list: its objects are the channels' ids with default names and colours.
_READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class SavedSession:
    """A saved session as read from its folder, ready for ``Session.load`` to adopt.

    Attributes:
        video: the video, opened and checked against the saved fingerprint.
        config: the session config (the caller's, or the saved one).
        working_size: (h, w) the frames were embedded at.
        embeddings: ((T, E, h, w) float16 memory-mapped array, (T,) bool computed flags), or None.
        state: the committed state.
    """

    video: VideoSource
    config: SessionConfig
    working_size: tuple[int, int]
    embeddings: tuple[np.ndarray, np.ndarray] | None
    state: SessionState


@dataclass(frozen=True)
class SaveSummary:
    """What a session folder's manifest says, without loading its files."""

    format: str
    video_description: str
    video_fingerprint: str
    num_rounds: int
    objects: tuple[ObjectInfo, ...]


def model_digest(model: MANet) -> str:
    """sha256 over every state-dict entry's name, dtype, shape and bytes (detects other weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def holds_save(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder`` holds a session manifest (readable or not)."""
    return (Path(folder) / MANIFEST).is_file()


def describe_save(folder: str | os.PathLike[str]) -> SaveSummary:
    """The manifest's video, round count and objects. Raises SessionFileError when unreadable."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        return SaveSummary(manifest["format"], str(manifest["video"]["description"]),
                           str(manifest["video"]["fingerprint"]), len(manifest["rounds"]),
                           _objects(manifest).items)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ManetError):
            raise
        raise SessionFileError(f"{folder / MANIFEST} is malformed ({type(error).__name__}: {error}); "
                               "the folder is not a complete saved session") from error


def read_session(folder: str | os.PathLike[str], model: MANet, video: Any = None,
                 config: SessionConfig | None = None) -> SavedSession:
    """Read and check a saved session.

    Args:
        folder: a folder written by ``save_session`` or ``Autosaver``.
        model: the model the session was saved with (checked by config and weights digest).
        video: the video (anything ``Session`` accepts); default: reopen the recorded file or folder.
        config: session settings; default the saved ones.
    Raises:
        SessionFileError: unknown format version, missing or damaged file, other video or model.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        return _build(folder, manifest, model, video, config)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        if isinstance(error, ManetError):
            raise
        raise SessionFileError(f"{folder / MANIFEST} is malformed ({type(error).__name__}: {error}); "
                               "the folder is not a complete saved session") from error


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of ``folder`` as JSON, checked for a readable format version."""
    path = folder / MANIFEST
    if not path.is_file():
        raise SessionFileError(f"{path} is missing: {folder} is not a saved session (or its first save was "
                               "interrupted); save the session again")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SessionFileError(f"{path} cannot be read as JSON ({error}); the save is damaged") from error
    version = manifest.get("format") if isinstance(manifest, dict) else None
    match = _FORMAT_PATTERN.match(version) if isinstance(version, str) else None
    if match is not None and int(match.group(1)) in _READABLE_VERSIONS:
        return manifest
    if match is not None and int(match.group(1)) > FORMAT_VERSION:
        raise SessionFileError(f"{path} has format {version!r}, written by a newer manet; upgrade manet "
                               f"(this version reads {FORMAT!r} and older)")
    raise SessionFileError(f"{path} has format {version!r}, not {FORMAT!r}: it is not a manet session folder")


def _build(folder: Path, manifest: dict[str, Any], model: MANet, video: Any,
           config: SessionConfig | None) -> SavedSession:
    _check_model(manifest["model"], model)
    source = _open_video(manifest["video"], video)
    # Sessions saved before these switches existed embedded every frame once, without the mirror
    # image, at the working size, and showed masks without edge snapping.
    saved_config = {"mirror_embedding": False, "encoder_size": None, "edge_radius": 0.0,
                    **manifest["session_config"]}
    config = config or SessionConfig.from_dict(saved_config)
    if bool(saved_config["mirror_embedding"]) != config.mirror_embedding:
        raise SessionFileError(f"the session was saved with mirror_embedding={bool(saved_config['mirror_embedding'])}, "
                               f"the config gives {config.mirror_embedding}: its embeddings and memories were "
                               "computed that way; load with the saved mirror_embedding")
    working_size = (int(manifest["working_size"][0]), int(manifest["working_size"][1]))
    configured = working_size_for(source.height, source.width, config.working_size)
    if configured != working_size:
        raise SessionFileError(f"the session was saved at working size {working_size}, the config gives "
                               f"{configured}; load with the saved working_size")
    saved_encoder = encoder_size_for(source.height, source.width, working_size, saved_config["encoder_size"])
    if encoder_size_for(source.height, source.width, configured, config.encoder_size) != saved_encoder:
        raise SessionFileError(f"the session's frames were embedded at {saved_encoder} "
                               f"(encoder_size={saved_config['encoder_size']}), the config gives "
                               f"encoder_size={config.encoder_size}; load with the saved encoder_size")
    embeddings, grid = _read_embeddings(folder, manifest, source.num_frames, model.config.embedding_dim)
    records, local_rounds, grid = _read_rounds(folder, manifest, source, grid)
    memory = _read_global(folder, manifest.get("global_memory"), source.num_frames, grid)
    try:
        state = SessionState(tuple(records), tuple(local_rounds), Channels(tuple(int(i) for i in manifest["channels"])),
                             _objects(manifest).items, memory)
    except SessionStateError as error:
        raise SessionFileError(f"{folder / MANIFEST} is inconsistent ({error}); the save is damaged") from error
    return SavedSession(source, config, working_size, embeddings, state)


def _objects(manifest: dict[str, Any]) -> ObjectRegistry:
    if "objects" not in manifest:  # format 1: the channels' objects with default names and colours
        return ObjectRegistry().ensure(int(i) for i in manifest["channels"])
    try:
        items = [ObjectInfo(int(entry["id"]), str(entry["name"]), str(entry["color"])) for entry in manifest["objects"]]
        return ObjectRegistry(tuple(items))
    except ValueError as error:
        raise SessionFileError(f"the manifest's object list is invalid ({error}); the save is damaged") from error


def _check_model(saved: dict[str, Any], model: MANet) -> None:
    # Compare as configs, not raw dicts: configs saved by earlier versions (older encoder names,
    # fields added since with their defaults) still describe the same architecture.
    try:
        saved_config = ModelConfig.from_dict(saved["config"])
    except (TypeError, ValueError) as error:
        raise SessionFileError(f"the session's model config cannot be read ({error}); the save is damaged "
                               "or from a newer version of manet") from error
    # Which backbone blocks were fine-tuned is a matter of weights: the digest below tells those apart.
    if saved_config.architecture() != model.config.architecture():
        ours, theirs = model.config.to_dict(), saved_config.to_dict()
        differences = sorted(key for key in ours if ours[key] != theirs[key])
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


def _read_embeddings(folder: Path, manifest: dict[str, Any], num_frames: int, embedding_dim: int
                     ) -> tuple[tuple[np.ndarray, np.ndarray] | None, tuple[int, int] | None]:
    """Saved (embeddings, computed flags) or None, and the grid they imply (or the manifest's, or None)."""
    entry = manifest.get("embeddings")
    saved_grid = manifest.get("grid")
    grid = (int(saved_grid[0]), int(saved_grid[1])) if saved_grid else None
    if not entry:
        return None, grid
    data = _load_npy(folder / entry["file"], mmap=True)
    computed = _load_npy(folder / entry["computed_file"], mmap=False)
    shape = (num_frames, embedding_dim)
    if data.dtype != np.float16 or data.ndim != 4 or data.shape[:2] != shape or list(data.shape) != entry["shape"]:
        raise SessionFileError(f"{folder / entry['file']} holds {data.dtype} {data.shape}, expected float16 "
                               f"{entry['shape']}; delete it and save again")
    if computed.dtype != np.bool_ or computed.shape != (num_frames,):
        raise SessionFileError(f"{folder / entry['computed_file']} holds {computed.dtype} {computed.shape}, "
                               f"expected bool ({num_frames},); the save is damaged")
    if grid is not None and data.shape[2:] != grid:
        raise SessionFileError(f"{folder / entry['file']} is on grid {data.shape[2:]}, the rounds on {grid}")
    return (data, computed), (int(data.shape[2]), int(data.shape[3]))


def _read_rounds(folder: Path, manifest: dict[str, Any], video: VideoSource,
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
        if logits.shape[:2] != (video.num_frames, len(channels)) or (grid and tuple(logits.shape[2:]) != grid):
            raise SessionFileError(f"{path}: logits have shape {tuple(logits.shape)}, expected "
                                   f"({video.num_frames}, {len(channels)}, grid); the save is damaged")
        grid = (int(logits.shape[2]), int(logits.shape[3]))
        before = _global_from(path, tensors, "global_before.", video.num_frames, grid)
        augmented = tensors.get("augmented")
        expected = (len(channels), *grid)
        if augmented is not None and (not augmented.is_floating_point() or tuple(augmented.shape) != expected):
            raise SessionFileError(f"{path}: augmented map has shape {tuple(augmented.shape)}, expected "
                                   f"({len(channels)}, {grid[0]}, {grid[1]})")
        annotation = _annotation(path, entry, tensors.get("annotation.mask"), video)
        records.append(RoundRecord(position, annotation, channels, float(entry["seconds"]), logits, before, augmented))
        local_rounds.append(_local_round(path, entry, tensors, len(channels), video.num_frames))
    return records, local_rounds, grid


def _annotation(path: Path, entry: dict[str, Any], mask: torch.Tensor | None, video: VideoSource) -> Annotation:
    if bool(entry["has_mask"]) != (mask is not None):
        raise SessionFileError(f"{path}: the round's mask annotation is missing or unexpected; the save is damaged")
    try:
        prompts: list[Scribble | Box] = [
            Scribble(int(s["object_id"]), np.asarray(s["points"], dtype=np.float64),
                     None if s["radius"] is None else float(s["radius"])) for s in entry["strokes"]]
        prompts += [Box(int(box[0]), *box[1:]) for box in entry["boxes"]]
        frame = int(entry["frame"])
        if not prompts and mask is None:  # a round whose every object was deleted since
            if not 0 <= frame < video.num_frames:
                raise FrameIndexError(f"frame {frame} is outside the {video.num_frames}-frame video")
            return Annotation(frame)
        return make_annotation(frame, prompts, video.num_frames, video.width, video.height,
                               mask=None if mask is None else mask.numpy())
    except (ScribbleError, FrameIndexError) as error:
        raise SessionFileError(f"{path}: round {entry['index']}'s annotation is invalid ({error}); "
                               "the save is damaged") from error


def _local_round(path: Path, entry: dict[str, Any], tensors: dict[str, torch.Tensor], channels: int,
                 num_frames: int) -> LocalRound:
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
    # Saves before deferred local maps existed have no such list.
    for pair in entry.get("local_deferred", []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(value, int) for value in pair)):
            raise SessionFileError(f"{path}: local_deferred holds {pair!r}, expected [frame, previous frame]")
        frame, previous = pair
        if not (0 <= frame < num_frames and 0 <= previous < num_frames) or frame in local.maps:
            raise SessionFileError(f"{path}: local_deferred [{frame}, {previous}] is outside the "
                                   f"{num_frames}-frame video or repeats a stored map; the save is damaged")
        local.deferred[frame] = previous
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
    return GlobalMemory.from_tensors(maps, written)


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
