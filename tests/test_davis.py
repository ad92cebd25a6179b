"""The one DAVIS reader: split files, discovery, pairing, mask rules and scribble files.

Masks are written into tmp_path in the three forms DAVIS releases use: palette PNGs with
several objects (DAVIS 2017), greyscale 0/255 PNGs (DAVIS 2016) and greyscale ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from manet.errors import VideoError
from manet.eval.dataset import load_sequence
from manet.io.davis import (
    find_sequences,
    find_split,
    index_sequence,
    list_sequences,
    read_frame,
    read_mask,
    read_scribbles,
    read_split,
)
from manet.io.export import davis_palette
from manet.io.masks import load_mask_image, load_png_masks
from manet.train.data import DavisFolder

HEIGHT, WIDTH = 12, 16


def two_objects(t: int) -> np.ndarray:
    """Ids 1 and 3 (a gap in the numbering, as DAVIS 2017 masks have after a crop)."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[2:6, 1 + t:5 + t] = 1
    mask[7:11, 9:14] = 3
    return mask


def write_frames(root: Path, name: str, count: int, suffix: str = ".png") -> list[np.ndarray]:
    folder = root / "JPEGImages" / name
    folder.mkdir(parents=True)
    frames = []
    for t in range(count):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[..., 0], frame[..., 1] = 10 * t, 200  # RGB: red encodes the frame index
        cv2.imwrite(str(folder / f"{t:05d}{suffix}"), frame[:, :, ::-1])
        frames.append(frame)
    return frames


def write_masks(root: Path, name: str, masks: list[np.ndarray], form: str) -> None:
    folder = root / "Annotations" / name
    folder.mkdir(parents=True)
    for t, mask in enumerate(masks):
        if form == "palette":
            image = Image.fromarray(mask, mode="L")
            image.putpalette(davis_palette().ravel().tolist())
        elif form == "binary255":
            image = Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8))
        elif form == "grey":
            image = Image.fromarray(mask)
        else:
            raise AssertionError(form)
        image.save(folder / f"{t:05d}.png")


@pytest.fixture
def davis_root(tmp_path: Path) -> Path:
    """``multi`` (palette, ids 1 and 3), ``binary`` (greyscale 0/255), ``grey`` (greyscale ids 2 and 5)."""
    write_frames(tmp_path, "multi", 3)
    write_masks(tmp_path, "multi", [two_objects(t) for t in range(3)], "palette")
    write_frames(tmp_path, "binary", 2, suffix=".jpg")
    write_masks(tmp_path, "binary", [two_objects(t) for t in range(2)], "binary255")
    write_frames(tmp_path, "grey", 2)
    write_masks(tmp_path, "grey", [np.where(two_objects(t) == 3, 5, two_objects(t) * 2) for t in range(2)], "grey")
    return tmp_path


def test_palette_masks_keep_every_object_id(davis_root: Path) -> None:
    mask = read_mask(davis_root / "Annotations" / "multi" / "00001.png")
    np.testing.assert_array_equal(mask, two_objects(1))
    assert Image.open(davis_root / "Annotations" / "multi" / "00001.png").mode == "P"


def test_binary_255_masks_read_as_object_one(davis_root: Path) -> None:
    mask = read_mask(davis_root / "Annotations" / "binary" / "00000.png")
    np.testing.assert_array_equal(mask, (two_objects(0) > 0).astype(np.uint8))


