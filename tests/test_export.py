"""Mask export and import: exact round trips, pycocotools compatibility, atomic writes.

pycocotools is optional (the ``export`` extra): only the tests that compare with it skip without it; the
own RLE codec that replaces it then is tested either way."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from manet.errors import VideoError
from manet.io import export, rle
from manet.io.export import (
    atomic_path,
    davis_palette,
    export_coco,
    export_npz,
    export_overlay_video,
    export_png_folder,
    overlay_frame,
)
from manet.io.masks import (
    load_coco,
    load_mask_image,
    load_npz_masks,
    load_npz_names,
    load_png_masks,
)
from manet.io.video import VideoSource

try:
    from pycocotools import mask as coco_mask
except ImportError:
    coco_mask = None
needs_pycocotools = pytest.mark.skipif(coco_mask is None,
                                       reason="pycocotools is not installed: pip install 'manet-jupyter[export]'")
T, H, W = 6, 40, 56


def _masks(seed: int = 0, num_objects: int = 3) -> np.ndarray:
    """Blobby id masks: rectangles and discs per object, moving over time; frame 2 is empty."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((T, H, W), dtype=np.uint8)
    yy, xx = np.mgrid[:H, :W]
    for object_id in range(1, num_objects + 1):
        cy, cx, radius = rng.integers(8, H - 8), rng.integers(8, W - 8), rng.integers(3, 9)
        for t in range(T):
            masks[t][(yy - cy - t) ** 2 + (xx - cx + t) ** 2 <= radius**2] = object_id
    masks[2] = 0
    masks[0, :, 0] = 1  # first pixel set: the RLE starts with an empty run
    return masks


def _leftovers(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.name.startswith("."))


def test_davis_palette_values() -> None:
    palette = davis_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    expected = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128),
                (0, 128, 128), (128, 128, 128), (64, 0, 0), (192, 0, 0)]
    assert [tuple(int(v) for v in row) for row in palette[:10]] == expected
    assert len({tuple(row) for row in palette.tolist()}) == 256


def test_png_folder_round_trip(tmp_path: Path) -> None:
    masks = _masks()
    done: list[tuple[int, int]] = []
    folder = export_png_folder(masks, tmp_path / "out", progress=lambda d, n: done.append((d, n)))
    assert sorted(p.name for p in folder.iterdir()) == [f"{t:05d}.png" for t in range(T)]
    with Image.open(folder / "00001.png") as image:
        assert image.mode == "P"
        palette = image.getpalette()
        assert palette is not None
        assert np.array_equal(np.array(palette[:30]).reshape(10, 3), davis_palette()[:10])
    np.testing.assert_array_equal(load_png_masks(folder), masks)
    np.testing.assert_array_equal(load_png_masks(sorted(folder.iterdir())), masks)
    assert done[-1] == (T, T)
    assert _leftovers(tmp_path) == []


def test_png_folder_custom_palette_and_replacing_an_export(tmp_path: Path) -> None:
    export_png_folder(_masks(1), tmp_path / "out")
    masks = _masks(2)[:3]
    export_png_folder(masks, tmp_path / "out", palette=np.array([[0, 0, 0], [255, 0, 0]], np.uint8))
    assert len(list((tmp_path / "out").iterdir())) == 3
    with Image.open(tmp_path / "out" / "00000.png") as image:
        assert (image.getpalette() or [])[:6] == [0, 0, 0, 255, 0, 0]
    np.testing.assert_array_equal(load_png_masks(tmp_path / "out"), masks)
    assert _leftovers(tmp_path) == []


