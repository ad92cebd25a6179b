"""Training data: a cached DAVIS-layout folder and datasets that simulate propagation.

The folder is read by :mod:`manet.io.davis` (layout, split files and mask rules are documented
there); :class:`DavisFolder` keeps decoded frames and masks in memory.

``TripletDataset`` yields (reference, previous, current) frame triplets for stage 1 (the
propagation branch), ``ClipDataset`` an interactive frame and the frames propagated after it
(rollouts of round 1), ``FrameDataset`` single frames for stage 2 (the interaction branch).
Every item is a pure function of ``(seed, epoch, index)``: call ``set_epoch`` before each epoch
(with DataLoader workers, before creating the iterator; not with ``persistent_workers=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from manet.errors import VideoError
from manet.io.davis import DavisSequence, find_sequences, read_frame, read_mask
from manet.train.augment import (
    AugmentConfig,
    Box,
    FloatArray,
    PerturbConfig,
    UInt8Array,
    choose_crop_origin,
    color_jitter,
    crop_target,
    crop_transform,
    donor_frames,
    mask_box,
    paste_layer,
    paste_transforms,
    perturb_mask,
    transform_box,
    warp_image,
    warp_mask,
)

REFERENCE, PREVIOUS, CURRENT = 0, 1, 2
_MAX_ATTEMPTS = 5


class DavisFolder:
    """A DAVIS-layout folder with optional in-memory caching of decoded files.

    ``sequences``: None = every sequence of the folder; a list of names; or a split (a path to
    a file with one name a line, or the name of a split under ``ImageSets``). Returned arrays
    are read-only views of the cache: copy before writing. With DataLoader workers call
    ``preload()`` first so forked workers share one decoded copy instead of each filling its own.
    """

    def __init__(self, root: str | Path, sequences: Sequence[str] | str | Path | None = None,
                 cache: bool = True) -> None:
        self.root = Path(root)
        self.cache = cache
        self._index = {sequence.name: sequence for sequence in find_sequences(self.root, sequences)}
        self._frames: dict[tuple[str, int], UInt8Array] = {}
        self._masks: dict[tuple[str, int], UInt8Array] = {}

    @property
    def sequences(self) -> list[str]:
        return list(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def sequence(self, name: str) -> DavisSequence:
        if name not in self._index:
            raise VideoError(f"unknown sequence {name!r}; this folder has {self.sequences}")
        return self._index[name]

    def num_frames(self, name: str) -> int:
        return self.sequence(name).num_frames

    def scribble_path(self, name: str) -> Path | None:
        """First scribble file of the sequence (natural order), or None."""
        return self.sequence(name).first_scribble

    def frame(self, name: str, t: int) -> UInt8Array:
        """Frame ``t`` as (H,W,3) uint8 RGB."""
        return self._load(self._frames, read_frame, self.sequence(name).frames, name, t)

    def mask(self, name: str, t: int) -> UInt8Array:
        """Ground truth of frame ``t`` as (H,W) uint8 ids (0 = background)."""
        return self._load(self._masks, read_mask, self.sequence(name).annotations, name, t)

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Decode every frame and mask into the cache; ``progress(done, total)`` per sequence."""
        for done, name in enumerate(self._index, start=1):
            for t in range(self.num_frames(name)):
                self.frame(name, t)
                self.mask(name, t)
            if progress is not None:
                progress(done, len(self._index))

    def _load(self, store: dict[tuple[str, int], UInt8Array], reader: Callable[[Path], UInt8Array],
              paths: tuple[Path, ...], name: str, t: int) -> UInt8Array:
        key = (name, t)
        if key in store:
            return store[key]
        if not 0 <= t < len(paths):
            raise VideoError(f"frame {t} outside sequence {name!r} of {len(paths)} frames")
        array = reader(paths[t])
        array.setflags(write=False)
        if self.cache:
            store[key] = array
        return array


