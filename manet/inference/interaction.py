"""The interaction branch of one round: scribbles -> interactive-frame logits (and its augmented map)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from manet.config import SessionConfig
from manet.inference.scribbles import UNLABELLED, Annotation, first_round_background, rasterize
from manet.inference.state import Channels, PendingRound
from manet.model.matching import (
    augmented_map,
    local_distances,
    local_matching_authors_order,
    pool_embedding,
    pool_masks,
    upsample_maps,
)
from manet.model.network import MANet


@dataclass(frozen=True)
class InteractionResult:
    """labels: (h, w) int16 stroke ids (-1 none) incl. ROI background; logits: (C, h, w) float32;
    touchups: (h, w) bool touch-up cells (:func:`touchup_cells`), None when none were looked for."""

    labels: np.ndarray
    logits: torch.Tensor
    touchups: np.ndarray | None = None


def stroke_labels(annotation: Annotation, frame_size: tuple[int, int], grid: tuple[int, int],
                  first_round: bool, roi_margin: int) -> np.ndarray:
    """The annotation on the grid as (h, w) int16 ids, -1 where nothing is known.

    A mask annotation labels every cell (nearest sample at cell centres). Strokes are
    rasterised; in round 1 everything outside the enlarged ROI of the object strokes is
    background (Fig. 6), and outside every box of the round is background too.
    """
    if annotation.mask is not None:
        return mask_to_grid(annotation.mask, grid)
    labels = rasterize(annotation.strokes(), frame_size, grid)
    if annotation.boxes:
        inside = np.zeros(grid, dtype=bool)
        scale_y, scale_x = grid[0] / frame_size[0], grid[1] / frame_size[1]
        for box in annotation.boxes:
            top, bottom = int(np.floor(box.y0 * scale_y)), int(np.ceil(box.y1 * scale_y))
            left, right = int(np.floor(box.x0 * scale_x)), int(np.ceil(box.x1 * scale_x))
            inside[top:bottom, left:right] = True
        labels[~inside & (labels == UNLABELLED)] = 0
    elif first_round:
        outside = first_round_background(labels, roi_margin)
        labels[outside & (labels == UNLABELLED)] = 0
    return labels


def touchup_cells(labels: np.ndarray, shown: np.ndarray, reach: float) -> np.ndarray:
    """(h, w) bool: stroke cells that straddle the boundary of the mask the user drew on.

    A cell's embedding summarises its whole footprint in the frame (8 x 8 pixels of a 480p
    frame at working size 240). A stroke that touches up a mask's edge (a sliver a few pixels
    wide along an object) lies in cells that hold both sides of that edge: as references for
    other frames they match the other side too (a background stroke hugging an object erases
    the object elsewhere). A stroke cell is a touch-up when its centre lies within ``reach``
    cells of a pixel the shown mask gives the stroke's id and of one it does not. Corrections
    of whole regions (far from pixels of their id) and strokes deep inside a region the mask
    already has right (far from other ids) are not touch-ups.

    Args:
        labels: (h, w) int16 stroke ids on the grid (-1 none).
        shown: (H, W) uint8 ids the user saw on the frame when drawing.
        reach: in grid cells; 0 finds none.
    """
    touchups = np.zeros(labels.shape, dtype=bool)
    if reach <= 0:
        return touchups
    rows, cols = cell_centres(shown.shape, labels.shape)
    limit = reach * max(shown.shape[0] / labels.shape[0], shown.shape[1] / labels.shape[1])
    for object_id in np.unique(labels[labels != UNLABELLED]):
        cells = labels == object_id
        same = shown == object_id
        if not same.any() or same.all():
            continue  # an object the mask did not show (new) or showed everywhere: no edge to touch up
        to_same = cv2.distanceTransform((~same).astype(np.uint8), cv2.DIST_L2, 3)[rows][:, cols]
        to_other = cv2.distanceTransform(same.astype(np.uint8), cv2.DIST_L2, 3)[rows][:, cols]
        touchups |= cells & (to_same < limit) & (to_other < limit)
    return touchups


def cell_centres(frame_size: tuple[int, ...], grid: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The frame pixels (rows, columns) at the centres of a (h, w) grid's cells."""
    (height, width), (grid_h, grid_w) = frame_size[:2], grid[:2]
    rows = np.minimum(((np.arange(grid_h) + 0.5) * height / grid_h).astype(int), height - 1)
    cols = np.minimum(((np.arange(grid_w) + 0.5) * width / grid_w).astype(int), width - 1)
    return rows, cols


