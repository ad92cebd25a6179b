"""Files for the download tests: small zips in the layout of the DAVIS-2017 and DAVIS-Interactive
archives, and checkpoints with the key names of the authors' release."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from official_checkpoint import official_shapes
from PIL import Image

SEQUENCES = {"bear": 1, "dogs-jump": 3}  # name -> number of objects
FRAMES = 4
WIDTH, HEIGHT = 48, 32


def _palette() -> list[int]:
    colours = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    return [value for colour in colours for value in colour] + [0] * (768 - 3 * len(colours))


def object_ids(objects: int, t: int) -> np.ndarray:
    """(HEIGHT, WIDTH) ids 0..objects: vertical bands that move right by one pixel a frame."""
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    band = WIDTH // (objects + 1)
    for k in range(1, objects + 1):
        ids[4:HEIGHT - 4, (k - 1) * band + 2 + t:(k - 1) * band + 2 + t + band - 4] = k
    return ids


def _png(ids: np.ndarray) -> bytes:
    image = Image.fromarray(ids, mode="P")
    image.putpalette(_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(ids: np.ndarray) -> bytes:
    rgb = np.stack([ids * 60, 255 - ids * 50, np.full_like(ids, 90)], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def davis_zip(path: Path) -> Path:
    """A zip shaped like DAVIS-2017-trainval-480p.zip: ``DAVIS/{JPEGImages,Annotations}/480p/<seq>/``,
    palette PNGs with ids 1..K, ``ImageSets/2016`` and ``ImageSets/2017`` lists and the licence files."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DAVIS/", "")
        archive.writestr("DAVIS/README.md", "DAVIS 2017 (test fixture)\n")
        archive.writestr("DAVIS/SOURCES.md", "test fixture\n")
        for name, objects in SEQUENCES.items():
            for t in range(FRAMES):
                ids = object_ids(objects, t)
                archive.writestr(f"DAVIS/JPEGImages/480p/{name}/{t:05d}.jpg", _jpeg(ids))
                archive.writestr(f"DAVIS/Annotations/480p/{name}/{t:05d}.png", _png(ids))
        archive.writestr("DAVIS/ImageSets/2017/train.txt", "bear\n")
        archive.writestr("DAVIS/ImageSets/2017/val.txt", "dogs-jump\n")
        archive.writestr("DAVIS/ImageSets/2016/val.txt", "dogs-jump\n")
    return path


def scribbles_zip(path: Path) -> Path:
    """A zip shaped like DAVIS-2017-scribbles-trainval.zip: ``DAVIS/Scribbles/<seq>/00N.json``, one
    stroke per object on frame 1 (normalised coordinates, DAVIS-Interactive format)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, objects in SEQUENCES.items():
            for annotator in (1, 2):
                per_frame: list[list[dict[str, object]]] = [[] for _ in range(FRAMES)]
                ids = object_ids(objects, 1)
                for k in range(1, objects + 1):
                    ys, xs = np.nonzero(ids == k)
                    points = [[float(x) / WIDTH, float(y) / HEIGHT] for x, y in zip(xs[::7], ys[::7])]
                    per_frame[1].append({"path": points, "object_id": k, "start_time": 0, "end_time": 1})
                data = {"scribbles": per_frame, "sequence": name, "annotated_frame": 1}
                archive.writestr(f"DAVIS/Scribbles/{name}/{annotator:03d}.json", json.dumps(data))
    return path


def official_checkpoint(path: Path, full_size: bool) -> Path:
    """The authors' key names with their real shapes (``full_size``: ResNet-101 sized, ~120 MB in
    float16) or with every tensor shrunk to one element (right keys, wrong shapes)."""
    state = {}
    for key, shape in official_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        else:
            state[key] = torch.zeros(shape if full_size else (1,) * len(shape), dtype=torch.float16)
    torch.save(state, path)
    return path
