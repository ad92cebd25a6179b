"""Loss computations of the two training stages, as modules so DistributedDataParallel can wrap them.

Stage 1 (paper 4.1): the encoder's decoder/embedding and the propagation head learn from
(reference, previous, current) triplets: the reference frame's ground truth is the annotation
(global map), the previous frame's perturbed ground truth is the previous prediction (local
map and mask input).

Rollout: the propagation head learns from its own round 1: the interactive frame segmented by
matching its simulated strokes, then frame after frame propagated with the previous frame's
prediction (detached) as the local map's reference and the mask input, as a session does.

Stage 2: the encoder is frozen; the interaction head learns round by round from simulated
scribbles: round 1 positive strokes against an all-background previous mask (with the
first-round ROI background), later rounds correction strokes against its own prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from manet.inference.embeddings import autocast_context, mirror_average
from manet.inference.interaction import head_scribble_maps, stroke_labels
from manet.inference.scribbles import Annotation, Scribble
from manet.inference.state import Channels
from manet.model.efficientnet import LOW_LEVEL_BLOCK, MID_LEVEL_BLOCK, EfficientNetLite0
from manet.model.heads import SKIP_SCALE
from manet.model.matching import (
    evenly_subsampled,
    global_matching_map,
    local_matching_map,
    pool_embedding,
    pool_labels,
)
from manet.model.network import MANet
from manet.train.losses import bootstrapped_cross_entropy

Robot = Callable[[np.ndarray, np.ndarray, list[int], np.random.Generator], list[Scribble]]


def to_grid(ids: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(..., H, W) int ids -> (..., h, w) by nearest sampling at cell centres."""
    batched = ids.reshape(-1, 1, *ids.shape[-2:]).float()
    resized = F.interpolate(batched, size=grid, mode="nearest").long()
    return resized.reshape(*ids.shape[:-2], *grid)


def one_hot_grid(ids: torch.Tensor, channels: int) -> torch.Tensor:
    """(h, w) ids -> (C, h, w) float one-hot."""
    return F.one_hot(ids.clamp(0, channels - 1), channels).permute(2, 0, 1).float()


def upsampled_loss(logits: torch.Tensor, target: torch.Tensor, top_fraction: float) -> torch.Tensor:
    """Bootstrapped CE of (K, h, w) grid logits upsampled to the (H, W) target."""
    upsampled = F.interpolate(logits[None], size=target.shape[-2:], mode="bilinear", align_corners=False)
    return bootstrapped_cross_entropy(upsampled, target[None], top_fraction)


def grid_local_maps(current: torch.Tensor, previous: torch.Tensor, previous_ids: torch.Tensor, channels: int,
                    window: int) -> torch.Tensor:
    """Eq 4 as a session computes it (pooled order): (E, h, w) embeddings of the current and the
    previous frame and the previous frame's (h, w) ids -> (C, h, w) maps in [0, 1] on the grid."""
    maps = local_matching_map(pool_embedding(current), pool_embedding(previous), pool_labels(previous_ids, channels),
                              window)
    return F.interpolate(maps[None], size=current.shape[-2:], mode="bilinear", align_corners=False)[0].clamp(0, 1)


def embed_for_training(model: MANet, images: torch.Tensor, mirror: bool = False) -> torch.Tensor:
    """Embeddings with autograd only where parameters train.

    The lite backbone's frozen blocks (all of them, or those before the fine-tuned last ones)
    run without autograd under bfloat16 autocast, about twice as fast on CPUs with native bf16;
    the blocks that train and the decoder run in float32. ``mirror``: the embedding a session
    computes with ``SessionConfig.mirror_embedding``, the average of the frames' and their
    mirror images' (flipped back), both passes differentiable.
    """
    if mirror:
        return mirror_average(_embed_once(model, images), _embed_once(model, images.flip(-1)).flip(-1))
    return _embed_once(model, images)


