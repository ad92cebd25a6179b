"""Matching maps of MA-Net (paper eq 1, 2, 4, 7), as pure tensor functions.

Vocabulary: E embedding channels, C object channels (background included), (h, w) a grid.
Distances lie in [0, 1): 0 means identical embeddings, and a map value of 1 means "no
reference pixel of that object is in reach". All maths in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Elements of one (target x reference) distance block: 4M floats = 16 MB.
DEFAULT_BLOCK_ELEMENTS = 1 << 22


def distance_from_squared(squared: torch.Tensor) -> torch.Tensor:
    """Eq 1 from a squared L2 distance: ``1 - 2 / (1 + exp(s)) = tanh(s / 2)`` (stable for large s)."""
    return torch.tanh(squared.clamp_min(0) * 0.5)


def pixel_distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Eq 1 between every pair of rows.

    Args:
        first: (N, E) float embeddings; second: (M, E).
    Returns:
        (N, M) float32 in [0, 1).
    """
    return distance_from_squared(_squared_distances(first.float(), second.float()))


def _squared_distances(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    first_norm = (first * first).sum(-1, keepdim=True)
    second_norm = (second * second).sum(-1)
    return (first_norm + second_norm.unsqueeze(-2) - 2.0 * first @ second.transpose(-1, -2)).clamp_min(0)


def global_matching_map(target: torch.Tensor, references: list[torch.Tensor],
                        block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> torch.Tensor:
    """Eq 2: for every target pixel, the distance to its nearest reference pixel, per object.

    Args:
        target: (E, h, w) embedding of the frame being segmented.
        references: one (M_c, E) tensor per object channel c: embeddings of the pixels annotated
            as c. An empty tensor (M_c = 0) gives a map of ones for that channel.
        block_elements: bound on one distance block (target pixels x reference pixels), so
            memory stays bounded for thousands of reference pixels.
    Returns:
        (C, h, w) float32 in [0, 1].
    """
    embedding_dim, height, width = target.shape
    pixels = target.reshape(embedding_dim, -1).t().float()
    pixel_norm = (pixels * pixels).sum(-1)
    maps = []
    for reference in references:
        reference = reference.float()
        if reference.shape[0] == 0:
            maps.append(torch.ones((height, width), device=target.device))
            continue
        reference_norm = (reference * reference).sum(-1)
        ref_chunk = max(1, min(reference.shape[0], block_elements // max(1, pixels.shape[0])))
        pix_chunk = max(1, block_elements // ref_chunk)
        rows_nearest = []
        for start in range(0, pixels.shape[0], pix_chunk):
            rows = slice(start, start + pix_chunk)
            chunks = []
            for ref_start in range(0, reference.shape[0], ref_chunk):
                cols = slice(ref_start, ref_start + ref_chunk)
                squared = pixel_norm[rows, None] + reference_norm[None, cols] - 2.0 * pixels[rows] @ reference[cols].t()
                chunks.append(squared.amin(dim=1))
            rows_nearest.append(torch.stack(chunks).amin(dim=0))
        maps.append(distance_from_squared(torch.cat(rows_nearest)).reshape(height, width))
    return torch.stack(maps) if maps else target.new_zeros((0, height, width), dtype=torch.float32)


def local_matching_map(target: torch.Tensor, reference: torch.Tensor, reference_masks: torch.Tensor,
                       window: int, block: int = 16,
                       block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> torch.Tensor:
    """Eq 4 (and eq 7): nearest distance to an object's reference pixels within a square window.

    A target pixel p at (y, x) looks at reference pixels q with ``|q_y - y| <= window`` and
    ``|q_x - x| <= window`` that belong to the object. The computation tiles the target into
    ``block`` x ``block`` squares and compares each with its (block + 2 window)^2 neighbourhood
    by a batched matrix product, a few blocks at a time, so no (h*w) x (2k+1)^2 tensor is built.

    Args:
        target: (E, h, w) embedding of the current frame (the paper pools it 2x first).
        reference: (E, h, w) embedding of the reference frame (the previous frame for the local
            map; the interactive frame itself for the augmented map).
        reference_masks: (C, h, w) bool, True where a reference pixel belongs to channel c.
        window: k, in grid pixels.
    Returns:
        (C, h, w) float32 in [0, 1]; 1 where no pixel of the object lies in the window.
    """
    embedding_dim, height, width = target.shape
    channels = reference_masks.shape[0]
    tile = block + 2 * window
    rows, cols = -(-height // block), -(-width // block)
    padded_h, padded_w = rows * block, cols * block
    target_tiles = F.pad(target.float(), (0, padded_w - width, 0, padded_h - height))
    target_tiles = target_tiles.reshape(embedding_dim, rows, block, cols, block)
    target_tiles = target_tiles.permute(1, 3, 2, 4, 0).reshape(rows * cols, block * block, embedding_dim)
    pad = (window, padded_w - width + window, window, padded_h - height + window)
    reference_tiles = F.unfold(F.pad(reference.float(), pad)[None], tile, stride=block)[0]
    reference_tiles = reference_tiles.reshape(embedding_dim, tile * tile, rows * cols).permute(2, 1, 0)
    mask_tiles = F.unfold(F.pad(reference_masks.float(), pad)[None], tile, stride=block)[0] > 0.5
    mask_tiles = mask_tiles.reshape(channels, tile * tile, rows * cols).permute(2, 0, 1)
    # Out-of-window and out-of-object candidates are excluded by adding +inf, which broadcasts
    # without building a boolean (blocks x block^2 x tile^2) mask per channel.
    window_penalty = torch.zeros(_window_mask(block, window, target.device).shape, device=target.device)
    window_penalty.masked_fill_(~_window_mask(block, window, target.device), float("inf"))
    object_penalty = torch.zeros(mask_tiles.shape, device=target.device).masked_fill_(~mask_tiles, float("inf"))
    group = max(1, block_elements // (block * block * tile * tile))
    groups = []
    for start in range(0, rows * cols, group):
        batch = slice(start, start + group)
        squared = _squared_distances(target_tiles[batch], reference_tiles[batch]) + window_penalty
        per_channel = [(squared + object_penalty[batch, channel, None, :]).amin(dim=-1) for channel in range(channels)]
        groups.append(torch.stack(per_channel, dim=1))
    result = torch.cat(groups)
    result = result.reshape(rows, cols, channels, block, block).permute(2, 0, 3, 1, 4)
    result = result.reshape(channels, padded_h, padded_w)[:, :height, :width]
    return distance_from_squared(result)


def _window_mask(block: int, window: int, device: torch.device) -> torch.Tensor:
    """(block^2, tile^2) bool: which tile positions lie within the window of each block pixel."""
    tile = block + 2 * window
    inner = torch.arange(block, device=device) + window
    outer = torch.arange(tile, device=device)
    close = (outer[None, :] - inner[:, None]).abs() <= window  # (block, tile)
    return (close[:, None, :, None] & close[None, :, None, :]).reshape(block * block, tile * tile)


def pool_embedding(embedding: torch.Tensor) -> torch.Tensor:
    """Average-pool (…, E, h, w) by 2 (ceil), as the paper does before local matching."""
    return F.avg_pool2d(embedding.float(), 2, ceil_mode=True)


def pool_masks(masks: torch.Tensor) -> torch.Tensor:
    """Max-pool (C, h, w) bool masks by 2 (ceil): a thin stroke survives pooling."""
    return F.max_pool2d(masks.float()[None], 2, ceil_mode=True)[0] > 0.5


def pool_labels(labels: torch.Tensor, channels: int) -> torch.Tensor:
    """Downsample a (h, w) channel-index map by 2 into (C, h/2, w/2) bool masks.

    A pooled cell belongs to every channel present in its 2x2 block (masks may overlap at
    boundaries): a majority vote would erase objects of one or two cells, and with them their
    local matching reference.
    """
    one_hot = F.one_hot(labels.long(), channels).permute(2, 0, 1).float()
    return F.max_pool2d(one_hot[None], 2, ceil_mode=True)[0] > 0.5


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (C, h', w') maps to (C, *size)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[None].float(), size=size, mode="bilinear", align_corners=False)[0]


def augmented_map(pooled_embedding: torch.Tensor, scribble_masks: torch.Tensor, window: int) -> torch.Tensor:
    """Eq 7: the interactive frame matched against its own scribbled pixels within the window.

    Args:
        pooled_embedding: (E, h2, w2) 2x-pooled embedding of the interactive frame.
        scribble_masks: (C, h2, w2) bool scribbled pixels per channel at the same grid.
    Returns:
        (C, h2, w2) float32 in [0, 1].
    """
    return local_matching_map(pooled_embedding, pooled_embedding, scribble_masks, window)
