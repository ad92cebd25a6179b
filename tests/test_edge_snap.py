"""Edge snapping of masks (``SessionConfig.edge_radius``): edges move onto the frame's, only near
edges, several objects, nothing erased, the session switch and saves from before it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic_video import dimmed_noise_video, mask_round

import manet
from manet.config import SessionConfig
from manet.inference.masks import MaskCache
from manet.inference.refine import EdgeSnapper
from manet.inference.resample import GridResampler
from manet.inference.state import Channels


def split_frame(edge: int, size: tuple[int, int] = (120, 200), seed: int = 0) -> np.ndarray:
    """A textured frame whose colour changes at column ``edge`` (grass left, a red wall right)."""
    rng = np.random.default_rng(seed)
    frame = np.empty((*size, 3), dtype=np.int64)
    frame[:, :edge] = (40, 90, 30)
    frame[:, edge:] = (200, 60, 50)
    frame += rng.integers(-12, 13, frame.shape)
    return frame.clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("offset,share", [(-4, 0.05), (-2, 0.05), (3, 0.05), (4, 0.05), (-6, 0.5), (6, 0.5)])
def test_an_edge_a_few_pixels_off_moves_onto_the_frames_edge(offset: int, share: float) -> None:
    """Up to 4 pixels (a third of the radius) the edge lands on the frame's; at 6 most of it."""
    edge = 97
    frame = split_frame(edge)
    truth = np.zeros(frame.shape[:2], dtype=np.uint8)
    truth[:, edge:] = 1
    shown = np.zeros_like(truth)
    shown[:, edge + offset:] = 1
    snapped = EdgeSnapper(12, 1e-3)(shown, frame, 2)
    assert snapped.dtype == np.uint8
    wrong_before = np.count_nonzero(shown != truth)
    assert wrong_before == abs(offset) * frame.shape[0]
    assert np.count_nonzero(snapped != truth) <= share * wrong_before


def test_pixels_far_from_every_edge_keep_their_channel() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)
    labels = np.zeros((120, 200), dtype=np.uint8)
    labels[40:80, 60:130] = 1
    radius = 6
    snapped = EdgeSnapper(radius, 1e-3)(labels, frame, 2)
    assert not np.array_equal(snapped, labels), "a random frame moves some edge pixels"
    rows, cols = np.nonzero(snapped != labels)
    # every change lies within 2 radii (plus the subsampled fit's rounding) of the square's edge
    inside = (rows >= 40 - 2 * radius - 2) & (rows < 80 + 2 * radius + 2) \
        & (cols >= 60 - 2 * radius - 2) & (cols < 130 + 2 * radius + 2)
    core = (rows >= 40 + 2 * radius + 2) & (rows < 80 - 2 * radius - 2) \
        & (cols >= 60 + 2 * radius + 2) & (cols < 130 - 2 * radius - 2)
    assert inside.all() and not core.any()


def test_a_mask_without_edges_is_returned_as_it_is() -> None:
    frame = split_frame(90)
    for value in (0, 1):
        labels = np.full(frame.shape[:2], value, dtype=np.uint8)
        assert np.array_equal(EdgeSnapper(12, 1e-3)(labels, frame, 2), labels)


def test_the_boundary_between_two_objects_moves_onto_the_frames_edge() -> None:
    edge = 101
    frame = split_frame(edge)
    frame[:20] = (128, 128, 128)         # a grey strip above both objects: background
    labels = np.zeros(frame.shape[:2], dtype=np.uint8)
    labels[20:, :edge - 5] = 1             # object 1 (grass) ends 5 pixels early
    labels[20:, edge - 5:] = 2             # object 2 (the wall) starts 5 pixels early
    snapped = EdgeSnapper(12, 1e-3)(labels, frame, 3)
    assert set(np.unique(snapped)) == {0, 1, 2}
    rows = slice(40, 100)                  # away from the strip's corners
    wrong = np.count_nonzero(snapped[rows, :edge] != 1) + np.count_nonzero(snapped[rows, edge:] != 2)
    assert wrong <= 0.05 * 5 * 60
    assert np.array_equal(snapped[:10], labels[:10]), "the strip stays background"


