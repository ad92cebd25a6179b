"""Bootstrapped cross-entropy and its annealing schedule.

The paper trains with "adaptive bootstrapped cross-entropy": only the hardest fraction of the
pixels counts, annealed linearly from 100% at step 0 to 15% at step 50000.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bootstrap_fraction(step: int, total_steps: int, start: float = 1.0, end: float = 0.15) -> float:
    """Fraction of hardest pixels kept at ``step``: linear from ``start`` at step 0 to ``end``
    at ``total_steps``, then constant (``start`` before step 0; ``end`` if total_steps <= 0)."""
    if total_steps <= 0:
        return end
    progress = min(max(step / total_steps, 0.0), 1.0)
    return start + (end - start) * progress


def _mask_channels(logits: torch.Tensor, valid_channels: torch.Tensor) -> torch.Tensor:
    """Channels ``>= valid_channels[b]`` of sample b get a logit no softmax can pick."""
    channels = torch.arange(logits.shape[1], device=logits.device)
    invalid = channels[None, :] >= valid_channels.to(logits.device)[:, None]
    return logits.masked_fill(invalid[:, :, None, None], torch.finfo(logits.dtype).min)


def bootstrapped_cross_entropy(logits: torch.Tensor, target: torch.Tensor, top_fraction: float,
                               ignore_index: int = 255,
                               valid_channels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over the hardest ``top_fraction`` of each image's valid pixels.

    ``logits`` (B,K,H,W) float, softmax over K = objects + background (channel 0);
    ``target`` (B,H,W) int64 channel ids, ``ignore_index`` marks pixels that do not count.
    Per image b with n_b valid pixels, the ceil(top_fraction * n_b) largest per-pixel losses
    are kept (at least one if n_b > 0); the result is the mean over all kept pixels of the batch
    (the mean of per-image means when every image has as many valid pixels).

    Samples with fewer objects than the batch maximum: either call once per sample with its
    own K, or pad logits to the batch's K and pass ``valid_channels`` (B,) int64 = K_b; the
    padded channels are then excluded from the softmax. Returns a scalar; 0 (still attached
    to the graph) when no pixel is valid.
    """
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must lie in (0, 1], got {top_fraction}")
    if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"expected logits (B,K,H,W) and target (B,H,W), got "
                         f"{tuple(logits.shape)} and {tuple(target.shape)}")
    valid = target != ignore_index
    if valid_channels is not None:
        limit = valid_channels.to(target.device)[:, None, None]
        if bool((valid & (target >= limit)).any()):
            raise ValueError("a target id is >= its sample's valid_channels: ids must be < K_b")
        logits = _mask_channels(logits, valid_channels)
    losses = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none").flatten(1)
    valid = valid.flatten(1)
    counts = valid.sum(dim=1)
    # The small epsilon keeps e.g. 0.15 * 100 = 15.000000000000002 from rounding up to 16.
    keep = torch.ceil(counts.double() * top_fraction - 1e-9).long().clamp(min=1)
    keep = torch.where(counts > 0, keep, torch.zeros_like(keep))
    largest = int(keep.max())
    if largest == 0:
        return logits.sum() * 0.0
    # Cross-entropy is >= 0, so -1 ranks every ignored pixel below every valid one.
    ranked = losses.masked_fill(~valid, -1.0).topk(largest, dim=1).values
    selected = torch.arange(largest, device=logits.device)[None, :] < keep[:, None]
    return (ranked * selected).sum() / selected.sum()
