"""Semi-supervised batch mode: given masks of some frames of many videos, masks of every frame.

Input (DAVIS layout)::

    DATA/JPEGImages/<video>/<frame>.jpg    frames (.jpg, .jpeg, .png, .bmp), natural order
    MASKS/<video>/<frame>.png              masks of any frames (usually the first), same stems

Output: ``OUT/<video>/<frame>.png`` for every frame, indexed (palette) PNGs whose pixel values
are the object ids, in the palette of the first given mask when it has one (else DAVIS's).

Each given mask starts one round (in frame order) through :meth:`Session.interact_mask`, so
every given frame keeps its mask and the rest follow the memories of all of them. A video's
folder appears only when all its frames are written (written beside it, then renamed), so a
rerun skips the videos that are complete and redoes the rest.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from manet.config import SessionConfig
from manet.errors import VideoError
from manet.io.video import IMAGE_EXTENSIONS, natural_sort_key

if TYPE_CHECKING:
    from manet.eval.evaluate import ModelSpec
    from manet.model.network import MANet

FRAMES = "JPEGImages"
_MODELS: dict[str, MANet] = {}  # per worker process: the model each spec built, reused by later tasks


@dataclass(frozen=True)
class VideoTask:
    """One video: its frames in order, the given masks (a subset of the frames' stems) and its output."""

    name: str
    frames: tuple[Path, ...]
    masks: tuple[Path, ...]
    out: Path

    @property
    def stems(self) -> list[str]:
        return [frame.stem for frame in self.frames]


@dataclass(frozen=True)
class VideoResult:
    """A written video: frames written, masks given, wall-clock seconds."""

    name: str
    frames: int
    given: int
    seconds: float


def list_frames(folder: Path) -> tuple[Path, ...]:
    """Image files directly in ``folder``, natural order, hidden files skipped."""
    entries = sorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")),
                     key=lambda entry: natural_sort_key(entry.name))
    return tuple(entry for entry in entries if entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS)


def find_videos(data: str | os.PathLike[str], masks: str | os.PathLike[str], out: str | os.PathLike[str],
                names: Sequence[str] | None = None) -> list[VideoTask]:
    """Every video with a folder in ``masks`` (or the ``names`` given), checked before anything runs.

    Raises:
        VideoError: a folder is missing, a video has no frames or no masks, or a mask's stem
            names no frame.
    """
    data, masks, out = Path(data), Path(masks), Path(out)
    if not (data / FRAMES).is_dir():
        raise VideoError(f"{data} is not a DAVIS-layout folder: it needs {FRAMES}/<video>/ with the frames")
    if not masks.is_dir():
        raise VideoError(f"the masks folder {masks} does not exist: it needs <video>/<frame>.png per video")
    chosen = sorted(entry.name for entry in masks.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    chosen = list(names) if names is not None else chosen
    if not chosen:
        raise VideoError(f"{masks} holds no <video> folder of masks")
    return [_video_task(data / FRAMES / name, masks / name, out / name) for name in chosen]


def _video_task(frame_dir: Path, mask_dir: Path, out: Path) -> VideoTask:
    name = frame_dir.name
    if not frame_dir.is_dir() or not mask_dir.is_dir():
        raise VideoError(f"video {name!r} needs {frame_dir} and {mask_dir}")
    frames = list_frames(frame_dir)
    if not frames:
        raise VideoError(f"video {name!r} has no frames in {frame_dir}")
    stems = {frame.stem for frame in frames}
    given = tuple(sorted((path for path in mask_dir.glob("*.png") if not path.name.startswith(".")),
                         key=lambda path: natural_sort_key(path.name)))
    if not given:
        raise VideoError(f"video {name!r} has no mask PNG in {mask_dir}: give at least one frame's mask")
    unknown = [path.name for path in given if path.stem not in stems]
    if unknown:
        raise VideoError(f"video {name!r}: masks {unknown[:3]} name no frame of {frame_dir} (masks take the "
                         "file stem of their frame)")
    return VideoTask(name, frames, given, out)


def is_complete(task: VideoTask) -> bool:
    """Whether ``task.out`` already holds a mask for every frame (a finished earlier run)."""
    return task.out.is_dir() and all((task.out / f"{stem}.png").is_file() for stem in task.stems)


def propagate_video(model: MANet, task: VideoTask, config: SessionConfig | None = None) -> VideoResult:
    """Segment every frame of ``task`` from its given masks and write them (see the module doc)."""
    from manet.inference.session import Session
    from manet.io.davis import read_mask

    started = time.perf_counter()
    session = Session(model, task.frames[0].parent, config)
    if session.num_frames != len(task.frames):
        raise VideoError(f"video {task.name!r}: {session.num_frames} frames decoded, {len(task.frames)} listed")
    index = {stem: position for position, stem in enumerate(task.stems)}
    for path in task.masks:
        mask = read_mask(path)
        if mask.shape != (session.height, session.width):
            raise VideoError(f"{path} is {mask.shape[1]}x{mask.shape[0]}, its frames "
                             f"{session.width}x{session.height}: masks must have the frames' size")
        session.interact_mask(mask, index[path.stem])
        for _ in session.propagate():
            pass
    write_masks(session.masks, task, _palette_of(task.masks[0]))
    return VideoResult(task.name, len(task.frames), len(task.masks), time.perf_counter() - started)


def _palette_of(path: Path) -> bytes:
    with Image.open(path) as image:
        if image.mode == "P" and image.getpalette():
            palette = image.getpalette() or []
            return bytes(palette) + bytes(768 - len(palette))
    from manet.io.export import davis_palette

    return davis_palette().astype(np.uint8).tobytes()


def write_masks(masks: np.ndarray, task: VideoTask, palette: bytes) -> Path:
    """Write (T, H, W) uint8 ids as ``task.out/<stem>.png``, all at once: into a hidden sibling
    folder first, renamed into place when every frame is written (a previous incomplete
    folder is replaced)."""
    target = task.out
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    temporary.mkdir()
    try:
        for stem, mask in zip(task.stems, masks, strict=True):
            image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
            image.putpalette(palette)  # an "L" image becomes "P" with its values as the indices
            image.save(temporary / f"{stem}.png")
        if target.exists():
            stale = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
            os.replace(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def propagate_task(spec: ModelSpec, task: VideoTask, config: SessionConfig | None) -> VideoResult:
    """:func:`propagate_video` with the model a :class:`~manet.eval.evaluate.ModelSpec` builds,
    built once per worker process (a task function for :func:`manet.batch.runner.run_tasks`)."""
    key = repr(spec)
    if key not in _MODELS:
        _MODELS[key] = spec.build()
    return propagate_video(_MODELS[key], task, config)
