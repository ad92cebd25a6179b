"""Training data: folder index, triplet/frame datasets, augmentation and mask perturbation.

Most tests build small DAVIS-layout folders whose frames are lossless PNGs coloured by the
mask (background blue, object 1 red, ...), so any misalignment between pixels and ids shows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from davis_data import davis_240p_root, requires_davis_sequences
from PIL import Image

from manet.errors import VideoError
from manet.train.augment import (
    AugmentConfig,
    choose_crop_origin,
    color_jitter,
    donor_frames,
    perturb_mask,
)
from manet.train.data import (
    CURRENT,
    PREVIOUS,
    REFERENCE,
    ClipDataset,
    DavisFolder,
    FrameDataset,
    TripletDataset,
    collate,
    sample_rollout_times,
    sample_triplet_times,
)

REPO = Path(__file__).resolve().parents[1]
SHARED_DAVIS = davis_240p_root()
BLUE, RED, GREEN = (0, 0, 255), (255, 0, 0), (0, 255, 0)
NO_JITTER = AugmentConfig(brightness=0.0, contrast=0.0, saturation=0.0)
PALETTE = [0, 0, 0, 200, 0, 0, 0, 200, 0] + [128] * (256 * 3 - 9)


def write_sequence(root: Path, name: str, frames: list[np.ndarray], masks: list[np.ndarray]) -> None:
    """Write RGB frames as PNG and id masks as palette PNG in the DAVIS layout."""
    (root / "JPEGImages" / name).mkdir(parents=True)
    (root / "Annotations" / name).mkdir(parents=True)
    for t, (frame, mask) in enumerate(zip(frames, masks)):
        cv2.imwrite(str(root / "JPEGImages" / name / f"{t:05d}.png"), frame[:, :, ::-1])
        image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.astype(np.uint8).tobytes())
        image.putpalette(PALETTE)
        image.save(root / "Annotations" / name / f"{t:05d}.png")


def triangle_sequence(frames: int = 12, height: int = 120, width: int = 200, side: int = 40,
                      start: tuple[int, int] = (40, 40), step: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Blue background, red right triangle (vertical edge on its left) moving right."""
    images, masks = [], []
    for t in range(frames):
        mask = np.zeros((height, width), np.uint8)
        x, y = start[0] + step * t, start[1]
        corners = np.array([[x, y], [x, y + side], [x + side, y + side]], np.int32)
        cv2.fillPoly(mask, [corners], 1)
        image = np.empty((height, width, 3), np.uint8)
        image[:] = BLUE
        image[mask == 1] = RED
        images.append(image)
        masks.append(mask)
    return images, masks