def sample_triplet_times(num_frames: int, current: int, rng: np.random.Generator,
                         max_gap: int | None = None) -> tuple[int, int, int]:
    """(reference, previous, current) frame indices for one propagation step.

    previous = current -/+ 1 (propagation runs both ways; forced at the ends); the reference
    is uniform over the other frames within ``max_gap`` of current (it may equal previous).
    """
    step = -1 if rng.random() < 0.5 else 1
    if not 0 <= current + step < num_frames:
        step = -step
    gap = num_frames if max_gap is None else max(1, max_gap)
    choices = [t for t in range(max(0, current - gap), min(num_frames, current + gap + 1))
               if t != current]
    return int(choices[rng.integers(len(choices))]), current + step, current


@dataclass
class _Clip:
    """Frames of one sample in crop space: (N,h,w,3) float32 in [0,255], (N,h,w) uint8 ids."""

    images: FloatArray
    ids: UInt8Array
    num_objects: int


class _ClipRenderer:
    """Cuts an augmented, optionally composited clip of frames out of a folder.

    ``anchor`` indexes the frame whose objects the crop must contain, ``reference`` the frame
    that defines the objects: any object with fewer than ``min_object_pixels`` there is
    relabelled background and the rest renumbered 1..n.
    """

    def __init__(self, folder: DavisFolder, crop_size: tuple[int, int], config: AugmentConfig,
                 composite_probability: float, max_objects: int) -> None:
        self.folder, self.crop_size, self.config = folder, crop_size, config
        self.composite_probability, self.max_objects = composite_probability, max_objects

    def render(self, name: str, times: Sequence[int], anchor: int, reference: int,
               rng: np.random.Generator) -> _Clip:
        frames = [self.folder.frame(name, t) for t in times]
        masks = [self.folder.mask(name, t) for t in times]
        present = _object_ids(masks[reference])
        natives = sorted(rng.permutation(present)[:self.max_objects].tolist()) if present else []
        lut = np.zeros(256, dtype=np.uint8)
        lut[natives] = np.arange(1, len(natives) + 1)
        matrix = self._crop_matrix(frames[0].shape, masks, natives, anchor, reference, rng)
        images = np.stack([warp_image(f, matrix, self.crop_size) for f in frames]).astype(np.float32)
        ids = np.stack([lut[warp_mask(m, matrix, self.crop_size)] for m in masks])
        count = len(natives)
        room = self.max_objects - count
        if room > 0 and len(self.folder) > 1 and rng.random() < self.composite_probability:
            for _ in range(int(rng.integers(1, room + 1))):
                count += self._paste(name, times, anchor, reference, images, ids, count + 1, rng)
        return _renumber_by_reference(images, ids, count, reference, self.config.min_object_pixels)

    def _crop_matrix(self, shape: tuple[int, ...], masks: list[UInt8Array], natives: list[int],
                     anchor: int, reference: int, rng: np.random.Generator) -> np.ndarray:
        height, width = shape[:2]
        scale = float(rng.uniform(*self.config.scale_range))
        flip = bool(rng.random() < self.config.flip_probability)
        to_scaled = crop_transform(scale, flip, (0.0, 0.0), width)
        def box(t: int) -> Box | None:
            found = mask_box(np.isin(masks[t], natives)) if natives else None
            return None if found is None else transform_box(to_scaled, found)
        target = crop_target(box(anchor), box(reference), self.crop_size)
        origin = choose_crop_origin((scale * width, scale * height), self.crop_size, target, rng)
        return crop_transform(scale, flip, origin, width)

    def _paste(self, name: str, times: Sequence[int], anchor: int, reference: int,
               images: FloatArray, ids: UInt8Array, new_id: int, rng: np.random.Generator) -> int:
        """Paste one object of another sequence onto every frame; 1 if pasted, 0 if dropped."""
        others = [s for s in self.folder.sequences if s != name]
        donor = others[int(rng.integers(len(others)))]
        offsets = [t - times[anchor] for t in times]
        donor_times = donor_frames(offsets, self.folder.num_frames(donor), rng)
        anchor_mask = self.folder.mask(donor, donor_times[anchor])
        candidates = _object_ids(anchor_mask)
        if not candidates:
            return 0
        object_id = candidates[int(rng.integers(len(candidates)))]
        box = mask_box(anchor_mask == object_id)
        if box is None:
            return 0
        matrices = paste_transforms(box, offsets, self.crop_size, rng, self.config)
        layers = [warp_mask((self.folder.mask(donor, t) == object_id).view(np.uint8), m,
                            self.crop_size).astype(bool) for t, m in zip(donor_times, matrices)]
        if int(layers[reference].sum()) < self.config.min_object_pixels:
            return 0
        for i, (t, m) in enumerate(zip(donor_times, matrices)):
            layer_image = warp_image(self.folder.frame(donor, t), m, self.crop_size,
                                     replicate_border=True)
            paste_layer(images[i], ids[i], layer_image, layers[i], new_id)
        return 1