def _embed_once(model: MANet, images: torch.Tensor) -> torch.Tensor:
    encoder = model.encoder
    backbone = getattr(encoder, "backbone", None)
    normalised = model.preprocess(images)
    if not isinstance(backbone, EfficientNetLite0) or not hasattr(encoder, "decode"):
        return encoder(normalised)
    if any(p.requires_grad for p in [*backbone._conv_stem.parameters(), *backbone._bn0.parameters()]):
        return encoder(normalised)
    blocks = len(backbone._blocks)
    first = next((index for index in range(blocks)
                  if any(p.requires_grad for p in backbone._blocks[index].parameters())), blocks)
    taps: dict[int, torch.Tensor] = {}
    with torch.no_grad(), autocast_context(normalised.device, "auto"):
        features = backbone.run_blocks(backbone.stem(normalised.contiguous(memory_format=torch.channels_last)),
                                       0, first, taps)
    taps = {index: tap.float().contiguous() for index, tap in taps.items()}
    features = backbone.run_blocks(features.float().contiguous(), first, blocks, taps)
    decode: Callable[[tuple[torch.Tensor, ...]], torch.Tensor] = encoder.decode  # type: ignore[assignment]
    return decode((taps[LOW_LEVEL_BLOCK], taps[MID_LEVEL_BLOCK], features))


