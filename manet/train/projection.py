"""The starting point of a trained feature projection: the frozen features' principal components.

``ModelConfig.feature_projection = P`` puts a 1x1 convolution from the lite encoder's 360 frozen
channels to P channels in front of the matching maps. This module initialises it from the
features of training frames (the top-P eigenvectors of their covariance, the mean subtracted
by the bias) and writes a checkpoint to start ``manet train stage1 --init`` from (a run without
``--init`` does the same itself); the heads are fresh, with the matching skip, so the model
starts as nearest-neighbour matching on the projected features.

    python -m manet.train.projection --data DAVIS --split splits/train-fit.txt --dim 64 \\
        --out runs/proj64-init.safetensors
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from manet.config import LITE_FEATURE_CHANNELS, ModelConfig
from manet.errors import ManetError
from manet.model.checkpoint import save_checkpoint
from manet.model.encoder import FeatureEncoder
from manet.model.network import MANet
from manet.provenance import provenance
from manet.train.data import DavisFolder

DEFAULT_PIXELS_PER_FRAME = 2000


def pca_projection(model: MANet, frames: Iterable[np.ndarray], dim: int,
                   pixels_per_frame: int = DEFAULT_PIXELS_PER_FRAME,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (P, 360, 1, 1), bias (P,)) projecting the frozen features onto their top-``dim``
    principal components, centred by the bias.

    Args:
        model: a lite model (its encoder's frozen features are what is projected).
        frames: (H, W, 3) uint8 RGB frames to sample pixels from.
        dim: P, how many components.
        pixels_per_frame: pixels sampled uniformly from each frame's feature grid.
    Raises:
        ValueError: not a lite model, ``dim`` outside 1..360, or no frames.
    """
    if model.config.encoder != "lite":
        raise ValueError(f"a feature projection needs the 'lite' encoder, not {model.config.encoder!r}")
    encoder = model.encoder
    assert isinstance(encoder, FeatureEncoder)
    if not 0 < dim <= LITE_FEATURE_CHANNELS:
        raise ValueError(f"dim must lie in 1..{LITE_FEATURE_CHANNELS}, got {dim}")
    generator = torch.Generator().manual_seed(seed)
    samples = []
    training = encoder.backbone.training
    encoder.backbone.eval()  # the features inference sees; batch statistics stay ImageNet's
    try:
        with torch.no_grad():
            for frame in frames:
                images = model.preprocess(torch.from_numpy(np.array(frame))[None])
                features = encoder.frozen_features(encoder.backbone(images))
                pixels = features[0].flatten(1).t()
                chosen = torch.randperm(pixels.shape[0], generator=generator)[:pixels_per_frame]
                samples.append(pixels[chosen].double())
    finally:
        encoder.backbone.train(training)
    if not samples:
        raise ValueError("no frames to compute the principal components from")
    data = torch.cat(samples)
    mean = data.mean(0)
    covariance = (data - mean).t() @ (data - mean) / max(1, data.shape[0] - 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    components = vectors[:, -dim:].flip(1).t()  # (P, 360), largest first
    weight = components.float()[:, :, None, None]
    bias = -(components @ mean).float()
    return weight, bias


def initial_model(frames: Iterable[np.ndarray], dim: int, base: ModelConfig | None = None,
                  pixels_per_frame: int = DEFAULT_PIXELS_PER_FRAME) -> MANet:
    """A lite model with a ``dim``-channel projection from the principal components and fresh heads."""
    import dataclasses

    config = dataclasses.replace(base or ModelConfig.lite(), feature_projection=dim, embedding_dim=dim)
    torch.manual_seed(0)
    model = MANet(config).eval()
    initialise_projection(model, frames, pixels_per_frame)
    return model


def initialise_projection(model: MANet, frames: Iterable[np.ndarray],
                          pixels_per_frame: int = DEFAULT_PIXELS_PER_FRAME) -> None:
    """Set ``model``'s projection (``config.feature_projection`` channels) to the frames'
    principal components, its scale to 1."""
    encoder = model.encoder
    if not isinstance(encoder, FeatureEncoder) or encoder.projection is None or encoder.projection_scale is None:
        raise ValueError("the model has no feature projection: set ModelConfig.feature_projection")
    weight, bias = pca_projection(model, frames, encoder.projection.out_channels, pixels_per_frame)
    with torch.no_grad():
        encoder.projection.weight.copy_(weight)
        assert encoder.projection.bias is not None
        encoder.projection.bias.copy_(bias)
        encoder.projection_scale.fill_(1.0)


def sample_frames(folder: DavisFolder, per_sequence: int = 6) -> Iterator[np.ndarray]:
    """``per_sequence`` frames of every sequence of ``folder``, evenly spread in time."""
    for name in folder.sequences:
        count = folder.num_frames(name)
        for t in np.linspace(0, count - 1, per_sequence).round().astype(int):
            yield folder.frame(name, int(t))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="DAVIS folder (JPEGImages, Annotations)")
    parser.add_argument("--split", type=Path, default=None, help="file with one training sequence a line")
    parser.add_argument("--dim", type=int, default=64, help="P, channels after the projection")
    parser.add_argument("--frames-per-sequence", type=int, default=6)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not 0 < args.dim <= LITE_FEATURE_CHANNELS:
        parser.error(f"--dim must lie in 1..{LITE_FEATURE_CHANNELS}, got {args.dim}")
    if args.frames_per_sequence < 1:
        parser.error(f"--frames-per-sequence must be at least 1, got {args.frames_per_sequence}")
    try:
        frames = sample_frames(DavisFolder(args.data, args.split), args.frames_per_sequence)
        model = initial_model(frames, args.dim)
    except (ManetError, ValueError) as error:  # e.g. no DAVIS folder, a split naming no sequence
        print(f"manet.train.projection: error: {error}", file=sys.stderr)
        return 2
    extra = {"projection": "pca", "split": str(args.split), "provenance": provenance(None)}
    save_checkpoint(model, args.out, extra=extra, include_backbone=False)
    print(f"wrote {args.out}: {args.dim}-channel projection from the principal components")
    return 0


if __name__ == "__main__":
    sys.exit(main())