def test_an_object_the_pass_would_erase_keeps_its_pixels() -> None:
    frame = np.full((80, 120, 3), 100, dtype=np.uint8)      # nothing to follow: windows average
    labels = np.zeros((80, 120), dtype=np.uint8)
    labels[40:43, 60:63] = 1
    snapped = EdgeSnapper(12, 1e-3)(labels, frame, 2)
    np.testing.assert_array_equal(snapped, labels)


def test_snapper_refuses_bad_settings_and_mismatched_frames() -> None:
    with pytest.raises(ValueError, match="radius"):
        EdgeSnapper(0, 1e-3)
    with pytest.raises(ValueError, match="eps"):
        EdgeSnapper(4, 0.0)
    with pytest.raises(ValueError, match="subsample"):
        EdgeSnapper(4, 1e-3, subsample=0)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 frame"):
        EdgeSnapper(4, 1e-3)(np.zeros((10, 12), dtype=np.uint8), np.zeros((10, 13, 3), dtype=np.uint8), 2)


@pytest.mark.parametrize("field,value", [("edge_radius", -1.0), ("edge_radius", float("nan")),
                                         ("edge_radius", True), ("edge_eps", -1e-3), ("edge_eps", 0.0)])
def test_config_refuses_a_bad_edge_setting(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SessionConfig(**{"edge_radius": 6.0, field: value})


def test_edge_snapping_is_on_by_default_and_off_in_the_paper_preset() -> None:
    assert SessionConfig().edge_radius == 6.0 and SessionConfig.fast().edge_radius == 6.0
    assert SessionConfig.paper().edge_radius == 0
    assert SessionConfig(edge_radius=0, edge_eps=0.0).edge_radius == 0


def test_mask_cache_snaps_the_resampled_grid_onto_the_frame() -> None:
    """The plain path (no grid filter) with snapping: the blocky grid edge lands on the frame's."""
    edge, size, grid, working = 93, (120, 200), (15, 25), (60, 100)
    frame = split_frame(edge, size)
    centres = (np.arange(grid[1]) + 0.5) * 4 * size[1] / working[1]
    logits = torch.zeros(2, *grid)
    logits[1] = torch.from_numpy(np.where(centres >= edge, 4.0, -4.0)).float()[None, :].expand(grid[0], -1)
    truth = np.zeros(size, dtype=np.uint8)
    truth[:, edge:] = 1
    channels = Channels((0, 1))

    def resampler() -> GridResampler:
        return GridResampler(grid, working, size)

    plain = MaskCache(size, resampler, frames=lambda index: frame).to_mask(logits, channels, 0)
    snapper = EdgeSnapper(12, 1e-3)
    snapped = MaskCache(size, resampler, frames=lambda index: frame, snapper=lambda: snapper).to_mask(
        logits, channels, 0)
    assert np.count_nonzero(plain != truth) >= 2 * size[0], "the scene does not test the snapping"
    assert np.count_nonzero(snapped != truth) <= 0.05 * np.count_nonzero(plain != truth)


def test_session_switch_changes_the_masks_only(tiny_model) -> None:
    video, truth = dimmed_noise_video()
    results = {radius: mask_round(tiny_model, video, truth, SessionConfig(working_size=None, edge_radius=radius))
               for radius in (0.0, 6.0)}
    assert torch.equal(results[0.0][0], results[6.0][0]), "the logits do not depend on the switch"
    assert not np.array_equal(results[0.0][1][1:], results[6.0][1][1:]), "the snapping changed nothing"
    snapped_session = results[6.0][2]
    snapped_session.mask_cache.clear()   # recomputed after the cache forgets them: the same masks
    np.testing.assert_array_equal(snapped_session.masks, results[6.0][1])


def test_sessions_saved_before_the_switch_load_without_it(tmp_path, tiny_model) -> None:
    rng = np.random.default_rng(6)
    video = rng.integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
    session = manet.Session(tiny_model, video, SessionConfig(edge_radius=0.0))
    assert SessionConfig.from_dict({**SessionConfig().to_dict(), "edge_radius": 6.0}).edge_radius == 6.0
    session.run_round([manet.Scribble(1, [[12, 20], [30, 26]])], frame=1)
    folder = session.save(tmp_path / "saved")
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    del manifest["session_config"]["edge_radius"]
    del manifest["session_config"]["edge_eps"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    loaded = manet.Session.load(folder, tiny_model, video)
    assert loaded.config.edge_radius == 0
    loaded.mask_cache.clear()
    np.testing.assert_array_equal(loaded.masks, session.masks)