def green_disc_sequence(frames: int = 8, height: int = 100,
                        width: int = 100) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """All-green frames with a static disc as object 1 (a donor whose pixels are all green)."""
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (width // 2, height // 2), 15, 1, -1)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = GREEN
    return [image] * frames, [mask] * frames


def interior(ids: np.ndarray, value: int) -> np.ndarray:
    """Pixels of id ``value`` whose 3x3 neighbourhood has the same id (no interpolation seam);
    the crop border counts as another id, since bilinear sampling there may reach outside."""
    eroded = cv2.erode((ids == value).astype(np.uint8), np.ones((3, 3), np.uint8),
                       borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return eroded.astype(bool)


def colour_is(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """(3,H,W) float image in [0,1] -> (H,W) bool: pixel equals ``colour``."""
    target = np.array(colour, np.float32)[:, None, None] / 255.0
    return bool_all(np.abs(image - target) < 2e-3)


def bool_all(values: np.ndarray) -> np.ndarray:
    return np.asarray(values.all(axis=0))


@pytest.fixture
def triangle_folder(tmp_path: Path) -> DavisFolder:
    write_sequence(tmp_path, "host", *triangle_sequence())
    return DavisFolder(tmp_path)


@pytest.fixture
def composite_folder(tmp_path: Path) -> DavisFolder:
    write_sequence(tmp_path, "host", *triangle_sequence(side=24))
    write_sequence(tmp_path, "donor", *green_disc_sequence())
    return DavisFolder(tmp_path, ["host", "donor"])


def test_split_files_partition_the_davis_train_set() -> None:
    dev = (REPO / "splits" / "dev.txt").read_text().split()
    train = (REPO / "splits" / "train.txt").read_text().split()
    assert dev == ["bear", "car-turn", "dance-jump", "kite-walk", "motocross-bumps", "soccerball"]
    assert len(train) == 24 and not set(dev) & set(train)
    image_set = SHARED_DAVIS / "ImageSets" / "train.txt"
    if image_set.is_file():
        assert sorted(dev + train) == sorted(image_set.read_text().split())


def test_folder_reads_multi_object_palette_masks_and_split_file(tmp_path: Path) -> None:
    mask = np.zeros((20, 30), np.uint8)
    mask[2:8, 2:8], mask[10:15, 20:28] = 3, 7
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[..., 0] = 250  # red in RGB order
    write_sequence(tmp_path, "a", [frame, frame], [mask, mask])
    write_sequence(tmp_path, "b", [frame, frame], [mask, mask])
    (tmp_path / "Scribbles" / "a").mkdir(parents=True)
    (tmp_path / "Scribbles" / "a" / "001.json").write_text("{}")
    split = tmp_path / "split.txt"
    split.write_text("a\n\n")
    folder = DavisFolder(tmp_path, split)
    assert folder.sequences == ["a"] and folder.num_frames("a") == 2
    assert folder.scribble_path("a") == tmp_path / "Scribbles" / "a" / "001.json"
    assert np.array_equal(folder.mask("a", 1), mask)
    assert folder.frame("a", 0)[0, 0].tolist() == [250, 0, 0]
    assert folder.frame("a", 0) is folder.frame("a", 0)  # cached
    assert not folder.frame("a", 0).flags.writeable
    assert DavisFolder(tmp_path, cache=False).sequences == ["a", "b"]
    item = TripletDataset(folder, crop_size=(16, 16), composite_probability=0.0, seed=0,
                          augment=AugmentConfig(min_object_pixels=1))[0]
    assert item["num_objects"] == 2  # ids 3 and 7 renumbered 1, 2
    assert set(item["masks"].unique().tolist()) <= {0, 1, 2}


def test_folder_rejects_missing_annotations_and_unknown_sequences(tmp_path: Path) -> None:
    write_sequence(tmp_path, "a", *triangle_sequence(frames=3))
    (tmp_path / "Annotations" / "a" / "00001.png").unlink()
    with pytest.raises(VideoError, match="annotation"):
        DavisFolder(tmp_path)
    with pytest.raises(VideoError, match="needs"):
        DavisFolder(tmp_path, ["nope"])


def test_triplet_item_contract(triangle_folder: DavisFolder) -> None:
    dataset = TripletDataset(triangle_folder, crop_size=(64, 96), max_gap=3, seed=1)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["images"].shape == (3, 3, 64, 96) and item["images"].dtype == torch.float32
        assert 0.0 <= float(item["images"].min()) and float(item["images"].max()) <= 1.0
        assert item["masks"].shape == (3, 64, 96) and item["masks"].dtype == torch.int64
        assert item["previous_mask"].shape == (64, 96) and item["previous_mask"].dtype == torch.int64
        assert item["num_objects"] == 1 and int(item["masks"].max()) <= 1
        assert (item["masks"][REFERENCE] == 1).any()
        reference, previous, current = item["frames"].tolist()
        assert current == index and abs(previous - current) == 1
        assert reference != current and abs(reference - current) <= 3


def test_triplet_frames_stay_aligned_with_masks_under_flip_and_scale(
        triangle_folder: DavisFolder) -> None:
    dataset = TripletDataset(triangle_folder, crop_size=(64, 64), composite_probability=0.0,
                             seed=2, augment=NO_JITTER)
    flipped, areas = [], []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            item = dataset[index]
            images, masks = item["images"].numpy(), item["masks"].numpy()
            for frame in range(3):
                assert colour_is(images[frame], RED)[interior(masks[frame], 1)].all()
                # Background is blue, black padding or a blend: no red beyond the faint trace
                # of a sharp tip that nearest sampling skips when downscaling.
                assert (images[frame][0][interior(masks[frame], 0)] < 0.4).all()
            xs = np.nonzero(masks[CURRENT] == 1)[1]
            # The triangle's vertical edge is on its left: more mass left of centre unless flipped.
            flipped.append(xs.mean() > (xs.min() + xs.max()) / 2)
            areas.append(xs.size)
    assert 0 < sum(flipped) < len(flipped)
    assert np.std(areas) > 20  # random scale changes the object's size


def test_crop_contains_the_current_objects(tmp_path: Path) -> None:
    write_sequence(tmp_path, "corner", *triangle_sequence(frames=10, height=240, width=427,
                                                          side=30, start=(360, 190), step=2))
    dataset = TripletDataset(DavisFolder(tmp_path), crop_size=(96, 96), composite_probability=0.0,
                             seed=3, augment=NO_JITTER)
    for index in range(len(dataset)):
        current = dataset[index]["masks"][CURRENT].numpy()
        assert (current == 1).sum() > 200
        border = np.concatenate([current[0], current[-1], current[:, 0], current[:, -1]])
        assert not (border == 1).any()


@pytest.mark.parametrize("scale", [0.8, 1.25])
def test_crop_shows_objects_cut_by_the_frame_edge(tmp_path: Path, scale: float) -> None:
    """The triangle leaves the frame at the bottom-right: the crop must still show all of
    what is inside the frame (up to nearest-sampling rounding at sub-pixel crop offsets)."""
    images, masks = triangle_sequence(frames=10, height=240, width=427, side=30, start=(385, 209),
                                      step=2)
    write_sequence(tmp_path, "edge", images, masks)
    augment = AugmentConfig(scale_range=(scale, scale), brightness=0.0, contrast=0.0, saturation=0.0)
    dataset = TripletDataset(DavisFolder(tmp_path), crop_size=(96, 96), composite_probability=0.0,
                             seed=3, augment=augment)
    for index in range(len(dataset)):
        shown = int((dataset[index]["masks"][CURRENT] == 1).sum())
        assert shown >= 0.85 * scale**2 * int(masks[index].sum())


def test_compositing_pastes_objects_whose_ids_match_their_pixels(
        composite_folder: DavisFolder) -> None:
    dataset = TripletDataset(composite_folder, crop_size=(64, 64), composite_probability=1.0,
                             max_objects=2, seed=4, augment=NO_JITTER)
    pasted_items = two_objects = 0
    for index in range(12):  # items of the host sequence: the donor is the green disc
        item = dataset[index]
        images, masks = item["images"].numpy(), item["masks"].numpy()
        green = [colour_is(images[f], GREEN) for f in range(3)]
        if not green[REFERENCE].any():
            continue
        pasted_items += 1
        pasted_id = int(np.unique(masks[REFERENCE][green[REFERENCE]])[0])
        assert pasted_id == item["num_objects"]  # pasted after the host's objects
        for frame in range(3):
            assert np.array_equal(green[frame], masks[frame] == pasted_id)
            # The seam is feathered over 2 px just outside the pasted object, no further.
            seam = cv2.dilate((masks[frame] == pasted_id).astype(np.uint8), np.ones((5, 5), np.uint8))
            assert not ((images[frame][1] > 2e-3) & (seam == 0)).any()
            for host_id in range(1, pasted_id):  # the triangle, unless the disc hid it
                host = interior(masks[frame], host_id) & (seam == 0)
                assert colour_is(images[frame], RED)[host].all()
        two_objects += item["num_objects"] == 2
    assert pasted_items >= 6 and two_objects >= 3


def test_pasted_object_drifts_linearly_in_time(composite_folder: DavisFolder) -> None:
    dataset = TripletDataset(composite_folder, crop_size=(96, 96), composite_probability=1.0,
                             max_objects=2, seed=5, augment=NO_JITTER)
    checked, drifts = 0, []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for index in range(12):
            item = dataset[index]
            green = [colour_is(item["images"][f].numpy(), GREEN) for f in range(3)]
            areas = [int(g.sum()) for g in green]
            edges = [g[0].any() or g[-1].any() or g[:, 0].any() or g[:, -1].any() for g in green]
            if min(areas) == 0 or any(edges) or max(areas) - min(areas) > 0.05 * max(areas):
                continue  # partly cropped: centroids are not comparable
            centres = [np.argwhere(g).mean(axis=0) for g in green]
            reference, previous, _ = (item["frames"] - item["frames"][CURRENT]).tolist()
            velocity = (centres[REFERENCE] - centres[CURRENT]) / reference
            predicted = centres[CURRENT] + velocity * previous
            assert np.abs(predicted - centres[PREVIOUS]).max() < 1.0
            drifts.append(float(np.abs(centres[REFERENCE] - centres[CURRENT]).max()))
            checked += 1
    assert checked >= 10 and max(drifts) > 5.0


def test_items_are_deterministic_per_seed_epoch_and_index(composite_folder: DavisFolder) -> None:
    def item(seed: int, epoch: int, index: int) -> dict[str, Any]:
        dataset = TripletDataset(composite_folder, crop_size=(48, 48), seed=seed)
        dataset.set_epoch(epoch)
        return dataset[index]

    first, again = item(7, 0, 3), item(7, 0, 3)
    for key in ("images", "masks", "previous_mask", "frames"):
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first["images"], item(7, 1, 3)["images"])
    assert not torch.equal(first["images"], item(8, 0, 3)["images"])


def test_previous_mask_is_damaged_but_overlaps_the_truth(triangle_folder: DavisFolder) -> None:
    dataset = TripletDataset(triangle_folder, crop_size=(64, 64), composite_probability=0.0, seed=6)
    for index in range(len(dataset)):
        item = dataset[index]
        truth, damaged = item["masks"][PREVIOUS] > 0, item["previous_mask"] > 0
        if int(truth.sum()) < 50:
            continue
        assert not torch.equal(item["masks"][PREVIOUS], item["previous_mask"])
        assert float((truth & damaged).sum() / (truth | damaged).sum()) > 0.3


def test_perturb_mask_changes_every_mask_and_keeps_ids_in_range() -> None:
    ids = np.zeros((96, 96), np.uint8)
    cv2.circle(ids, (40, 48), 22, 1, -1)
    cv2.rectangle(ids, (66, 10), (90, 40), 2, -1)
    swapped = 0
    for seed in range(100):
        out = perturb_mask(ids, 2, np.random.default_rng(seed))
        assert not np.array_equal(out, ids) and int(out.max()) <= 2
        foreground = (out > 0) & (ids > 0)
        assert foreground.sum() / ((out > 0) | (ids > 0)).sum() > 0.4
        swapped += int(((ids == 2) & (out == 1)).sum() > 20)
    assert 0 < swapped < 30  # wrong-object swaps happen, but rarely


def test_frame_dataset_contract_and_alignment(composite_folder: DavisFolder) -> None:
    dataset = FrameDataset(composite_folder, crop_size=(48, 64), composite_probability=1.0, seed=9,
                           max_objects=2, augment=NO_JITTER)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["image"].shape == (3, 48, 64) and item["mask"].shape == (48, 64)
        assert item["mask"].dtype == torch.int64 and int(item["mask"].max()) <= item["num_objects"]
        assert isinstance(item["sequence"], str) and isinstance(item["frame"], int)
        image, mask = item["image"].numpy(), item["mask"].numpy()
        if item["sequence"] == "host":
            green = colour_is(image, GREEN)
            if green.any():
                assert np.array_equal(green, mask == int(mask[green][0]))


def naive_color_jitter(images: np.ndarray, brightness: float, contrast: float,
                       saturation: float) -> np.ndarray:
    """Step-by-step reference: scale, blend with the frame's mean grey, blend with pixel grey."""
    weights = np.array([0.299, 0.587, 0.114])
    out = images.astype(np.float64) * brightness / 255.0
    mean = (out @ weights).mean(axis=(1, 2), keepdims=True)[..., None]
    out = mean + contrast * (out - mean)
    grey = (out @ weights)[..., None]
    return np.asarray(np.clip(grey + saturation * (out - grey), 0.0, 1.0))


def test_color_jitter_matches_naive_reference_and_is_shared_by_frames() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(20, 30, 3)).astype(np.float32)
    images = np.stack([frame, frame, rng.integers(0, 256, size=(20, 30, 3)).astype(np.float32)])
    config = AugmentConfig(brightness=0.3, contrast=0.4, saturation=0.5)
    out = color_jitter(images, np.random.default_rng(1), config)
    draws = np.random.default_rng(1)
    factors = [draws.uniform(1 - a, 1 + a) for a in (0.3, 0.4, 0.5)]
    assert np.allclose(out, naive_color_jitter(images, *factors), atol=1e-5)
    assert np.array_equal(out[0], out[1]) and not np.allclose(out[0], frame / 255.0, atol=0.02)


def test_collate_stacks_items() -> None:
    items = [{"images": torch.zeros(3, 3, 8, 8), "num_objects": n, "sequence": "s"} for n in (1, 3)]
    batch = collate(items)
    assert batch["images"].shape == (2, 3, 3, 8, 8)
    assert batch["num_objects"].dtype == torch.int64 and batch["num_objects"].tolist() == [1, 3]
    assert batch["sequence"] == ["s", "s"]


def test_sample_triplet_times_respects_ends_and_gap() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        current = int(rng.integers(10))
        reference, previous, now = sample_triplet_times(10, current, rng, max_gap=2)
        assert now == current and abs(previous - current) == 1 and 0 <= previous < 10
        assert reference != current and abs(reference - current) <= 2


def test_donor_frames_keep_offsets_or_squeeze_them() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        frames = donor_frames([-6, -1, 0], 20, rng)
        assert [f - frames[2] for f in frames] == [-6, -1, 0] and 0 <= min(frames)
        short = donor_frames([9, 1, 0], 4, rng)
        assert 0 <= min(short) and max(short) <= 3 and short[0] > short[2]


def test_choose_crop_origin_contains_box_when_it_fits() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        width, height = rng.uniform(50, 300, size=2)
        x0, y0 = rng.uniform(-20, width - 10), rng.uniform(-20, height - 10)  # may overhang
        box = (x0, y0, rng.uniform(x0 + 1, width + 20), rng.uniform(y0 + 1, height + 20))
        ox, oy = choose_crop_origin((width, height), (64, 64), box, rng)
        for lo, hi, origin, length in ((box[0], box[2], ox, width), (box[1], box[3], oy, height)):
            assert min(0.0, length - 64) - 1e-9 <= origin <= max(0.0, length - 64) + 1e-9
            lo, hi = max(lo, 0.0), min(hi, length)  # the part of the box inside the frame
            if hi <= lo:
                continue  # nothing of the box in the frame: any crop will do
            if hi - lo <= 64:
                assert origin <= lo + 1e-9 and hi <= origin + 64 + 1e-9
            else:
                assert lo <= origin + 1e-9 and origin + 64 <= hi + 1e-9


@requires_davis_sequences("bear", "soccerball")
def test_smoke_on_shared_davis() -> None:
    folder = DavisFolder(SHARED_DAVIS, ["bear", "soccerball"])
    dataset = TripletDataset(folder, seed=0)
    start = time.perf_counter()
    batch = collate([dataset[i] for i in (0, 40, 100)])
    assert batch["images"].shape == (3, 3, 3, 256, 256)
    assert (batch["num_objects"] >= 1).all()
    assert time.perf_counter() - start < 10.0  # decoding included; a hang, not a benchmark


def test_sample_rollout_times_step_away_from_the_interactive_frame() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        start = int(rng.integers(20))
        times = sample_rollout_times(20, start, 6, 3, rng)
        steps = {b - a for a, b in zip(times, times[1:])}
        assert times[0] == start and len(times) == 6 and all(0 <= t < 20 for t in times)
        assert len(steps) == 1 and 1 <= abs(steps.pop()) <= 3, times
    assert sample_rollout_times(3, 1, 5, 2, np.random.default_rng(1))[-1] in (0, 2), "short: the end repeats"


def test_clip_item_contract(triangle_folder: DavisFolder) -> None:
    dataset = ClipDataset(triangle_folder, crop_size=(64, 96), frames=4, max_step=2, seed=1)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["images"].shape == (4, 3, 64, 96) and item["images"].dtype == torch.float32
        assert item["masks"].shape == (4, 64, 96) and item["masks"].dtype == torch.int64
        assert item["frames"][0] == index and item["num_objects"] == 1
        assert (item["masks"][0] == 1).any(), "the interactive frame shows the object"
    with pytest.raises(ValueError, match="at least 2 frames"):
        ClipDataset(triangle_folder, frames=1)
