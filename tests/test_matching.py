"""Matching maps against naive loop references (eq 1, 2, 4, 7)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from manet.model import matching


def naive_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    squared = float(((a - b) ** 2).sum())
    return 1.0 - 2.0 / (1.0 + math.exp(squared)) if squared < 700 else 1.0


def naive_global(target: torch.Tensor, references: list[torch.Tensor]) -> torch.Tensor:
    _, height, width = target.shape
    out = torch.ones(len(references), height, width)
    for c, reference in enumerate(references):
        for y in range(height):
            for x in range(width):
                if reference.shape[0]:
                    out[c, y, x] = min(naive_distance(target[:, y, x], q) for q in reference)
    return out


def naive_local(target: torch.Tensor, reference: torch.Tensor, masks: torch.Tensor, window: int) -> torch.Tensor:
    channels = masks.shape[0]
    _, height, width = target.shape
    out = torch.ones(channels, height, width)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                best = None
                for qy in range(max(0, y - window), min(height, y + window + 1)):
                    for qx in range(max(0, x - window), min(width, x + window + 1)):
                        if masks[c, qy, qx]:
                            d = naive_distance(target[:, y, x], reference[:, qy, qx])
                            best = d if best is None else min(best, d)
                if best is not None:
                    out[c, y, x] = best
    return out


def test_pixel_distance_is_eq1() -> None:
    a, b = torch.randn(5, 4) * 0.5, torch.randn(3, 4) * 0.5
    result = matching.pixel_distance(a, b)
    expected = torch.tensor([[naive_distance(p, q) for q in b] for p in a])
    assert torch.allclose(result, expected, atol=1e-5)
    assert float(matching.pixel_distance(a[:1], a[:1])) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("block_elements", [7, 1 << 22])
def test_global_matching_map_matches_naive(block_elements: int) -> None:
    target = torch.randn(3, 5, 6) * 0.7
    references = [torch.randn(9, 3) * 0.7, torch.zeros(0, 3), torch.randn(1, 3)]
    result = matching.global_matching_map(target, references, block_elements=block_elements)
    assert result.shape == (3, 5, 6)
    assert torch.allclose(result, naive_global(target, references), atol=1e-5)
    assert torch.all(result[1] == 1.0), "an object without reference pixels maps to 1"


@pytest.mark.parametrize("window,block", [(1, 2), (2, 3), (3, 16), (0, 4)])
def test_local_matching_map_matches_naive(window: int, block: int) -> None:
    generator = torch.Generator().manual_seed(window * 10 + block)
    target = torch.randn(4, 7, 9, generator=generator) * 0.6
    reference = torch.randn(4, 7, 9, generator=generator) * 0.6
    masks = torch.rand(3, 7, 9, generator=generator) > 0.7
    masks[2] = False  # an object absent from the previous frame
    masks[1, :, :] = False
    masks[1, 6, 8] = True  # a single pixel in the corner: only windows at the border reach it
    result = matching.local_matching_map(target, reference, masks, window, block=block, block_elements=300)
    expected = naive_local(target, reference, masks, window)
    assert torch.allclose(result, expected, atol=1e-5)
    assert torch.all(result[2] == 1.0)


@pytest.mark.parametrize("window", [1, 2, 4])
def test_reversed_local_distances_are_those_of_the_swapped_pair(window: int) -> None:
    generator = torch.Generator().manual_seed(window)
    first = torch.randn(5, 6, 7, generator=generator)
    second = torch.randn(5, 6, 7, generator=generator)
    forward = matching.local_distances(first, second, window, block=4)
    assert forward.shape == (matching.window_offsets(window), 6, 7)
    backward = matching.reverse_local_distances(forward, window)
    assert torch.allclose(backward, matching.local_distances(second, first, window, block=3), atol=1e-6)
    assert torch.equal(matching.reverse_local_distances(backward, window), forward)


def test_local_map_from_cached_distances_matches_naive_in_both_directions() -> None:
    generator = torch.Generator().manual_seed(7)
    current = torch.randn(4, 7, 9, generator=generator) * 0.6
    previous = torch.randn(4, 7, 9, generator=generator) * 0.6
    masks = torch.rand(2, 7, 9, generator=generator) > 0.6
    masks[1] = False
    masks[1, 0, 0] = True
    cached = matching.local_distances(previous, current, 2).half()  # stored the other way round
    result = matching.local_matching_from_distances(matching.reverse_local_distances(cached, 2), masks, 2)
    assert torch.allclose(result, naive_local(current, previous, masks, 2), atol=2e-3)
    with pytest.raises(ValueError, match="window 3 needs 49"):
        matching.local_matching_from_distances(cached, masks, 3)


def test_augmented_map_is_local_match_against_own_scribbles() -> None:
    embedding = torch.randn(3, 6, 6)
    scribbles = torch.zeros(2, 6, 6, dtype=torch.bool)
    scribbles[0, 2, 1:4] = True
    scribbles[1, 5, 5] = True
    result = matching.augmented_map(embedding, scribbles, window=2)
    assert torch.allclose(result, naive_local(embedding, embedding, scribbles, 2), atol=1e-5)
    assert torch.all(result[0, 2, 1:4] < 1e-5), "scribbled pixels are at distance 0 from themselves"


def test_local_matching_memory_stays_small_at_480p() -> None:
    """480p at stride 8 with E = 100 and k = 12: the peak resident growth of one call stays
    under 200 MB (an unfold over (2k+1)^2 offsets would need about 1.6 GB)."""
    script = """
import resource, torch
from manet.model import matching
torch.set_num_threads(1)
target = torch.randn(100, 60, 107)
masks = torch.zeros(2, 60, 107, dtype=torch.bool)
masks[1, 20:40, 30:60] = True
masks[0] = ~masks[1]
matching.local_matching_map(target[:, :8, :8], target[:, :8, :8], masks[:, :8, :8], window=12)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
matching.local_matching_map(target, target, masks, window=12)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    growth_mb = float(output.stdout.strip().splitlines()[-1])
    assert growth_mb < 200, f"local matching grew resident memory by {growth_mb:.0f} MB"


def test_pooling_keeps_small_objects_and_thin_strokes() -> None:
    labels = torch.zeros(4, 4, dtype=torch.long)
    labels[0:2, 0:2] = 1
    labels[2, 2] = 2
    pooled = matching.pool_labels(labels, 3)
    assert pooled.shape == (3, 2, 2)
    assert bool(pooled[1, 0, 0]) and not bool(pooled[0, 0, 0])
    assert bool(pooled[2, 1, 1]) and bool(pooled[0, 1, 1]), "a one-cell object survives pooling"
    stroke = torch.zeros(1, 5, 5, dtype=torch.bool)
    stroke[0, 3, :] = True
    assert matching.pool_masks(stroke)[0, 1].all()


def test_training_after_inference_in_one_process() -> None:
    """Index tensors cached by an inference-mode call must serve autograd later."""
    target = torch.randn(3, 5, 13)
    with torch.inference_mode():
        matching.local_distances(target, target, 2)
    trained = torch.randn(3, 5, 13, requires_grad=True)
    matching.local_distances(trained, target, 2).sum().backward()
    assert trained.grad is not None and torch.isfinite(trained.grad).all()
