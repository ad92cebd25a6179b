"""Bootstrapped cross-entropy and its annealing schedule, against hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from manet.train.losses import bootstrap_fraction, bootstrapped_cross_entropy

LN3 = math.log(3.0)


def hand_example() -> tuple[torch.Tensor, torch.Tensor]:
    """One image, K=2, four pixels in a row. With logits (0, x) the cross-entropy is
    ln(1 + e^x) for target 0 and ln(1 + e^-x) for target 1, so:
      pixel 0: logits (0, 0),   target 0 -> ln 2
      pixel 1: logits (0, ln3), target 0 -> ln(1 + 3)   = ln 4
      pixel 2: logits (0, ln3), target 1 -> ln(1 + 1/3) = ln(4/3)
      pixel 3: logits (0, 0),   target 255 -> ignored
    Sorted hardest first: ln 4 > ln 2 > ln(4/3)."""
    logits = torch.tensor([[[[0.0, 0.0, 0.0, 0.0]], [[0.0, LN3, LN3, 0.0]]]])
    target = torch.tensor([[[0, 0, 1, 255]]])
    return logits, target


@pytest.mark.parametrize(("fraction", "expected"), [
    (1.0, (math.log(2) + math.log(4) + math.log(4 / 3)) / 3),  # all 3 valid pixels = ln(32/3)/3
    (0.5, (math.log(4) + math.log(2)) / 2),                    # ceil(1.5) = 2 hardest = 1.5 ln 2
    (0.2, math.log(4)),                                        # ceil(0.6) = 1 hardest
])
def test_hand_computed_values(fraction: float, expected: float) -> None:
    logits, target = hand_example()
    loss = bootstrapped_cross_entropy(logits, target, fraction)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_only_kept_pixels_receive_gradient() -> None:
    logits, target = hand_example()
    logits.requires_grad_(True)
    bootstrapped_cross_entropy(logits, target, 0.2).backward()  # type: ignore[no-untyped-call]
    assert logits.grad is not None
    touched = logits.grad.abs().sum(dim=1)[0, 0] > 0
    assert touched.tolist() == [False, True, False, False]  # only pixel 1 (ln 4)


def test_batch_keeps_a_fraction_per_image_and_pools_the_mean() -> None:
    """Image 0 is the hand example; image 1 has a single valid pixel with loss ln 2.
    At 50%: image 0 keeps ln 4 and ln 2, image 1 keeps its one pixel (at least one is kept),
    pooled mean = (ln 4 + ln 2 + ln 2) / 3 = 4 ln 2 / 3."""
    logits, target = hand_example()
    logits = torch.cat([logits, torch.zeros_like(logits)])
    target = torch.cat([target, torch.tensor([[[255, 1, 255, 255]]])])
    loss = bootstrapped_cross_entropy(logits, target, 0.5)
    assert loss.item() == pytest.approx(4 * math.log(2) / 3, abs=1e-6)


def test_full_fraction_equals_plain_cross_entropy() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 9, 7, generator=generator)
    target = torch.randint(0, 4, (2, 9, 7), generator=generator)
    target[0, :3] = 255
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert bootstrapped_cross_entropy(logits, target, 1.0).item() == pytest.approx(expected.item())


def test_fraction_rounding_does_not_take_an_extra_pixel() -> None:
    """0.15 * 100 is 15.000000000000002 in floating point; exactly 15 pixels must count."""
    losses = torch.arange(100, dtype=torch.float32)  # per-pixel logit gap -> increasing losses
    logits = torch.stack([torch.zeros(100), losses]).reshape(1, 2, 10, 10)
    target = torch.zeros(1, 10, 10, dtype=torch.int64)
    per_pixel = F.cross_entropy(logits, target, reduction="none").flatten()
    expected = per_pixel.topk(15).values.mean()
    assert bootstrapped_cross_entropy(logits, target, 0.15).item() == pytest.approx(expected.item())


def test_valid_channels_exclude_padded_logits() -> None:
    """Sample 1 has only 2 channels; its padded third channel holds a huge logit that would
    dominate the softmax. With valid_channels it is excluded: the loss equals the hand
    example's ln(32/3)/3 for both samples."""
    logits, target = hand_example()
    padded = torch.cat([logits, torch.full((1, 1, 1, 4), -1e4)], dim=1)
    second = torch.cat([logits, torch.full((1, 1, 1, 4), 50.0)], dim=1)
    batch = torch.cat([padded, second]).requires_grad_(True)
    loss = bootstrapped_cross_entropy(batch, target.repeat(2, 1, 1), 1.0,
                                      valid_channels=torch.tensor([3, 2]))
    assert loss.item() == pytest.approx(math.log(32 / 3) / 3, abs=1e-4)
    loss.backward()  # type: ignore[no-untyped-call]
    assert batch.grad is not None and torch.isfinite(batch.grad).all()
    assert batch.grad[1, 2].abs().max() == 0


def test_valid_channels_reject_targets_beyond_a_sample() -> None:
    logits, target = hand_example()
    with pytest.raises(ValueError, match="valid_channels"):
        bootstrapped_cross_entropy(logits, target, 1.0, valid_channels=torch.tensor([1]))


def test_no_valid_pixel_gives_zero_with_a_graph() -> None:
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    loss = bootstrapped_cross_entropy(logits, torch.full((1, 3, 3), 255), 0.5)
    loss.backward()  # type: ignore[no-untyped-call]
    assert loss.item() == 0.0 and logits.grad is not None


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_bad_fraction_is_rejected(fraction: float) -> None:
    logits, target = hand_example()
    with pytest.raises(ValueError, match="top_fraction"):
        bootstrapped_cross_entropy(logits, target, fraction)


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected logits"):
        bootstrapped_cross_entropy(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.int64), 1.0)


def test_bootstrap_fraction_schedule() -> None:
    assert bootstrap_fraction(0, 50_000) == 1.0
    assert bootstrap_fraction(25_000, 50_000) == pytest.approx(0.575)  # (1 + 0.15) / 2
    assert bootstrap_fraction(50_000, 50_000) == pytest.approx(0.15)
    assert bootstrap_fraction(90_000, 50_000) == pytest.approx(0.15)
    assert bootstrap_fraction(-5, 50_000) == 1.0
    assert bootstrap_fraction(10, 0) == 0.15
    assert bootstrap_fraction(5, 10, start=0.5, end=0.1) == pytest.approx(0.3)
    values = [bootstrap_fraction(step, 100) for step in range(0, 101, 10)]
    assert all(a > b for a, b in itertools.pairwise(values))