def test_greyscale_ids_are_kept(davis_root: Path, tmp_path: Path) -> None:
    np.testing.assert_array_equal(np.unique(read_mask(davis_root / "Annotations" / "grey" / "00000.png")), [0, 2, 5])
    # A one-bit image is binary too; an all-background mask stays 0.
    Image.fromarray(two_objects(0) > 0).convert("1").save(tmp_path / "bits.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "bits.png"), (two_objects(0) > 0).astype(np.uint8))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "empty.png")
    assert not read_mask(tmp_path / "empty.png").any()


def test_rgb_masks_map_back_through_the_davis_palette(tmp_path: Path) -> None:
    Image.fromarray(davis_palette()[two_objects(0)]).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png"), two_objects(0))
    colours = davis_palette()[two_objects(0)]
    colours[0, 0] = (1, 2, 3)
    Image.fromarray(colours).save(tmp_path / "foreign.png")
    with pytest.raises(VideoError, match=r"\(1, 2, 3\) outside the DAVIS palette"):
        read_mask(tmp_path / "foreign.png")


@pytest.mark.parametrize("name", ["multi", "binary", "grey"])
def test_evaluation_training_and_mask_import_read_the_same_ids(davis_root: Path, name: str) -> None:
    (sequence,) = find_sequences(davis_root, [name])
    evaluated = load_sequence(sequence).gt
    folder = DavisFolder(davis_root, [name])
    trained = np.stack([folder.mask(name, t) for t in range(folder.num_frames(name))])
    imported = load_png_masks(davis_root / "Annotations" / name)
    np.testing.assert_array_equal(evaluated, trained)
    np.testing.assert_array_equal(evaluated, imported)
    np.testing.assert_array_equal(imported[0], load_mask_image(sequence.annotations[0]))
    assert evaluated.max() > 1 if name != "binary" else set(np.unique(evaluated)) == {0, 1}


def test_multi_object_sequence_for_evaluation_and_training(davis_root: Path) -> None:
    loaded = load_sequence(find_sequences(davis_root, ["multi"])[0])
    assert loaded.object_ids == (1, 3) and loaded.frames.shape == (3, HEIGHT, WIDTH, 3)
    assert loaded.frames[2, 0, 0].tolist() == [20, 200, 0], "frames are RGB, in order"
    folder = DavisFolder(davis_root, ["multi"])
    np.testing.assert_array_equal(folder.frame("multi", 2), loaded.frames[2])


def test_split_files_skip_comments_and_blank_lines(tmp_path: Path) -> None:
    split = tmp_path / "split.txt"
    split.write_text("# the dev split\nbear\n\n  car-turn  # trailing comment\nbear\n")
    assert read_split(split) == ["bear", "car-turn"]
    image_set = tmp_path / "480p.txt"
    image_set.write_text("/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png\n"
                         "/JPEGImages/480p/bear/00001.jpg /Annotations/480p/bear/00001.png\n"
                         "/JPEGImages/480p/boat/00000.jpg /Annotations/480p/boat/00000.png\n")
    assert read_split(image_set) == ["bear", "boat"], "DAVIS 2016 image-set lines name their sequence"
    with pytest.raises(VideoError, match="one sequence name a line"):
        read_split(tmp_path / "absent.txt")


def test_splits_are_found_by_path_or_by_image_set_name(davis_root: Path) -> None:
    (davis_root / "ImageSets" / "2017").mkdir(parents=True)
    (davis_root / "ImageSets" / "2017" / "val.txt").write_text("grey\nmulti\n")
    assert find_split(davis_root, "val") == davis_root / "ImageSets" / "2017" / "val.txt"
    assert [s.name for s in find_sequences(davis_root, "val")] == ["grey", "multi"]
    assert DavisFolder(davis_root, davis_root / "ImageSets" / "2017" / "val.txt").sequences == ["grey", "multi"]
    with pytest.raises(VideoError, match=r"found \['val'\]"):
        find_split(davis_root, "test")
    (davis_root / "ImageSets" / "2016").mkdir()
    (davis_root / "ImageSets" / "2016" / "val.txt").write_text("binary\n")
    with pytest.raises(VideoError, match="several split files"):
        find_split(davis_root, "val")


def test_discovery_needs_both_folders_and_names_every_missing_sequence(davis_root: Path) -> None:
    (davis_root / "JPEGImages" / "frames-only").mkdir()
    assert list_sequences(davis_root) == ["binary", "grey", "multi"]
    with pytest.raises(VideoError, match=r"\['nope', 'frames-only'\]"):
        find_sequences(davis_root, ["multi", "nope", "frames-only"])
    with pytest.raises(VideoError, match="not a DAVIS-layout folder"):
        list_sequences(davis_root / "JPEGImages")


def test_frames_pair_with_annotations_by_stem_in_natural_order(tmp_path: Path) -> None:
    write_frames(tmp_path, "long", 11)
    write_masks(tmp_path, "long", [two_objects(t % 3) for t in range(11)], "palette")
    for t in (2, 10):  # names without zero padding sort as numbers
        (tmp_path / "JPEGImages" / "long" / f"{t:05d}.png").rename(tmp_path / "JPEGImages" / "long" / f"f{t}.png")
        (tmp_path / "Annotations" / "long" / f"{t:05d}.png").rename(tmp_path / "Annotations" / "long" / f"f{t}.png")
    scribbles = tmp_path / "Scribbles" / "long"
    scribbles.mkdir(parents=True)
    for name in ("010.json", "002.json", "001.json"):
        (scribbles / name).write_text("{}")
    sequence = index_sequence(tmp_path, "long")
    assert [p.name for p in sequence.frames[-2:]] == ["f2.png", "f10.png"]
    assert [p.stem for p in sequence.frames] == [p.stem for p in sequence.annotations]
    assert [p.name for p in sequence.scribbles] == ["001.json", "002.json", "010.json"]
    assert sequence.first_scribble == scribbles / "001.json"
    (tmp_path / "Annotations" / "long" / "00003.png").unlink()
    with pytest.raises(VideoError, match=r"annotations missing for 1 of 11 frames \(00003.png\)"):
        index_sequence(tmp_path, "long")


def test_scribble_files_are_read_and_cut_to_the_kept_frames(tmp_path: Path) -> None:
    strokes = [{"path": [[0.25, 0.5], [0.5, 0.5]], "object_id": 3}]
    path = tmp_path / "001.json"
    path.write_text(json.dumps({"scribbles": [[], [], strokes, []], "sequence": "multi", "annotated_frame": 2}))
    annotation = read_scribbles(path, 4, HEIGHT, WIDTH)
    assert annotation is not None and annotation.frame == 2 and annotation.object_ids == [3]
    np.testing.assert_allclose(annotation.scribbles[0].points[0], [0.25 * WIDTH, 0.5 * HEIGHT])
    assert read_scribbles(path, 3, HEIGHT, WIDTH) is not None
    assert read_scribbles(path, 2, HEIGHT, WIDTH) is None, "the scribbled frame was cut off"
    with pytest.raises(VideoError, match="belongs to another video"):
        read_scribbles(path, 5, HEIGHT, WIDTH)
    path.write_text("{not json")
    with pytest.raises(VideoError, match="001.json"):
        read_scribbles(path, 4, HEIGHT, WIDTH)


def test_read_frame_gives_rgb_and_a_clear_error(tmp_path: Path) -> None:
    frames = write_frames(tmp_path, "s", 1)
    np.testing.assert_array_equal(read_frame(tmp_path / "JPEGImages" / "s" / "00000.png"), frames[0])
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    with pytest.raises(VideoError, match="broken.jpg"):
        read_frame(tmp_path / "broken.jpg")
