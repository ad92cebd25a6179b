"""A tiny synthetic dataset in the DAVIS folder layout, for tests.

``make_synthetic_davis(root)`` writes::

    root/JPEGImages/<seq>/00000.jpg ...   RGB frames: moving shapes on a textured background
    root/Annotations/<seq>/00000.png ...  palette PNGs, pixel value = object id (0 = background)
    root/ImageSets/all.txt                one sequence name a line
    root/Scribbles/<seq>/001.json         only with ``with_scribbles=True``: a first-round
                                          scribble in the DAVIS interactive format

Object 1 is an ellipse, object 2 a square; each moves in a straight line so that every
object is visible on every frame. Everything is drawn from ``seed``, so the same arguments
always give the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

MAX_OBJECTS = 2


def davis_palette() -> list[int]:
    """A 256-colour palette, flat ``[r, g, b, ...]``: black background, distinct object colours."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1] = (200, 30, 30)
    palette[2] = (30, 180, 30)
    palette[3:] = np.stack([np.arange(3, 256)] * 3, axis=1)
    return palette.ravel().tolist()


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth coloured noise plus a gradient: texture for the embedding to latch onto."""
    noise = rng.random((height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    texture = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    gradient = np.linspace(0.0, 0.3, width, dtype=np.float32)[None, :, None]
    image = np.clip(0.25 + 0.4 * texture + gradient, 0.0, 1.0)
    return (image * 255).astype(np.uint8)


def _object_tracks(rng: np.random.Generator, objects: int, frames: int, height: int,
                   width: int) -> list[np.ndarray]:
    """Per object a (frames, 2) array of centre (x, y); object k lives in its own column band."""
    tracks = []
    band = width / objects
    for index in range(objects):
        left, right = band * index + band * 0.3, band * (index + 1) - band * 0.3
        start = np.array([rng.uniform(left, right), rng.uniform(0.35 * height, 0.5 * height)])
        step = np.array([rng.uniform(-1.0, 1.0), rng.uniform(0.5, 1.5)])
        tracks.append(start + step * np.arange(frames)[:, None])
    return tracks


def _draw_object(canvas: np.ndarray, object_id: int, centre: np.ndarray, size: int,
                 value: int | tuple[int, int, int]) -> None:
    x, y = round(float(centre[0])), round(float(centre[1]))
    if object_id == 1:
        cv2.ellipse(canvas, (x, y), (size, max(2, int(size * 0.7))), 20, 0, 360, value, -1)
    else:
        cv2.rectangle(canvas, (x - size, y - size), (x + size, y + size), value, -1)


def _first_round_scribbles(masks: np.ndarray, frame: int, objects: int) -> dict[str, object]:
    """A horizontal stroke through each object's centre row on ``frame``, DAVIS format."""
    height, width = masks.shape[1:]
    strokes = []
    for object_id in range(1, objects + 1):
        ys, xs = np.nonzero(masks[frame] == object_id)
        row = int(np.median(ys))
        cols = xs[ys == row]
        path = [[(c + 0.5) / width, (row + 0.5) / height] for c in range(int(cols.min()) + 1, int(cols.max()))]
        strokes.append({"path": path, "object_id": object_id})
    per_frame: list[list[dict[str, object]]] = [[] for _ in range(masks.shape[0])]
    per_frame[frame] = strokes
    return {"scribbles": per_frame, "sequence": "", "annotated_frame": frame}


def make_synthetic_davis(root: Path, sequences: int = 2, frames: int = 6, height: int = 64,
                         width: int = 96, objects: int = 1, seed: int = 0,
                         with_scribbles: bool = False) -> Path:
    """Write a synthetic DAVIS-layout dataset under ``root`` and return ``root``.

    Args:
        root: output folder (created if needed).
        sequences: number of sequences, named ``synth-00``, ``synth-01``, ...
        frames: frames per sequence.
        height, width: frame size in pixels.
        objects: 1 (an ellipse) or 2 (an ellipse and a square).
        seed: drives the texture, colours, sizes and motion.
        with_scribbles: also write ``Scribbles/<seq>/001.json`` with a stroke per object on
            the middle frame.
    """
    if not 1 <= objects <= MAX_OBJECTS:
        raise ValueError(f"objects must be 1 or 2, got {objects}")
    root = Path(root)
    names = [f"synth-{index:02d}" for index in range(sequences)]
    for index, name in enumerate(names):
        rng = np.random.default_rng([seed, index])
        _write_sequence(root, name, rng, frames, height, width, objects, with_scribbles)
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "all.txt").write_text("".join(f"{name}\n" for name in names))
    return root


def _write_sequence(root: Path, name: str, rng: np.random.Generator, frames: int, height: int,
                    width: int, objects: int, with_scribbles: bool) -> None:
    images_dir = root / "JPEGImages" / name
    masks_dir = root / "Annotations" / name
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    background = _background(rng, height, width)
    tracks = _object_tracks(rng, objects, frames, height, width)
    size = max(3, int(min(height, width / objects) * 0.18))
    colours = [(int(r), int(g), int(b)) for r, g, b in rng.integers(0, 256, size=(objects, 3))]
    masks = np.zeros((frames, height, width), dtype=np.uint8)
    for t in range(frames):
        image = background.copy()
        for k in range(objects):
            _draw_object(image, k + 1, tracks[k][t], size, colours[k])
            _draw_object(masks[t], k + 1, tracks[k][t], size, k + 1)
        cv2.imwrite(str(images_dir / f"{t:05d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        annotation = Image.fromarray(masks[t])
        annotation.putpalette(davis_palette())  # turns the "L" image into a palette ("P") one
        annotation.save(masks_dir / f"{t:05d}.png")
    if with_scribbles:
        scribble_dir = root / "Scribbles" / name
        scribble_dir.mkdir(parents=True, exist_ok=True)
        data = _first_round_scribbles(masks, frames // 2, objects)
        data["sequence"] = name
        (scribble_dir / "001.json").write_text(json.dumps(data))
