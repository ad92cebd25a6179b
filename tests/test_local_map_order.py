"""The authors' local-map order and round-1 augmented map (SessionConfig switches), against naive loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import manet
from manet import Scribble
from manet.config import SessionConfig
from manet.inference import interaction
from manet.model import matching
from manet.model.matching import (
    local_distances,
    local_map_for_order,
    local_matching_authors_order,
    local_matching_from_distances,
    pool_embedding,
    pool_labels,
)


def _naive_authors_order(target: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, channels: int,
                         window: int) -> torch.Tensor:
    """Pooled-grid eq 1 pixel by pixel, the volume upsampled whole, then a loop over offsets."""
    pooled_target, pooled_reference = pool_embedding(target), pool_embedding(reference)
    _, small_h, small_w = pooled_target.shape
    side = 2 * window + 1
    volume = torch.ones((side * side, small_h, small_w))
    for offset in range(side * side):
        dy, dx = offset // side - window, offset % side - window
        for y in range(small_h):
            for x in range(small_w):
                if 0 <= y + dy < small_h and 0 <= x + dx < small_w:
                    squared = ((pooled_target[:, y, x] - pooled_reference[:, y + dy, x + dx]) ** 2).sum()
                    volume[offset, y, x] = 2.0 / (1.0 + torch.exp(-squared)) - 1.0
    height, width = labels.shape
    upsampled = F.interpolate(volume[None], size=(height, width), mode="bilinear", align_corners=True)[0]
    result = torch.ones((channels, height, width))
    for channel in range(channels):
        for y in range(height):
            for x in range(width):
                for offset in range(side * side):
                    ry, rx = y + 2 * (offset // side - window), x + 2 * (offset % side - window)
                    if 0 <= ry < height and 0 <= rx < width and int(labels[ry, rx]) == channel:
                        result[channel, y, x] = min(result[channel, y, x], upsampled[offset, y, x])
    return result


@pytest.mark.parametrize("height, width, window, block", [(9, 11, 2, None), (8, 7, 1, 4), (10, 6, 3, 1)])
def test_authors_order_matches_a_naive_loop(height: int, width: int, window: int, block: int | None) -> None:
    generator = torch.Generator().manual_seed(height * width + window)
    target = torch.randn((5, height, width), generator=generator)
    reference = torch.randn((5, height, width), generator=generator)
    labels = torch.randint(-1, 3, (height, width), generator=generator)  # -1: no reference pixel
    distances = local_distances(pool_embedding(target), pool_embedding(reference), window)
    fast = local_matching_authors_order(distances, labels, 3, window, offsets_per_block=block)
    expected = _naive_authors_order(target, reference, labels, 3, window)
    assert fast.shape == (3, height, width)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)


def test_authors_order_keeps_boundaries_at_stride_4() -> None:
    # Identical embeddings: distance 0 wherever an offset reaches a labelled pixel. A one-pixel
    # stride-4 object is reached only by offsets landing exactly on it; pooling would spread it.
    embedding = torch.zeros((4, 12, 12))
    labels = torch.zeros((12, 12), dtype=torch.long)
    labels[5, 5] = 1
    distances = local_distances(pool_embedding(embedding), pool_embedding(embedding), 1)
    authors = local_matching_authors_order(distances, labels, 2, 1)
    reached = authors[1] < 0.5
    rows, cols = np.nonzero(reached.numpy())
    expected = {(5 + 2 * dy, 5 + 2 * dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert set(zip(rows.tolist(), cols.tolist(), strict=True)) == expected
    pooled = local_map_for_order(distances, labels, 2, 1, "pooled")
    assert pooled.shape == (2, 6, 6)


def test_pooled_order_is_the_default_computation() -> None:
    generator = torch.Generator().manual_seed(3)
    distances = torch.rand((25, 5, 6), generator=generator)
    labels = torch.randint(0, 3, (10, 12), generator=generator)
    expected = local_matching_from_distances(distances, pool_labels(labels, 3), 2)
    assert torch.equal(local_map_for_order(distances, labels, 3, 2, "pooled"), expected)
    assert SessionConfig().local_map_order == "pooled" and not SessionConfig().augmented_map_before_roi
    with pytest.raises(ValueError, match="local_map_order"):
        SessionConfig(local_map_order="nearest")  # type: ignore[arg-type]


def _first_round(video: np.ndarray, config: SessionConfig) -> manet.Session:
    torch.manual_seed(0)  # the same random tiny model for every config compared
    session = manet.Session(manet.load_model("tiny", weights=None), video, config)
    session.interact([Scribble(1, [[20, 18], [28, 26]])], frame=2)
    for _ in session.propagate():
        pass
    return session


def test_round_one_augmented_map_comes_from_the_strokes_alone(video: np.ndarray) -> None:
    # A margin of 2 cells leaves ROI background on the 12 x 16 grid of the 48 x 64 video.
    before = _first_round(video, SessionConfig(augmented_map_before_roi=True, roi_margin=2))
    after = _first_round(video, SessionConfig(roi_margin=2))
    record_before, record_after = before.rounds[0], after.rounds[0]
    assert record_before.augmented is not None and record_after.augmented is not None
    # With the ROI background the background channel has references nearly everywhere.
    assert float(record_after.augmented[0].mean()) < float(record_before.augmented[0].mean())
    grid = before.grid
    strokes_only = interaction.stroke_labels(record_before.annotation, (before.height, before.width), grid, False, 2)
    assert not (strokes_only == 0).any()  # no background stroke was drawn: channel 0 has no reference
    torch.testing.assert_close(record_before.augmented[0], torch.ones(grid))
    torch.testing.assert_close(record_before.augmented[1], record_after.augmented[1])


def spy_on_authors_order(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Record the shape of every map :func:`local_matching_authors_order` returns."""
    shapes: list[tuple[int, ...]] = []
    original = matching.local_matching_authors_order

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        result = original(*args, **kwargs)  # type: ignore[arg-type]
        shapes.append(tuple(result.shape))
        return result

    monkeypatch.setattr(matching, "local_matching_authors_order", spy)
    monkeypatch.setattr(interaction, "local_matching_authors_order", spy)
    return shapes


def test_sessions_run_with_the_authors_order(video: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = spy_on_authors_order(monkeypatch)
    session = _first_round(video, SessionConfig(local_map_order="authors", augmented_map_before_roi=True))
    maps = session.maps(5, 1)
    assert maps.local_map is not None and maps.local_map.shape == session.grid
    assert session.masks.shape == video.shape[:3]
    # The augmented map and the 7 propagated frames' local maps, all at stride 4 (not pooled).
    assert len(shapes) == video.shape[0] and set(shapes) == {(2, *session.grid)}
    shapes.clear()
    _first_round(video, SessionConfig())
    assert not shapes  # the default never takes the authors' order


def test_labels_follow_the_distances_device() -> None:
    # The meta device stands in for a GPU on CPU-only machines: mixing it with CPU tensors raises.
    distances = torch.rand((9, 3, 4), device="meta")
    result = local_matching_authors_order(distances, torch.zeros((6, 8), dtype=torch.long), 2, 1)
    assert result.device.type == "meta" and result.shape == (2, 6, 8)