def mask_to_grid(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W) ids -> (h, w) int16 ids sampled at the grid cells' centres."""
    rows, cols = cell_centres(mask.shape, grid)
    return mask[rows][:, cols].astype(np.int16)


def channel_masks(labels: np.ndarray, channels: Channels, device: torch.device) -> torch.Tensor:
    """(C, h, w) bool: pixels whose stroke id is each channel's object id."""
    ids = torch.as_tensor(channels.ids, dtype=torch.int16, device=device)
    return torch.from_numpy(labels).to(device)[None] == ids[:, None, None]


def scribble_maps(labels: np.ndarray, channels: Channels, device: torch.device) -> torch.Tensor:
    """(C, h, w) float: +1 on the channel's own strokes, -1 on strokes of any other id, 0 elsewhere.

    One signed channel carries the object's positive and negative annotations, which is what
    a single scribble channel of the interaction head can hold.
    """
    own = channel_masks(labels, channels, device)
    any_stroke = torch.from_numpy(labels != UNLABELLED).to(device)[None]
    return own.float() - (any_stroke & ~own).float()


def head_scribble_maps(annotation: Annotation, labels: np.ndarray, channels: Channels, frame_size: tuple[int, int],
                       encoding: str, roi_margin: int, device: torch.device) -> torch.Tensor:
    """(C, h, w) float: the interaction head's scribble channel in the model's ``encoding``.

    ``signed``: :func:`scribble_maps` of ``labels`` (the round's labels, round-1 ROI background
    included). ``positive``: 1 on each channel's own strokes only, without the ROI background
    (what the authors' weights were trained on). Training and inference both call this, so a
    head learns on the encoding it is used with.
    """
    if encoding == "positive":
        grid = (int(labels.shape[0]), int(labels.shape[1]))
        head_labels = stroke_labels(annotation, frame_size, grid, False, roi_margin)
        return channel_masks(head_labels, channels, device).float()
    if encoding != "signed":
        raise ValueError(f"unknown scribble encoding {encoding!r}: use 'signed' or 'positive'")
    return scribble_maps(labels, channels, device)


def channel_indices(labels: np.ndarray, channels: Channels) -> np.ndarray:
    """(h, w) object ids (all known to ``channels``) -> (h, w) int64 channel indices."""
    lookup = np.zeros(256, dtype=np.int64)
    for index, object_id in enumerate(channels.ids):
        lookup[object_id] = index
    return lookup[np.clip(labels, 0, 255)]


