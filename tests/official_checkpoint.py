"""A synthetic stand-in for the authors' released checkpoint: random tensors with the key names and
shapes of ``tests/data/manet_official_state_dict.txt`` (822 entries, ResNet-101 size: ~250 MB)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

KEY_LIST = Path(__file__).resolve().parent / "data" / "manet_official_state_dict.txt"


def official_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape, as listed (``name [d0, d1, ...]`` per line)."""
    shapes = {}
    for line in KEY_LIST.read_text().splitlines():
        key, shape = line.split(" ", 1)
        shapes[key] = tuple(int(size) for size in shape.strip("[] ").split(",") if size.strip())
    return shapes


def synthetic_official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the listed shapes, scaled so activations keep their size through the
    backbone; the two stored copies of the embedding layer are equal, as in the real file."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in official_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif len(shape) == 4:
            state[key] = torch.randn(shape, generator=generator) / math.sqrt(shape[1] * shape[2] * shape[3])
        elif key.endswith("weight"):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=generator)
    copies = {"seperate_conv": "semantic_embedding.0", "bn1": "semantic_embedding.1",
              "embedding_conv": "semantic_embedding.3", "bn2": "semantic_embedding.4"}
    for key in list(state):
        module, _, leaf = key.rpartition(".")
        if module in copies:
            state[f"{copies[module]}.{leaf}"] = state[key]
    return state


def write_synthetic_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save :func:`synthetic_official_state` as a plain ``.pth`` state dict at ``path``."""
    torch.save(synthetic_official_state(seed), path)
    return path