def test_png_folder_refuses_to_replace_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="thesis.tex"):
        export_png_folder(_masks(), tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_interrupted_png_export_keeps_old_folder(tmp_path: Path) -> None:
    old = _masks(3)
    export_png_folder(old, tmp_path / "out")

    def stop_at_frame_3(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_png_folder(_masks(4), tmp_path / "out", progress=stop_at_frame_3)
    np.testing.assert_array_equal(load_png_masks(tmp_path / "out"), old)
    assert _leftovers(tmp_path) == []


@needs_pycocotools
def test_coco_round_trip_decoded_by_pycocotools(tmp_path: Path) -> None:
    masks = _masks()
    path = export_coco(masks, tmp_path / "masks.json", object_names={1: "horse", 7: "rider"}, video_name="clip")
    document = json.loads(path.read_text())
    assert {c["id"]: c["name"] for c in document["categories"]} == {1: "horse", 2: "object 2", 3: "object 3",
                                                                     7: "rider"}
    assert [image["frame_index"] for image in document["images"]] == list(range(T))
    image_frame = {image["id"]: image["frame_index"] for image in document["images"]}
    decoded = np.zeros_like(masks)
    for annotation in document["annotations"]:
        segmentation = annotation["segmentation"]
        binary = coco_mask.decode({"size": segmentation["size"], "counts": segmentation["counts"].encode()})
        frame = image_frame[annotation["image_id"]]
        decoded[frame][binary > 0] = annotation["object_id"]
        np.testing.assert_array_equal(binary, masks[frame] == annotation["object_id"])
        assert annotation["area"] == int(binary.sum())
        pycoco_box = coco_mask.toBbox({"size": segmentation["size"], "counts": segmentation["counts"].encode()})
        np.testing.assert_allclose(annotation["bbox"], pycoco_box)
    np.testing.assert_array_equal(decoded, masks)
    np.testing.assert_array_equal(load_coco(path), masks)
    assert not any(a["image_id"] == 3 for a in document["annotations"])  # empty frame 2 has no annotations


def test_coco_without_pycocotools_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback codec alone (as on a machine without pycocotools) writes RLE that decodes to the masks."""
    monkeypatch.setattr(rle, "_pycocotools_mask", lambda: None)
    masks = _masks(3)
    document = json.loads(export_coco(masks, tmp_path / "m.json").read_text())
    image_frame = {image["id"]: image["frame_index"] for image in document["images"]}
    decoded = np.zeros_like(masks)
    for annotation in document["annotations"]:
        binary = rle.decode_python(annotation["segmentation"])
        assert annotation["area"] == int(binary.sum()) > 0
        decoded[image_frame[annotation["image_id"]]][binary > 0] = annotation["object_id"]
    np.testing.assert_array_equal(decoded, masks)
    np.testing.assert_array_equal(load_coco(tmp_path / "m.json"), masks)


@needs_pycocotools
def test_coco_without_pycocotools_gives_identical_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    masks = _masks(5)
    with_library = export_coco(masks, tmp_path / "a.json").read_text()
    monkeypatch.setattr(rle, "_pycocotools_mask", lambda: None)
    without = export_coco(masks, tmp_path / "b.json").read_text()
    assert without == with_library
    np.testing.assert_array_equal(load_coco(tmp_path / "b.json"), masks)


def _rle_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    cases = [np.zeros((5, 7), bool), np.ones((5, 7), bool), rng.random((1, 1)) > 0.5, rng.random((33, 17)) > 0.5,
             rng.random((64, 80)) > 0.97, np.eye(50, dtype=bool)]
    long_runs = np.zeros((300, 400), bool)
    long_runs[:, 100:350] = True
    long_runs[5:9, 3:5] = True
    cases.append(long_runs)
    for shape in [(13, 29), (120, 90), (2, 3000)]:
        for density in (0.05, 0.5, 0.95):
            cases.append(rng.random(shape) < density)
    return cases


@needs_pycocotools
@pytest.mark.parametrize("case", range(len(_rle_cases())))
def test_own_rle_matches_pycocotools(case: int) -> None:
    mask = _rle_cases()[case]
    ours = rle.encode_python(mask)
    theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours["counts"] == theirs["counts"].decode()
    assert ours["size"] == list(theirs["size"])
    np.testing.assert_array_equal(rle.decode_python(theirs), mask)
    np.testing.assert_array_equal(coco_mask.decode({"size": ours["size"], "counts": ours["counts"].encode()}), mask)
    np.testing.assert_array_equal(rle.decode({"size": ours["size"], "counts": rle.run_lengths(mask)}), mask)


def test_rle_rejects_corrupt_input() -> None:
    with pytest.raises(VideoError, match="cover"):
        rle.decode_python({"size": [4, 4], "counts": [3, 2]})
    with pytest.raises(VideoError, match="truncated"):
        rle.string_to_counts("0`")
    with pytest.raises(VideoError, match="size"):
        rle.decode_python({"counts": "0"})


def test_npz_round_trip_with_names(tmp_path: Path) -> None:
    masks = _masks()
    path = export_npz(masks, tmp_path / "masks.npz", names={2: "dog"})
    np.testing.assert_array_equal(load_npz_masks(path), masks)
    assert load_npz_names(path) == {1: "object 1", 2: "dog", 3: "object 3"}
    with np.load(path, allow_pickle=False) as archive:
        assert archive["masks"].dtype == np.uint8 and archive["object_ids"].tolist() == [1, 2, 3]
    export_npz(masks, tmp_path / "more.npz", object_ids=[1, 2, 3, 9])
    assert sorted(load_npz_names(tmp_path / "more.npz")) == [1, 2, 3, 9]


def _write_then_fail(*args: Any, **kwargs: Any) -> None:
    """Stands in for np.savez_compressed / json.dump: writes a few bytes, then the disk fills up."""
    file = args[0] if hasattr(args[0], "write") else args[1]
    file.write(b"partial" if "b" in file.mode else "partial")
    raise OSError("disk full")


def test_interrupted_npz_and_coco_exports_keep_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export_npz(_masks(1), tmp_path / "m.npz")
    export_coco(_masks(1), tmp_path / "m.json")
    old_npz, old_json = (tmp_path / "m.npz").read_bytes(), (tmp_path / "m.json").read_bytes()
    monkeypatch.setattr(np, "savez_compressed", _write_then_fail)
    monkeypatch.setattr(json, "dump", _write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        export_npz(_masks(2), tmp_path / "m.npz")
    with pytest.raises(OSError, match="disk full"):
        export_coco(_masks(2), tmp_path / "m.json")
    assert (tmp_path / "m.npz").read_bytes() == old_npz
    assert (tmp_path / "m.json").read_bytes() == old_json
    assert _leftovers(tmp_path) == []


def test_atomic_path_failing_rename_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text("old")

    def failing_replace(source: Any, target: Any) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"), atomic_path(tmp_path / "a.txt") as temporary:
        temporary.write_text("new")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_overlay_frame_blends_only_objects() -> None:
    frame = np.full((2, 3, 3), 100, np.uint8)
    mask = np.array([[0, 1, 2], [0, 0, 1]], np.uint8)
    colours = davis_palette()
    out = overlay_frame(frame, mask, colours, opacity=0.25)
    np.testing.assert_array_equal(out[0, 0], frame[0, 0])
    np.testing.assert_array_equal(out[0, 1], np.rint(100 * 0.75 + colours[1] * 0.25))
    np.testing.assert_array_equal(out[0, 2], np.rint(100 * 0.75 + colours[2] * 0.25))


def test_overlay_video_written_and_readable(tmp_path: Path) -> None:
    masks = np.zeros((T, 64, 96), np.uint8)
    masks[:, 16:48, 24:72] = 1
    frames = np.full((T, 64, 96, 3), 90, np.uint8)
    path = export_overlay_video(masks, frames, tmp_path / "overlay.mp4", fps=10, opacity=0.5,
                                colours={1: (250, 10, 10)})
    video = VideoSource.open(path)
    assert (video.num_frames, video.height, video.width) == (T, 64, 96)
    assert video.fps == pytest.approx(10)
    frame = video.frame(3).astype(int)
    assert np.abs(frame[20:44, 28:68] - [170, 50, 50]).mean() < 6
    assert np.abs(frame[:8] - 90).mean() < 6
    assert _leftovers(tmp_path) == []


class _FrameServer:
    """Serves frames like a session does, without being a VideoSource."""

    def __init__(self, frames: np.ndarray) -> None:
        self._frames = frames
        self.num_frames, self.height, self.width = frames.shape[:3]

    def frame(self, t: Any) -> np.ndarray:
        return np.asarray(self._frames[t])


def test_overlay_video_from_an_object_serving_frames(tmp_path: Path) -> None:
    frames = np.full((3, 32, 48, 3), 200, np.uint8)
    masks = np.zeros((3, 32, 48), np.uint8)
    path = export_overlay_video(masks, _FrameServer(frames), tmp_path / "s.mp4")
    video = VideoSource.open(path)
    assert video.num_frames == 3 and video.fps == pytest.approx(export.DEFAULT_FPS)
    assert np.abs(video.frame(1).astype(int) - 200).mean() < 4
    with pytest.raises(VideoError, match="cannot take frames from a dict"):
        export_overlay_video(masks, {"frames": frames}, tmp_path / "t.mp4")  # type: ignore[arg-type]


def test_interrupted_overlay_video_keeps_old_file(tmp_path: Path) -> None:
    masks = _masks()
    frames = np.zeros((T, H, W, 3), np.uint8)
    (tmp_path / "v.mp4").write_bytes(b"old video")

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        export_overlay_video(masks, frames, tmp_path / "v.mp4", progress=stop)
    assert (tmp_path / "v.mp4").read_bytes() == b"old video"
    assert _leftovers(tmp_path) == []
    with pytest.raises(VideoError, match=r"masks are \(6, 40, 56\) but the video is \(5, 40, 56\)"):
        export_overlay_video(masks, frames[:5], tmp_path / "w.mp4")


@pytest.mark.parametrize(("masks", "message"), [
    (np.zeros((2, 4, 4), np.float32), "probabilities"),
    (np.zeros((4, 4), np.uint8), r"masks\[None\]"),
    (np.full((2, 4, 4), 300, np.int32), "0..255"),
    (np.zeros((2, 4, 4, 1), np.uint8), r"\(T, H, W\)"),
])
def test_bad_masks_are_rejected(tmp_path: Path, masks: np.ndarray, message: str) -> None:
    with pytest.raises(VideoError, match=message):
        export_npz(masks, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_bool_and_int_masks_are_accepted(tmp_path: Path) -> None:
    masks = _masks() > 0
    np.testing.assert_array_equal(load_npz_masks(export_npz(masks, tmp_path / "b.npz")), masks.astype(np.uint8))
    ints = _masks().astype(np.int64)
    np.testing.assert_array_equal(load_coco(export_coco(ints, tmp_path / "i.json")), ints)


def test_load_mask_image_modes(tmp_path: Path) -> None:
    ids = _masks()[1]
    Image.fromarray(ids).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(load_mask_image(tmp_path / "gray.png"), ids)
    Image.fromarray(davis_palette()[ids]).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load_mask_image(tmp_path / "rgb.png"), ids)
    colours = davis_palette()[ids]
    colours[0, 0] = (1, 2, 3)
    Image.fromarray(colours).save(tmp_path / "foreign.png")
    with pytest.raises(VideoError, match=r"\(1, 2, 3\)"):
        load_mask_image(tmp_path / "foreign.png")
    (tmp_path / "broken.png").write_bytes(b"nope")
    with pytest.raises(VideoError, match="broken.png"):
        load_mask_image(tmp_path / "broken.png")


def test_load_png_masks_rejects_mixed_sizes(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "00000.png")
    Image.fromarray(np.zeros((10, 13), np.uint8)).save(tmp_path / "00001.png")
    with pytest.raises(VideoError, match=r"mask 1 \(00001.png\) is 13x10 but mask 0 \(00000.png\) is 12x10"):
        load_png_masks(tmp_path)


def test_load_coco_polygons_and_order_by_file_name(tmp_path: Path) -> None:
    document = {
        "images": [{"id": 5, "file_name": "f10.jpg", "height": 20, "width": 20},
                   {"id": 9, "file_name": "f2.jpg", "height": 20, "width": 20}],
        "annotations": [{"id": 1, "image_id": 5, "category_id": 4,
                         "segmentation": [[2, 2, 12, 2, 12, 8, 2, 8]]}],
    }
    (tmp_path / "p.json").write_text(json.dumps(document))
    masks = load_coco(tmp_path / "p.json")
    assert masks.shape == (2, 20, 20)
    assert masks[0].max() == 0 and masks[1].max() == 4
    assert abs(int((masks[1] == 4).sum()) - 10 * 6) <= 20