def _object_ids(mask: UInt8Array) -> list[int]:
    """Ids > 0 present in an id mask, ascending."""
    return (np.flatnonzero(np.bincount(mask.ravel(), minlength=256)[1:]) + 1).tolist()


def _renumber_by_reference(images: FloatArray, ids: UInt8Array, count: int, reference: int,
                           min_pixels: int) -> _Clip:
    counts = np.bincount(ids[reference].ravel(), minlength=count + 1)
    keep = [k for k in range(1, count + 1) if counts[k] >= min_pixels]
    lut = np.zeros(256, dtype=np.uint8)
    lut[keep] = np.arange(1, len(keep) + 1)
    return _Clip(images, lut[ids], len(keep))


def _to_tensor_images(images: FloatArray) -> torch.Tensor:
    """(N,h,w,3) float32 -> (N,3,h,w) contiguous tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


class _SeededFrames(Dataset[dict[str, Any]]):
    """Shared indexing: item i is frame i of the folder's concatenated sequences."""

    def __init__(self, folder: DavisFolder, crop_size: tuple[int, int], composite_probability: float,
                 max_objects: int, seed: int, augment: AugmentConfig | None) -> None:
        augment = augment or AugmentConfig()
        self.folder, self.seed, self.epoch, self.augment = folder, seed, 0, augment
        size = (int(crop_size[0]), int(crop_size[1]))
        self.renderer = _ClipRenderer(folder, size, augment, composite_probability, max_objects)
        self._items = [(name, t) for name in folder.sequences for t in range(folder.num_frames(name))]

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of this epoch (items differ between epochs)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._items)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))


class TripletDataset(_SeededFrames):
    """Stage-1 samples: reference, previous and current frame of one sequence.

    Item ``i`` has current frame = frame i of the concatenated sequences. Keys:
    ``images`` (3,3,H,W) float32 RGB in [0,1], order [reference, previous, current];
    ``masks`` (3,H,W) int64 ids 0..n (0 = background; the objects of the reference frame);
    ``previous_mask`` (H,W) int64, the previous ground truth damaged like a prediction;
    ``num_objects`` int n (0 only if five draws in a row lost every object);
    ``sequence`` str; ``frames`` (3,) int64 frame indices [reference, previous, current].
    ``max_gap``: largest |reference - current| (None = anywhere in the sequence).
    """

    def __init__(self, folder: DavisFolder, crop_size: tuple[int, int] = (256, 256),
                 max_gap: int | None = None, composite_probability: float = 0.5,
                 max_objects: int = 3, seed: int = 0, augment: AugmentConfig | None = None,
                 perturb: PerturbConfig | None = None) -> None:
        short = [n for n in folder.sequences if folder.num_frames(n) < 2]
        if short:
            raise VideoError(f"sequences {short} have fewer than 2 frames: drop them from the split")
        super().__init__(folder, crop_size, composite_probability, max_objects, seed, augment)
        self.max_gap, self.perturb = max_gap, perturb or PerturbConfig()

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        name, current = self._items[index]
        for _ in range(_MAX_ATTEMPTS):
            times = sample_triplet_times(self.folder.num_frames(name), current, rng, self.max_gap)
            clip = self.renderer.render(name, times, CURRENT, REFERENCE, rng)
            if clip.num_objects > 0:
                break
        previous = perturb_mask(clip.ids[PREVIOUS], clip.num_objects, rng, self.perturb)
        return {
            "images": _to_tensor_images(color_jitter(clip.images, rng, self.augment)),
            "masks": torch.from_numpy(clip.ids.astype(np.int64)),
            "previous_mask": torch.from_numpy(previous.astype(np.int64)),
            "num_objects": clip.num_objects,
            "sequence": name,
            "frames": torch.tensor(times, dtype=torch.int64),
        }