def one_hot(labels: torch.Tensor | None, channels: int, grid: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(C, h, w) float one-hot of channel indices; all background when ``labels`` is None."""
    if labels is None:
        labels = torch.zeros(grid, dtype=torch.long, device=device)
    return F.one_hot(labels.long().to(device), channels).permute(2, 0, 1).float()


def run(model: MANet, embedding: torch.Tensor, annotation: Annotation, channels: Channels,
        previous_labels: torch.Tensor | None, first_round: bool, frame_size: tuple[int, int],
        config: SessionConfig, shown: np.ndarray | None = None) -> InteractionResult:
    """Interaction head on one frame (embedding (E, h, w) float32).

    ``shown``: (H, W) ids of the mask the user drew on, after round 1; strokes along its edges
    are touch-ups (:func:`touchup_cells`, ``config.touchup_reach``): they add their id there
    without contradicting the previous mask, so such a cell is left undecided between the two
    and the mask's edge inside it comes from the frame (the guided filter), not from the whole
    cell going to the stroke's id.
    """
    device = embedding.device
    grid = (int(embedding.shape[1]), int(embedding.shape[2]))
    labels = stroke_labels(annotation, frame_size, grid, first_round, config.roi_margin)
    touchups = None
    if annotation.mask is not None:
        # A full mask is the frame's result as given; confident logits stand in for the head's.
        logits = one_hot(torch.from_numpy(channel_indices(labels, channels)), len(channels), grid, device) * 20.0 - 10.0
    else:
        maps = head_scribble_maps(annotation, labels, channels, frame_size, model.config.interaction_scribbles,
                                  config.roi_margin, device)
        if shown is not None and config.touchup_reach > 0:
            touchups = touchup_cells(labels, shown, config.touchup_reach)
        soft = torch.from_numpy(touchups).to(device)[None] if touchups is not None and touchups.any() else None
        if soft is not None:
            maps = maps.masked_fill(soft, 0.0)  # no reference, no contradiction of the previous mask
        previous = one_hot(previous_labels, len(channels), grid, device)
        logits = model.interaction_logits(embedding[None], maps, previous, first_round=first_round).float()
        if soft is not None:  # each touch-up cell: its stroke's id ties with the cell's best
            stroked = torch.from_numpy(channel_indices(labels, channels))
            own = one_hot(stroked, len(channels), grid, device).bool() & soft
            logits = torch.where(own, logits.max(dim=0, keepdim=True).values.expand_as(logits), logits)
    return InteractionResult(labels, logits, touchups)


def augmented(embedding: torch.Tensor, labels: np.ndarray, channels: Channels, window: int) -> torch.Tensor:
    """Eq 7 for the interactive frame: (C, h, w) float32 at the grid of ``embedding`` (E, h, w).

    Only the global memory reads it, so a session computes it when propagation starts, not
    while the user waits for the interactive frame's mask.
    """
    grid = (int(embedding.shape[1]), int(embedding.shape[2]))
    pooled_masks = pool_masks(channel_masks(labels, channels, embedding.device))
    pooled = augmented_map(pool_embedding(embedding), pooled_masks, window)
    return upsample_maps(pooled, grid).clamp(0, 1)


def augmented_for_round(embedding: torch.Tensor, pending: PendingRound, frame_size: tuple[int, int],
                        config: SessionConfig) -> torch.Tensor:
    """Eq 7 for a pending round's interactive frame, as ``config`` asks: (C, h, w) float32.

    With ``augmented_map_before_roi`` the references are the round's own annotation without the
    round-1 ROI background (the authors' order); otherwise the labels the round used, ROI
    included. ``local_map_order`` picks how the map reaches the stride-4 grid, as for eq 4.
    """
    labels = pending.labels
    if config.augmented_map_before_roi and pending.annotation.mask is None:
        grid = (int(embedding.shape[1]), int(embedding.shape[2]))
        labels = stroke_labels(pending.annotation, frame_size, grid, False, config.roi_margin)
    if config.local_map_order == "pooled":
        return augmented(embedding, labels, pending.channels, config.window)
    pooled = pool_embedding(embedding)
    distances = local_distances(pooled, pooled, config.window)
    return local_matching_authors_order(distances, torch.from_numpy(stroke_channels(labels, pending.channels)),
                                        len(pending.channels), config.window).to(embedding.device)


def stroke_channels(labels: np.ndarray, channels: Channels) -> np.ndarray:
    """(h, w) stroke ids (-1 none) -> (h, w) int64 channel indices, -1 where nothing is known."""
    indices = channel_indices(labels, channels)
    indices[labels == UNLABELLED] = -1
    return indices
