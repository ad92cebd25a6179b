"""Matching maps of MA-Net (paper eq 1, 2, 4, 7), as pure tensor functions.

Vocabulary: E embedding channels, C object channels (background included), (h, w) a grid.
Distances lie in [0, 1): 0 means identical embeddings, and a map value of 1 means "no
reference pixel of that object is in reach". All maths in float32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

# Elements of one (target x reference) distance block: 4M floats = 16 MB.
DEFAULT_BLOCK_ELEMENTS = 1 << 22
# The global map's blocks: 1M floats (4 MB), every reference of an object (up to
# GLOBAL_REFERENCE_CHUNK) against a slice of the pixels, so the minimum over the references reads
# a block that stays in cache: ~30% faster at the default 1024 references than 16 MB blocks of
# fewer references against every pixel (benchmarks/round_latency.py's global map).
GLOBAL_BLOCK_ELEMENTS = 1 << 20
GLOBAL_REFERENCE_CHUNK = 4096


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
                        block_elements: int = GLOBAL_BLOCK_ELEMENTS,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Eq 2: for every target pixel, the distance to its nearest reference pixel, per object.

    Args:
        target: (E, h, w) embedding of the frame being segmented.
        references: one (M_c, E) tensor per object channel c: embeddings of the pixels annotated
            as c. An empty tensor (M_c = 0) gives a map of ones for that channel.
        block_elements: bound on one distance block (target pixels x reference pixels), so
            memory stays bounded for thousands of reference pixels.
        dtype: of the products (norms, minima and the map stay float32); ``torch.bfloat16``
            runs ~3-4x faster on CPUs with native bfloat16 and shifts squared distances by a
            few thousandths.
    Returns:
        (C, h, w) float32 in [0, 1].
    """
    embedding_dim, height, width = target.shape
    # (E, N) layout: both the norms and the products run over contiguous memory (transposing
    # to (N, E) first made a later round's global map 5x slower).
    pixels = target.reshape(embedding_dim, -1).float()
    count = pixels.shape[1]
    pixel_norm = (pixels * pixels).sum(0)
    product_pixels = pixels.to(dtype)
    maps = []
    for reference in references:
        reference = reference.float()
        if reference.shape[0] == 0:
            maps.append(torch.ones((height, width), device=target.device))
            continue
        reference_norm = (reference * reference).sum(-1)
        product_reference, product_norm = reference.to(dtype), reference_norm.to(dtype)
        ref_chunk = max(1, min(reference.shape[0], GLOBAL_REFERENCE_CHUNK, block_elements))
        pix_chunk = max(1, block_elements // ref_chunk)
        nearest = []
        for start in range(0, count, pix_chunk):
            cols = slice(start, start + pix_chunk)
            chunks = []
            for ref_start in range(0, reference.shape[0], ref_chunk):
                rows = slice(ref_start, ref_start + ref_chunk)
                # |r|^2 - 2 r.p in one fused product; |p|^2 is the same for every reference, so it is
                # added after the minimum (one pass over the block instead of three).
                partial = torch.addmm(product_norm[rows, None], product_reference[rows], product_pixels[:, cols],
                                      alpha=-2.0)
                chunks.append(partial.amin(dim=0).float())
            nearest.append(torch.stack(chunks).amin(dim=0) + pixel_norm[cols])
        maps.append(distance_from_squared(torch.cat(nearest)).reshape(height, width))
    return torch.stack(maps) if maps else target.new_zeros((0, height, width), dtype=torch.float32)


def evenly_subsampled(rows: torch.Tensor, limit: int | None) -> torch.Tensor:
    """At most ``limit`` rows, evenly spaced in their (row-major, so spatial) order."""
    if limit is None or rows.shape[0] <= limit:
        return rows
    return rows[torch.linspace(0, rows.shape[0] - 1, limit, device=rows.device).round().long()]


def stroke_matching_map(embedding: torch.Tensor, scribble_maps: torch.Tensor, previous_masks: torch.Tensor,
                        first_round: bool, max_references: int | None = 1024) -> torch.Tensor:
    """The interactive frame matched to its own annotation: what the interaction head's skip adds.

    Each object's reference pixels are its strokes (at most ``max_references``, evenly spread);
    after round 1 its previous-round pixels that no other id stroked count as well, at distance 0
    (a pixel is its own nearest neighbour), so a round that corrects one object keeps the others.

    Args:
        embedding: (E, h, w) embedding of the interactive frame.
        scribble_maps: (K, h, w) float, > 0 on the object's strokes, < 0 on other ids' strokes.
        previous_masks: (K, h, w) float previous-round probabilities (unused in round 1).
        first_round: whether this is round 1 (no previous round). It is not read off the masks:
            a later round's mask of a frame can be all background (the object was lost there),
            and that background is what a stroke adding the object must not erase.
    Returns:
        (K, h, w) float32 in [0, 1].
    """
    pixels = embedding.reshape(embedding.shape[0], -1).t()
    references = [evenly_subsampled(pixels[(strokes > 0).reshape(-1)], max_references) for strokes in scribble_maps]
    maps = global_matching_map(embedding, references)
    if not first_round:  # keep what no stroke contradicts
        kept = (previous_masks > 0.5) & (scribble_maps >= 0)
        maps = maps.masked_fill(kept, 0.0)
    return maps


def window_offsets(window: int) -> int:
    """P = (2k + 1)^2, the number of window offsets; offset index ``(dy + k) * (2k + 1) + (dx + k)``."""
    return (2 * window + 1) ** 2


def local_distances(target: torch.Tensor, reference: torch.Tensor, window: int, block: int = 16,
                    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Eq 1 between every target pixel and every reference pixel in its window.

    The half of eq 4 that does not depend on masks: computed once per pair of neighbouring frames
    and reused by every round (:func:`local_matching_from_distances` adds the masks). Tiles the
    target into ``block`` x ``block`` squares and compares each with its (block + 2k)^2
    neighbourhood by a batched matrix product, a few blocks at a time.

    Args:
        target: (E, h, w) embedding of the current frame (the paper pools it 2x first).
        reference: (E, h, w) embedding of the reference frame.
        window: k, in grid pixels.
        dtype: of the products, as in :func:`global_matching_map`.
    Returns:
        (P, h, w) float32 in [0, 1]: entry ``[o, y, x]`` is the distance between target pixel
        (y, x) and reference pixel (y + dy, x + dx) of offset o (see :func:`window_offsets`);
        1 where that pixel lies outside the frame.
    """
    embedding_dim, height, width = target.shape
    tile = block + 2 * window
    rows, cols = -(-height // block), -(-width // block)
    padded_h, padded_w = rows * block, cols * block
    target_tiles = F.pad(target.float(), (0, padded_w - width, 0, padded_h - height))
    target_tiles = target_tiles.reshape(embedding_dim, rows, block, cols, block)
    target_tiles = target_tiles.permute(1, 3, 2, 4, 0).reshape(rows * cols, block * block, embedding_dim)
    target_norm = (target_tiles * target_tiles).sum(-1, keepdim=True)
    pad = (window, padded_w - width + window, window, padded_h - height + window)
    reference_tiles = F.unfold(F.pad(reference.float(), pad)[None], tile, stride=block)[0]
    reference_tiles = reference_tiles.reshape(embedding_dim, tile * tile, rows * cols).permute(2, 1, 0)
    positions = _window_positions(block, window, target.device)  # (block^2, P) indices into tile^2
    offsets = positions.shape[2]
    group = max(1, block_elements // (block * block * tile * tile))
    groups = []
    for start in range(0, rows * cols, group):
        batch = slice(start, start + group)
        # |r|^2 - 2 t.r fused, |t|^2 added after keeping only the window's offsets.
        tiles = reference_tiles[batch]
        norms = (tiles * tiles).sum(-1).unsqueeze(-2).to(dtype)
        partial = torch.baddbmm(norms, target_tiles[batch].to(dtype), tiles.transpose(1, 2).to(dtype), alpha=-2.0)
        kept = partial.gather(2, positions.expand(partial.shape[0], -1, -1)).float()
        groups.append(kept + target_norm[batch])
    result = torch.cat(groups).reshape(rows, cols, block, block, offsets).permute(4, 0, 2, 1, 3)
    result = distance_from_squared(result.reshape(offsets, padded_h, padded_w)[:, :height, :width])
    inside = _offset_inside(height, width, window, target.device)
    return result.masked_fill(~inside, 1.0)


def local_matching_from_distances(distances: torch.Tensor, reference_masks: torch.Tensor,
                                  window: int) -> torch.Tensor:
    """Eq 4 from :func:`local_distances`: per object, the nearest of its pixels in the window.

    Args:
        distances: (P, h, w) float (float16 is fine) from :func:`local_distances`.
        reference_masks: (C, h, w) bool, True where a reference pixel belongs to channel c.
        window: k, the window the distances were computed with.
    Returns:
        (C, h, w) float32 in [0, 1]; 1 where no pixel of the object lies in the window.
    """
    offsets, height, width = distances.shape
    side = 2 * window + 1
    if offsets != side * side:
        raise ValueError(f"distances hold {offsets} offsets, but window {window} needs {side * side}")
    channels = reference_masks.shape[0]
    padded = F.pad(reference_masks.float(), (window, window, window, window))[None]
    # (C, P, h*w): whether the reference pixel at each offset belongs to the channel.
    belongs = F.unfold(padded, side).reshape(channels, offsets, height * width) > 0.5
    flat = distances.reshape(offsets, height * width).float()
    maps = [flat.masked_fill(~member, 1.0).amin(dim=0) for member in belongs]
    if not maps:
        return distances.new_zeros((0, height, width), dtype=torch.float32)
    return torch.stack(maps).reshape(channels, height, width)


def local_matching_authors_order(distances: torch.Tensor, labels: torch.Tensor, channels: int, window: int,
                                 offsets_per_block: int | None = None) -> torch.Tensor:
    """Eq 4 in the authors' order: upsample the distance volume, mask it with stride-4 labels.

    The (P, h2, w2) distances of the 2x-pooled grid are upsampled offset by offset to the
    stride-4 grid (bilinear, corners aligned). At stride-4 pixel (y, x), offset (dy, dx) stands
    for the stride-4 pixel (y + 2dy, x + 2dx); it counts for channel c when that pixel is
    labelled c (pixels outside the frame belong to no channel). The map is the minimum over the
    counted offsets, so object boundaries stay at stride 4. The volume is never materialised at
    stride 4 (625 offsets x 120 x 214 floats at 480p): ``offsets_per_block`` offsets (one
    window row, 2k + 1, by default) are upsampled and reduced at a time.

    Args:
        distances: (P, h2, w2) float from :func:`local_distances` on 2x-pooled embeddings.
        labels: (h, w) integer channel indices of the reference frame at stride 4, with
            ``h2 = ceil(h / 2)``, ``w2 = ceil(w / 2)``; values outside ``[0, channels)`` label nothing.
        channels: C.
        window: k, the window the distances were computed with (pooled pixels).
    Returns:
        (C, h, w) float32 in [0, 1]; 1 where no pixel of the channel is among the offsets.
    """
    side = 2 * window + 1
    if distances.shape[0] != side * side:
        raise ValueError(f"distances hold {distances.shape[0]} offsets, but window {window} needs {side * side}")
    height, width = int(labels.shape[0]), int(labels.shape[1])
    if tuple(distances.shape[1:]) != (-(-height // 2), -(-width // 2)):
        raise ValueError(f"distances on a {tuple(distances.shape[1:])} grid do not pool labels of {(height, width)}")
    reach = 2 * window
    # Labels outside [0, C) go to a spare channel C, dropped at the end.
    known = labels.to(distances.device).long()
    known = torch.where((known >= 0) & (known < channels), known, channels)
    padded = F.pad(known, (reach, reach, reach, reach), value=channels)
    result = torch.ones((channels + 1, height, width), dtype=torch.float32, device=distances.device)
    step = offsets_per_block or side
    for start in range(0, side * side, step):
        stop = min(start + step, side * side)
        upsampled = F.interpolate(distances[start:stop][None].float(), size=(height, width), mode="bilinear",
                                  align_corners=True)[0]
        shifted = torch.stack([padded[reach + 2 * (o // side - window):][:height,
                                      reach + 2 * (o % side - window):][:, :width] for o in range(start, stop)])
        # Each offset's distance lowers the map of the channel its reference pixel belongs to:
        # one pass over the offsets whatever C is (2.6x faster than masking per channel at 480p).
        result.scatter_reduce_(0, shifted, upsampled, reduce="amin")
    return result[:channels]


def local_map_for_order(distances: torch.Tensor, labels: torch.Tensor, channels: int, window: int,
                        order: str) -> torch.Tensor:
    """Eq 4 from pooled-grid distances and (h, w) stride-4 channel indices of the reference.

    ``order="pooled"`` returns (C, h2, w2) on the pooled grid (labels max-pooled, see
    :func:`pool_labels`); ``"authors"`` returns (C, h, w) at stride 4
    (:func:`local_matching_authors_order`). Callers upsample with :func:`upsample_maps`, a no-op
    for the latter.
    """
    if order == "authors":
        return local_matching_authors_order(distances, labels, channels, window)
    if order != "pooled":
        raise ValueError(f"local map order must be 'pooled' or 'authors', got {order!r}")
    return local_matching_from_distances(distances, pool_labels(labels, channels), window)


def reverse_local_distances(distances: torch.Tensor, window: int) -> torch.Tensor:
    """The distances of the swapped pair: from ``local_distances(a, b)`` to ``local_distances(b, a)``.

    Pixel (y, x) of b at offset o meets pixel (y + dy, x + dx) of a, which saw it at offset -o.
    """
    offsets, height, width = distances.shape
    index = _reverse_index(height, width, window, distances.device)
    padded = F.pad(distances.flip(0), (window, window, window, window), value=1.0)
    return padded.reshape(-1)[index.reshape(-1)].reshape(offsets, height, width)


def local_matching_map(target: torch.Tensor, reference: torch.Tensor, reference_masks: torch.Tensor,
                       window: int, block: int = 16,
                       block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> torch.Tensor:
    """Eq 4 (and eq 7): nearest distance to an object's reference pixels within a square window.

    A target pixel p at (y, x) looks at reference pixels q with ``|q_y - y| <= window`` and
    ``|q_x - x| <= window`` that belong to the object.

    Args:
        target: (E, h, w) embedding of the current frame (the paper pools it 2x first).
        reference: (E, h, w) embedding of the reference frame (the previous frame for the local
            map; the interactive frame itself for the augmented map).
        reference_masks: (C, h, w) bool, True where a reference pixel belongs to channel c.
        window: k, in grid pixels.
    Returns:
        (C, h, w) float32 in [0, 1]; 1 where no pixel of the object lies in the window.
    """
    distances = local_distances(target, reference, window, block, block_elements)
    return local_matching_from_distances(distances, reference_masks, window)


def _cached_constant(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Memoise an index/mask helper; its tensor is built as a normal tensor even under inference
    mode, so training (autograd) can use what an inference session cached."""
    @functools.lru_cache(maxsize=8)
    @functools.wraps(function)
    def cached(*args: object) -> torch.Tensor:
        with torch.inference_mode(False):
            return function(*args)

    return cached


@_cached_constant
def _window_positions(block: int, window: int, device: torch.device) -> torch.Tensor:
    """(1, block^2, P) int64: the tile position of each window offset of each block pixel."""
    tile = block + 2 * window
    inner = torch.arange(block, device=device) + window
    steps = torch.arange(-window, window + 1, device=device)
    rows = (inner[:, None] + steps[None, :])  # (block, side)
    flat = rows[:, None, :, None] * tile + rows[None, :, None, :]  # (by, bx, dy, dx)
    return flat.reshape(1, block * block, -1)


@_cached_constant
def _offset_inside(height: int, width: int, window: int, device: torch.device) -> torch.Tensor:
    """(P, h, w) bool: whether pixel (y + dy, x + dx) of each offset lies in the frame."""
    steps = torch.arange(-window, window + 1, device=device)
    rows = torch.arange(height, device=device)[None, :] + steps[:, None]  # (side, h)
    cols = torch.arange(width, device=device)[None, :] + steps[:, None]  # (side, w)
    row_ok = (rows >= 0) & (rows < height)
    col_ok = (cols >= 0) & (cols < width)
    return (row_ok[:, None, :, None] & col_ok[None, :, None, :]).reshape(-1, height, width)


@_cached_constant
def _reverse_index(height: int, width: int, window: int, device: torch.device) -> torch.Tensor:
    """(P, h, w) int64 flat indices into the window-padded (P, h + 2k, w + 2k) distances."""
    side = 2 * window + 1
    padded_h, padded_w = height + 2 * window, width + 2 * window
    steps = torch.arange(-window, window + 1, device=device)
    offset = torch.arange(side * side, device=device).reshape(side, side)
    rows = torch.arange(height, device=device)[None, :] + steps[:, None] + window  # (side, h)
    cols = torch.arange(width, device=device)[None, :] + steps[:, None] + window  # (side, w)
    index = (offset[:, :, None, None] * padded_h + rows[:, None, :, None]) * padded_w + cols[None, :, None, :]
    return index.reshape(side * side, height, width)


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