class PropagationStep(nn.Module):
    """forward(batch, top_fraction, rng) -> mean loss over the batch's triplets.

    The global map's reference is the reference frame's ground truth, or, with probability
    ``scribble_probability``, a simulated first-round scribble of it plus the ROI background,
    which is what the global memory holds after round 1 in real use. The previous-frame mask is
    the damaged ground truth of the batch, or, with probability ``previous_from_matching``, the
    previous frame segmented by nearest-neighbour matching to the same reference.
    """

    def __init__(self, model: MANet, window: int, scribble_probability: float = 0.0,
                 robot: Robot | None = None, roi_margin: int = 20, previous_from_matching: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.window = window
        self.scribble_probability = scribble_probability
        self.robot = robot
        self.roi_margin = roi_margin
        self.previous_from_matching = previous_from_matching

    def forward(self, batch: dict[str, Any], top_fraction: float, rng: np.random.Generator) -> torch.Tensor:
        images = batch["images"]  # (B, 3, 3, H, W)
        size = images.shape[0]
        if any(parameter.requires_grad for parameter in self.model.encoder.parameters()):
            embeddings = embed_for_training(self.model, images.flatten(0, 1))
        else:
            with torch.no_grad():
                embeddings = embed_for_training(self.model, images.flatten(0, 1))
        embeddings = embeddings.unflatten(0, (size, 3))
        grid = (int(embeddings.shape[-2]), int(embeddings.shape[-1]))
        losses = []
        for index in range(size):
            channels = int(batch["num_objects"][index]) + 1
            reference, previous, current = embeddings[index]
            masks = batch["masks"][index]
            reference_ids = self._reference_labels(masks[0], channels, grid, rng)
            pixels = reference.flatten(1).t()
            references = [pixels[(reference_ids == c).flatten()] for c in range(channels)]
            global_maps = global_matching_map(current, references)
            if self.previous_from_matching > 0 and rng.random() < self.previous_from_matching:
                with torch.no_grad():
                    previous_ids = global_matching_map(previous.detach(), references).argmin(dim=0)
            else:
                previous_ids = to_grid(batch["previous_mask"][index], grid)
            local_maps = grid_local_maps(current, previous, previous_ids.clamp(0, channels - 1), channels,
                                         self.window)
            logits = self.model.propagation_logits(current[None], global_maps, local_maps,
                                                   one_hot_grid(previous_ids, channels))
            losses.append(upsampled_loss(logits, masks[2], top_fraction))
        return torch.stack(losses).mean()


    def _reference_labels(self, truth: torch.Tensor, channels: int, grid: tuple[int, int],
                          rng: np.random.Generator) -> torch.Tensor:
        """(h, w) reference ids for the global map; -1 where a pixel is no reference."""
        if self.robot is None or rng.random() >= self.scribble_probability:
            return to_grid(truth, grid)
        labels = first_round_labels(self.robot, truth, channels, grid, self.roi_margin, rng)
        return to_grid(truth, grid) if labels is None else labels


def first_round_labels(robot: Robot, truth: torch.Tensor, channels: int, grid: tuple[int, int], roi_margin: int,
                       rng: np.random.Generator) -> torch.Tensor | None:
    """(h, w) ids of the robot's first-round strokes on ``truth`` with the ROI background, -1
    elsewhere (what a session's round 1 references); None when the robot draws nothing."""
    ids = truth.numpy().astype(np.uint8)
    strokes = robot(ids, np.zeros_like(ids), list(range(1, channels)), rng)
    if not strokes:
        return None
    return torch.from_numpy(stroke_labels(Annotation(0, tuple(strokes)), ids.shape, grid, True,
                                          roi_margin).astype(np.int64))


class MatchingStep(nn.Module):
    """forward(batch, top_fraction, rng) -> mean loss of nearest-neighbour matching on a triplet.

    Trains only what the matching maps see (the lite encoder's feature projection), for both of
    their uses in a session: the reference frame matched to its own simulated first-round
    strokes (with the ROI background; what the interaction head's skip adds) and the current
    frame matched to the same strokes (the round-1 global map), or with probability
    ``1 - scribble_probability`` to the reference frame's full mask. Logits are
    ``-SKIP_SCALE x`` the maps, so the learned projection scale sets their contrast.
    """

    def __init__(self, model: MANet, robot: Robot, scribble_probability: float = 1.0, roi_margin: int = 10,
                 mirror: bool = False) -> None:
        super().__init__()
        self.model = model
        self.robot = robot
        self.scribble_probability = scribble_probability
        self.roi_margin = roi_margin
        self.mirror = mirror

    def forward(self, batch: dict[str, Any], top_fraction: float, rng: np.random.Generator) -> torch.Tensor:
        images = batch["images"]  # (B, 3, 3, H, W): reference, previous, current
        size = images.shape[0]
        embeddings = embed_for_training(self.model, images[:, [0, 2]].flatten(0, 1),
                                        mirror=self.mirror).unflatten(0, (size, 2))
        grid = (int(embeddings.shape[-2]), int(embeddings.shape[-1]))
        losses = []
        for index in range(size):
            channels = int(batch["num_objects"][index]) + 1
            reference, current = embeddings[index]
            masks = batch["masks"][index]
            labels = first_round_labels(self.robot, masks[0], channels, grid, self.roi_margin, rng)
            pixels = reference.flatten(1).t()
            if labels is not None:
                stroked = [pixels[(labels == c).flatten()] for c in range(channels)]
                own = global_matching_map(reference, stroked)
                losses.append(upsampled_loss(-SKIP_SCALE * own, masks[0], top_fraction))
            if labels is not None and rng.random() < self.scribble_probability:
                references = stroked
            else:
                ids = to_grid(masks[0], grid)
                references = [pixels[(ids == c).flatten()] for c in range(channels)]
            matched = global_matching_map(current, references)
            losses.append(upsampled_loss(-SKIP_SCALE * matched, masks[2], top_fraction))
        return torch.stack(losses).mean()


class RolloutStep(nn.Module):
    """forward(batch, top_fraction, rng) -> mean loss over the propagated frames of the batch's clips.

    Round 1 as a session runs it with these weights: the robot strokes the interactive frame
    (first image), whose mask is its matching to the strokes (with the ROI background); each
    next frame gets the global map to the strokes (at most ``max_references`` pixels per
    object, as a session keeps), the local map to the previous frame's prediction and that
    prediction as the mask input. The prediction passed on is detached (the head learns to
    correct the inputs it will really see, not to shape them). With probability
    ``1 - scribble_probability`` the references are the interactive frame's full mask instead
    (what later rounds' memories approach).
    """

    def __init__(self, model: MANet, robot: Robot, window: int, scribble_probability: float = 1.0,
                 roi_margin: int = 10, max_references: int | None = 1024) -> None:
        super().__init__()
        self.model = model
        self.robot = robot
        self.window = window
        self.scribble_probability = scribble_probability
        self.roi_margin = roi_margin
        self.max_references = max_references

    def forward(self, batch: dict[str, Any], top_fraction: float, rng: np.random.Generator) -> torch.Tensor:
        images = batch["images"]  # (B, N, 3, H, W), the interactive frame first
        size, frames = images.shape[:2]
        with torch.no_grad():
            embeddings = embed_for_training(self.model, images.flatten(0, 1)).unflatten(0, (size, frames))
        grid = (int(embeddings.shape[-2]), int(embeddings.shape[-1]))
        losses = []
        for index in range(size):
            channels = int(batch["num_objects"][index]) + 1
            clip, masks = embeddings[index], batch["masks"][index]
            labels = first_round_labels(self.robot, masks[0], channels, grid, self.roi_margin, rng)
            pixels = clip[0].flatten(1).t()
            if labels is not None:
                stroked = [evenly_subsampled(pixels[(labels == c).flatten()], self.max_references)
                           for c in range(channels)]
            if labels is not None and rng.random() < self.scribble_probability:
                references = stroked
                previous_ids = global_matching_map(clip[0], stroked).argmin(dim=0)
            else:
                previous_ids = to_grid(masks[0], grid)
                references = [evenly_subsampled(pixels[(previous_ids == c).flatten()], self.max_references)
                              for c in range(channels)]
            for step in range(1, frames):
                current, previous = clip[step], clip[step - 1]
                global_maps = global_matching_map(current, references)
                local_maps = grid_local_maps(current, previous, previous_ids, channels, self.window)
                logits = self.model.propagation_logits(current[None], global_maps, local_maps,
                                                       one_hot_grid(previous_ids, channels))
                losses.append(upsampled_loss(logits, masks[step], top_fraction))
                previous_ids = logits.detach().argmax(dim=0)
        return torch.stack(losses).mean()


class InteractionStep(nn.Module):
    """forward(batch, top_fraction, rng) -> mean loss over ``rounds`` simulated rounds per frame.

    Embeddings are computed without gradient (the encoder is frozen in stage 2). Round r > 1
    takes the model's own previous prediction (detached, with occasional random damage) as the
    previous-round mask and correction strokes from ``robot`` against it.
    """

    def __init__(self, model: MANet, robot: Robot, first_round: Robot, rounds: int = 3, roi_margin: int = 20) -> None:
        super().__init__()
        self.model = model
        self.robot = robot
        self.first_round = first_round
        self.rounds = rounds
        self.roi_margin = roi_margin

    def forward(self, batch: dict[str, Any], top_fraction: float, rng: np.random.Generator) -> torch.Tensor:
        with torch.no_grad():
            embeddings = embed_for_training(self.model, batch["image"])
        grid = (int(embeddings.shape[-2]), int(embeddings.shape[-1]))
        losses = []
        for index in range(embeddings.shape[0]):
            objects = int(batch["num_objects"][index])
            target = batch["mask"][index]
            truth = target.numpy().astype(np.uint8)
            channels = Channels(tuple(range(objects + 1)))
            prediction = np.zeros_like(truth)
            previous = torch.zeros(grid, dtype=torch.long)
            for round_index in range(self.rounds):
                robot = self.first_round if round_index == 0 else self.robot
                strokes = robot(truth, prediction, list(range(objects + 1)), rng)
                if not strokes:
                    break
                labels = stroke_labels(Annotation(0, tuple(strokes)), truth.shape, grid, round_index == 0,
                                       self.roi_margin)
                maps = head_scribble_maps(Annotation(0, tuple(strokes)), labels, channels, truth.shape,
                                          self.model.config.interaction_scribbles, self.roi_margin, embeddings.device)
                logits = self.model.interaction_logits(embeddings[index][None], maps,
                                                       one_hot_grid(previous, len(channels)),
                                                       first_round=round_index == 0)
                losses.append(upsampled_loss(logits, target, top_fraction))
                with torch.no_grad():
                    upsampled = F.interpolate(logits[None], size=truth.shape, mode="bilinear", align_corners=False)
                    prediction = upsampled[0].argmax(0).numpy().astype(np.uint8)
                    previous = logits.argmax(0)
        if not losses:
            return embeddings.sum() * 0.0
        return torch.stack(losses).mean()
