"""``load_model``: the shipped default weights, a checkpoint of ours, the authors' checkpoint, or random."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from manet.config import ModelConfig, SessionConfig
from manet.errors import CheckpointError
from manet.model.checkpoint import load_checkpoint
from manet.model.network import MANet

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "manet_lite.safetensors"
Preset = Literal["lite", "paper", "tiny"]


def load_model(preset: Preset = "lite", *, weights: str | Path | None | Literal["default"] = "default",
               config: ModelConfig | None = None, checkpoint: str | Path | None = None,
               device: str | torch.device | None = None) -> MANet:
    """Build a MA-Net in eval mode.

    Args:
        preset: ``lite`` (CPU default), ``paper`` (ResNet-101 DeepLabv3+) or ``tiny`` (tests).
        weights: ``"default"`` for the weights shipped with the package (lite only); a path to
            a safetensors checkpoint written by ``manet train``; ``None`` for random heads and
            decoder (with ImageNet backbone weights where the config asks for them).
        config: architecture for ``weights=None``; defaults to the preset's.
        checkpoint: for ``preset="paper"``, the authors' released ``.pth`` state dict, mapped onto
            our modules (loaded with ``weights_only=True``). ``load_model("paper")`` without it (and
            with ``weights="default"``) loads the copy ``manet download paper-weights`` put in the
            cache, and raises ``CheckpointError`` naming that command when there is none.
        device: where to put the model (default CPU; sessions move it to their own device).

    The model carries the session settings its preset was made for
    (:meth:`MANet.recommended_session_config`): ``Session(load_model("paper", checkpoint=...),
    video)`` runs the authors' setup (:meth:`SessionConfig.paper`), the lite preset the default.
    """
    if checkpoint is None and preset == "paper" and weights == "default":
        from manet.download.cache import paper_checkpoint

        checkpoint = paper_checkpoint()  # the cached download; never fetches (the error names the command)
    if checkpoint is not None:
        if preset != "paper":
            raise CheckpointError("checkpoint= loads the authors' released weights: "
                                  "use load_model('paper', checkpoint=...)")
        from manet.model.official import load_official_checkpoint

        model = load_official_checkpoint(checkpoint)
    elif weights is None:
        model = MANet(config or _preset_config(preset))
    else:
        path = DEFAULT_WEIGHTS if weights == "default" else Path(weights)
        if weights == "default" and preset != "lite":
            raise CheckpointError(f"no weights are shipped for the {preset!r} preset: "
                                  "pass weights=PATH or weights=None")
        if weights == "default" and not path.is_file():
            raise CheckpointError(
                f"the default weights file {path} is missing from this installation; reinstall the package, "
                "pass weights=PATH to a checkpoint from `manet train`, or weights=None for an untrained model"
            )
        model = load_checkpoint(path, config)
    if preset == "paper":
        model.session_config = SessionConfig.paper()
    return model.to(device or "cpu").eval()


def _preset_config(preset: Preset) -> ModelConfig:
    if preset == "lite":
        return ModelConfig.lite()
    if preset == "paper":
        return ModelConfig.paper()
    if preset == "tiny":
        return ModelConfig.tiny()
    raise ValueError(f"unknown preset {preset!r}: use 'lite', 'paper' or 'tiny'")
