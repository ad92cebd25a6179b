"""VideoSource: files decoded lazily and exactly, folders, arrays, errors, cache budget."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from davis_data import davis_240p_root, requires_davis_sequences
from PIL import Image

from manet.errors import FrameIndexError, VideoError
from manet.io import _sources
from manet.io.video import VideoSource, natural_sort_key, resize_frame

DAVIS_SEQUENCE = davis_240p_root() / "JPEGImages" / "horsejump-low"
T, H, W = 60, 48, 64


def _synthetic_frames(num_frames: int = T, seed: int = 0) -> np.ndarray:
    """Distinct RGB frames: smooth noise moving sideways plus a bright square per frame."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (H // 4, W // 2, 3), dtype=np.uint8), (2 * W, H))
    frames = np.empty((num_frames, H, W, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t] = base[:, t % W: t % W + W]
        y, x = (3 * t) % (H - 8), (5 * t) % (W - 8)
        frames[t, y:y + 8, x:x + 8] = 255
    return frames


def _write_mp4(path: Path, frames: np.ndarray, fps: float = 24.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (frames.shape[2], frames.shape[1]))
    assert writer.isOpened(), "this OpenCV build cannot write mp4v"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _decode_all(path: Path) -> np.ndarray:
    """Reference: plain sequential decode with OpenCV."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = _write_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", _synthetic_frames())
    return path, _decode_all(path)


def test_file_video_counts_frames_and_reads_metadata(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    video = VideoSource.open(path)
    assert (video.num_frames, video.height, video.width) == (T, H, W) == reference.shape[:3]
    assert len(video) == T
    assert video.fps == pytest.approx(24.0)
    assert video.name == "clip"
    assert str(path) in video.source_description


def test_random_access_equals_sequential_decode(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    video = VideoSource.open(path, cache_mb=0)
    order = np.random.default_rng(1).permutation(T).tolist() + [0, T - 1, 5, 4, 3, 40, 41]
    for t in order:
        np.testing.assert_array_equal(video.frame(t), reference[t], err_msg=f"frame {t}")
    assert video.stats().seeks > 0


def test_sequential_reads_never_seek(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    video = VideoSource.open(path, cache_mb=0)
    video.frame(30)
    seeks = video.stats().seeks
    for t in range(31, T):
        np.testing.assert_array_equal(video.frame(t), reference[t])
    video.frame(T - 1)  # the same frame again with the cache off: one seek back
    assert video.stats().seeks == seeks + 1
    np.testing.assert_array_equal(np.stack(list(VideoSource.open(path))), reference)


def test_short_forward_jumps_read_through_without_seeking(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    video = VideoSource.open(path, cache_mb=0)
    for t in range(0, T, 7):
        np.testing.assert_array_equal(video.frame(t), reference[t])
    assert video.stats().seeks == 0


def test_backward_reading_decodes_in_chunks(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    video = VideoSource.open(path, cache_mb=50)
    for t in range(T - 1, -1, -1):
        np.testing.assert_array_equal(video.frame(t), reference[t])
    stats = video.stats()
    assert stats.seeks <= T // _sources.BACKWARD_CHUNK + 3
    assert stats.decoded <= T + 2


def test_unreliable_seek_falls_back_to_reading_from_start(mp4: tuple[Path, np.ndarray],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path, reference = mp4
    calls: list[int] = []
    original_seek = _sources._Capture.seek

    def seek_three_early(self: _sources._Capture, t: int) -> None:
        calls.append(t)
        original_seek(self, max(0, t - 3))

    monkeypatch.setattr(_sources._Capture, "seek", seek_three_early)
    video = VideoSource.open(path, cache_mb=0)
    for t in [40, 10, 50, 20, 21, 5]:
        np.testing.assert_array_equal(video.frame(t), reference[t], err_msg=f"frame {t}")
    assert len(calls) == 1  # the failed verification disabled seeking for good


def test_unusable_timestamps_mean_reading_without_seeks(mp4: tuple[Path, np.ndarray],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path, reference = mp4
    monkeypatch.setattr(_sources._Capture, "timestamp_ms", lambda self: 0.0)

    def never(self: _sources._Capture, t: int) -> None:
        raise AssertionError("seek used although timestamps cannot verify it")

    monkeypatch.setattr(_sources._Capture, "seek", never)
    video = VideoSource.open(path, cache_mb=0)
    for t in [33, 2, 59, 58, 0]:
        np.testing.assert_array_equal(video.frame(t), reference[t], err_msg=f"frame {t}")


def test_avi_mjpg_random_access(tmp_path: Path) -> None:
    frames = _synthetic_frames(20)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (W, H))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    reference = _decode_all(path)
    video = VideoSource.open(path, cache_mb=0)
    assert video.num_frames == 20
    for t in [19, 3, 11, 0, 12]:
        np.testing.assert_array_equal(video.frame(t), reference[t])


def test_lru_cache_respects_budget(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    frame_bytes = H * W * 3
    video = VideoSource.open(path, cache_mb=3.5 * frame_bytes / 2**20)
    for t in range(T):
        video.frame(t)
        assert video.stats().cached_bytes <= video.stats().cache_budget_bytes
    stats = video.stats()
    assert stats.cached_frames == 3 and stats.cached_bytes == 3 * frame_bytes
    for t in (T - 3, T - 2, T - 1):
        np.testing.assert_array_equal(video.frame(t), reference[t])
    assert video.stats().cache_hits == stats.cache_hits + 3
    assert video.stats().decoded == stats.decoded


def test_frames_are_read_only_and_frames_returns_copies(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    video = VideoSource.open(path)
    assert not video.frame(3).flags.writeable
    batch = video.frames([9, 2, 9, 0])
    assert batch.shape == (4, H, W, 3) and batch.flags.writeable
    np.testing.assert_array_equal(batch, reference[[9, 2, 9, 0]])


def test_concurrent_reads_from_two_threads_are_exact(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    video = VideoSource.open(path, cache_mb=0)
    failures: list[int] = []

    def read(order: list[int]) -> None:
        failures.extend(t for t in order if not np.array_equal(video.frame(t), reference[t]))

    orders = [np.random.default_rng(seed).integers(0, T, 25).tolist() for seed in (2, 3)]
    threads = [threading.Thread(target=read, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_fingerprint_depends_on_pixels_not_on_source_kind(mp4: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, reference = mp4
    fingerprint = VideoSource.open(path).fingerprint()
    assert fingerprint == VideoSource.open(path, cache_mb=0).fingerprint()
    assert fingerprint.startswith(f"{T}x{H}x{W}-")
    assert VideoSource.open(reference).fingerprint() == fingerprint
    changed = reference.copy()
    changed[T // 2, 0, 0, 0] ^= 1
    assert VideoSource.open(changed).fingerprint() != fingerprint


def test_close_then_read_again(mp4: tuple[Path, np.ndarray]) -> None:
    path, reference = mp4
    with VideoSource.open(path) as video:
        video.frame(10)
    assert video.stats().cached_frames == 0
    np.testing.assert_array_equal(video.frame(11), reference[11])


def test_frame_index_errors(mp4: tuple[Path, np.ndarray]) -> None:
    video = VideoSource.open(mp4[0])
    for bad in (-1, T):
        with pytest.raises(FrameIndexError, match=f"0..{T - 1}"):
            video.frame(bad)
    with pytest.raises(FrameIndexError):
        video.frame(1.5)  # type: ignore[arg-type]
    assert video.frame(np.int64(2)).shape == (H, W, 3)


def test_corrupt_missing_and_empty_files(tmp_path: Path) -> None:
    garbage = tmp_path / "x.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="cannot read video"):
        VideoSource.open(garbage)
    with pytest.raises(VideoError, match="no such file"):
        VideoSource.open(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    cv2.VideoWriter(str(empty), cv2.VideoWriter.fourcc(*"mp4v"), 10, (W, H)).release()
    with pytest.raises(VideoError):
        VideoSource.open(empty)
    with pytest.raises(VideoError, match="np.stack"):
        VideoSource.open([np.zeros((H, W, 3), np.uint8)])  # type: ignore[arg-type]


def test_array_rgb_is_a_view_and_not_copied() -> None:
    frames = _synthetic_frames(5)
    video = VideoSource.open(frames)
    assert video.fps is None and (video.num_frames, video.height, video.width) == (5, H, W)
    assert np.shares_memory(video.frame(2), frames)
    assert not video.frame(2).flags.writeable and frames.flags.writeable
    assert VideoSource.open(video) is video


@pytest.mark.parametrize("shape", [(4, H, W), (4, H, W, 1)])
def test_grayscale_array_becomes_rgb(shape: tuple[int, ...]) -> None:
    gray = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    frame = VideoSource.open(gray).frame(3)
    assert frame.shape == (H, W, 3)
    for channel in range(3):
        np.testing.assert_array_equal(frame[:, :, channel], gray[3].reshape(H, W))


def test_rgba_array_drops_alpha() -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (2, H, W, 4), dtype=np.uint8)
    np.testing.assert_array_equal(VideoSource.open(rgba).frame(1), rgba[1, :, :, :3])


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros((2, H, W, 3), np.float32), r"\(frames \* 255\).round\(\).astype\(np.uint8\)"),
    (np.zeros((2, H, W, 3), np.uint16), "np.clip"),
    (np.zeros((2, H, W, 3), bool), "mask"),
    (np.zeros((H, W, 3), np.uint8), r"frames\[None\]"),
    (np.zeros((2, H, W, 2), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((2, 2, H, W, 3), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((0, H, W, 3), np.uint8), "at least one frame"),
])
def test_bad_arrays_are_rejected_with_advice(array: np.ndarray, message: str) -> None:
    with pytest.raises(VideoError, match=message):
        VideoSource.open(array)


def _save_images(folder: Path, frames: np.ndarray, names: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    for frame, name in zip(frames, names):
        Image.fromarray(frame).save(folder / name)


def test_folder_natural_order_png_exact(tmp_path: Path) -> None:
    frames = _synthetic_frames(12)
    names = [f"frame{t}.png" for t in range(12)]
    _save_images(tmp_path / "clip", frames, names)
    (tmp_path / "clip" / "notes.txt").write_text("not a frame")
    (tmp_path / "clip" / "._frame3.png").write_bytes(b"resource fork")
    video = VideoSource.open(tmp_path / "clip")
    assert video.num_frames == 12 and video.fps is None and video.name == "clip"
    np.testing.assert_array_equal(video.frames(range(12)), frames)


def test_folder_grayscale_and_alpha_images(tmp_path: Path) -> None:
    frames = _synthetic_frames(3)
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(frames[0]).save(folder / "00000.png")
    Image.fromarray(frames[1, :, :, 0]).save(folder / "00001.png")
    Image.fromarray(np.dstack([frames[2], np.full((H, W), 7, np.uint8)])).save(folder / "00002.png")
    video = VideoSource.open(folder)
    np.testing.assert_array_equal(video.frame(1), np.repeat(frames[1, :, :, :1], 3, axis=2))
    np.testing.assert_array_equal(video.frame(2), frames[2])


def test_folder_of_varying_sizes_names_the_culprit(tmp_path: Path) -> None:
    folder = tmp_path / "sizes"
    folder.mkdir()
    for t in range(20):
        width = 320 if t == 17 else 427
        Image.fromarray(np.zeros((240, width, 3), np.uint8)).save(folder / f"{t:05d}.jpg")
    with pytest.raises(VideoError, match=r"frame 17 \(00017.jpg\) is 320x240 but frame 0 \(00000.jpg\) is "
                                         r"427x240: resize them to one size"):
        VideoSource.open(folder)


def test_folder_without_images_and_corrupt_image(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="holds no jpg/jpeg/png/bmp images"):
        VideoSource.open(tmp_path / "empty")
    (tmp_path / "nested" / "480p").mkdir(parents=True)
    with pytest.raises(VideoError, match="480p"):
        VideoSource.open(tmp_path / "nested")
    bad = tmp_path / "bad"
    _save_images(bad, _synthetic_frames(2), ["a.png", "b.png"])
    (bad / "c.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoError, match="c.jpg"):
        VideoSource.open(bad)


def test_single_image_file_is_a_one_frame_video(tmp_path: Path) -> None:
    frame = _synthetic_frames(1)
    Image.fromarray(frame[0]).save(tmp_path / "one.png")
    video = VideoSource.open(tmp_path / "one.png")
    assert video.num_frames == 1
    np.testing.assert_array_equal(video.frame(0), frame[0])


@requires_davis_sequences("horsejump-low")
def test_davis_jpeg_folder() -> None:
    video = VideoSource.open(DAVIS_SEQUENCE)
    assert (video.num_frames, video.height, video.width) == (60, 240, 427)
    image = cv2.imread(str(DAVIS_SEQUENCE / "00042.jpg"))
    assert image is not None
    expected = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(video.frame(42), expected)


def test_natural_sort_key() -> None:
    names = ["img10.png", "img2.png", "IMG1.png", "img2b.png"]
    assert sorted(names, key=natural_sort_key) == ["IMG1.png", "img2.png", "img2b.png", "img10.png"]


def test_resize_frame_uses_area_down_and_linear_up() -> None:
    frame = _synthetic_frames(1)[0]
    down = resize_frame(frame, (H // 2, W // 4))
    np.testing.assert_array_equal(down, cv2.resize(frame, (W // 4, H // 2), interpolation=cv2.INTER_AREA))
    up = resize_frame(frame, (H * 2, W + 3))
    np.testing.assert_array_equal(up, cv2.resize(frame, (W + 3, H * 2), interpolation=cv2.INTER_LINEAR))
    assert resize_frame(frame[:, :, :1], (10, 12)).shape == (10, 12, 1)
    same = resize_frame(frame, (H, W))
    np.testing.assert_array_equal(same, frame)
    assert not np.shares_memory(same, frame)
    with pytest.raises(VideoError):
        resize_frame(frame, (0, 5))