def sample_rollout_times(num_frames: int, start: int, frames: int, max_step: int,
                         rng: np.random.Generator) -> list[int]:
    """``frames`` frame indices of one propagation rollout: the interactive frame ``start``, then
    one frame every ``step`` (1..``max_step``) in a random direction, turned back at the
    sequence's end; a sequence too short repeats its last frame."""
    step = int(rng.integers(1, max(1, max_step) + 1))
    direction = -1 if rng.random() < 0.5 else 1
    reach = (frames - 1) * step
    if not 0 <= start + direction * reach < num_frames:
        direction = -direction
    while step > 1 and not 0 <= start + direction * (frames - 1) * step < num_frames:
        step -= 1
    return [min(num_frames - 1, max(0, start + direction * step * index)) for index in range(frames)]


class ClipDataset(_SeededFrames):
    """Rollout samples: an interactive frame and the frames a round propagates to after it.

    Item ``i`` starts at frame i of the concatenated sequences (:func:`sample_rollout_times`).
    Keys: ``images`` (N,3,H,W) float32 RGB in [0,1], the interactive frame first; ``masks``
    (N,H,W) int64 ids 0..n (the objects of the interactive frame); ``num_objects`` int n;
    ``sequence`` str; ``frames`` (N,) int64 frame indices.
    """

    def __init__(self, folder: DavisFolder, crop_size: tuple[int, int] = (256, 256), frames: int = 6,
                 max_step: int = 2, composite_probability: float = 0.5, max_objects: int = 3, seed: int = 0,
                 augment: AugmentConfig | None = None) -> None:
        if frames < 2:
            raise ValueError(f"a rollout needs at least 2 frames (the interactive frame and one more), got {frames}")
        super().__init__(folder, crop_size, composite_probability, max_objects, seed, augment)
        self.frames, self.max_step = frames, max_step

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        name, start = self._items[index]
        for _ in range(_MAX_ATTEMPTS):
            times = sample_rollout_times(self.folder.num_frames(name), start, self.frames, self.max_step, rng)
            clip = self.renderer.render(name, times, 0, 0, rng)
            if clip.num_objects > 0:
                break
        return {
            "images": _to_tensor_images(color_jitter(clip.images, rng, self.augment)),
            "masks": torch.from_numpy(clip.ids.astype(np.int64)),
            "num_objects": clip.num_objects,
            "sequence": name,
            "frames": torch.tensor(times, dtype=torch.int64),
        }


class FrameDataset(_SeededFrames):
    """Stage-2 samples: one augmented (optionally composited) frame with its mask.

    Keys: ``image`` (3,H,W) float32 RGB in [0,1]; ``mask`` (H,W) int64 ids 0..n;
    ``num_objects`` int n (objects with at least ``min_object_pixels`` in the crop; 0 only if
    the frame shows none in five draws);
    ``sequence`` str; ``frame`` int.
    """

    def __init__(self, folder: DavisFolder, crop_size: tuple[int, int] = (256, 256),
                 composite_probability: float = 0.5, seed: int = 0, max_objects: int = 3,
                 augment: AugmentConfig | None = None) -> None:
        super().__init__(folder, crop_size, composite_probability, max_objects, seed, augment)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        name, t = self._items[index]
        for _ in range(_MAX_ATTEMPTS):
            clip = self.renderer.render(name, [t], 0, 0, rng)
            if clip.num_objects > 0:
                break
        return {
            "image": _to_tensor_images(color_jitter(clip.images, rng, self.augment))[0],
            "mask": torch.from_numpy(clip.ids[0].astype(np.int64)),
            "num_objects": clip.num_objects,
            "sequence": name,
            "frame": t,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items of either dataset: tensors stacked, ints -> int64 tensor, strings -> list.

    Items share ``crop_size`` so every tensor stacks; ``num_objects`` becomes a (B,) int64
    tensor and the model uses K_b = num_objects[b] + 1 channels for sample b.
    """
    batch: dict[str, Any] = {}
    for key, first in items[0].items():
        values = [item[key] for item in items]
        if isinstance(first, torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(first, int):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        else:
            batch[key] = values
    return batch
