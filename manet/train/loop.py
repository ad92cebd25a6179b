"""The training loop: SGD with momentum and a poly schedule, bootstrapped CE annealed over
the run, checkpoints that resume exactly, and DistributedDataParallel under ``torchrun``.

Output folder layout (``--out DIR``)::

    DIR/last.safetensors   model weights + config (the file ``load_model(weights=...)`` reads)
    DIR/ema.safetensors    the moving average of the weights (with ``--ema-decay``)
    DIR/optimizer.pt       optimizer state (tensors only, loaded with weights_only=True)
    DIR/state.json         step, training config, model config, provenance (sha256 of the checkpoints just
                           written and of --init, git commit, torch/numpy/EfficientNet package versions)
    DIR/log.jsonl          one JSON object per logged step
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from manet.config import LITE_BACKBONE_BLOCKS, ModelConfig
from manet.errors import CheckpointError
from manet.model.checkpoint import backbone_restorable, last_block_prefixes, load_checkpoint, save_checkpoint
from manet.model.network import MANet
from manet.provenance import efficientnet_weights, file_record, provenance
from manet.simulate.robot import require_drawing, robot_scribbles
from manet.train.augment import PerturbConfig
from manet.train.data import ClipDataset, DavisFolder, FrameDataset, TripletDataset, collate
from manet.train.losses import bootstrap_fraction
from manet.train.steps import InteractionStep, MatchingStep, PropagationStep, RolloutStep

Stage = Literal["projection", "stage1", "rollout", "stage2"]
LogCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (paper values scaled to a CPU budget).

    ``learning_rate`` is the poly schedule's start; ``bootstrap_end`` the hardest-pixel fraction
    reached at ``steps`` (the paper: 100% -> 15%). Stage 1 only: ``train_encoder=False`` trains
    the propagation head alone on a fixed encoder; ``perturb_scale`` scales how badly the
    previous-frame mask is damaged; ``scribble_reference_probability`` is how often the global
    map's reference is a simulated first-round scribble (with the ROI background) instead of
    the reference frame's full mask, as in round 1 of real use; ``previous_from_matching`` is
    how often the previous-frame mask is, instead of damaged ground truth, the previous frame
    segmented by nearest-neighbour matching to the same reference (a prediction with the errors
    real propagation makes, so the head learns when not to copy it). ``ema_decay`` > 0 also
    keeps an exponential moving average of the weights (``ema.safetensors``), which evens out
    where the last high-learning-rate steps happened to leave them. ``keep_every`` > 0 also
    keeps the weights of every that-many-th step (``step-NNNNNN.safetensors``), to choose a
    checkpoint on a validation split afterwards. Rollout stage only: ``rollout_frames`` frames
    per clip (the interactive frame and the frames propagated after it), ``rollout_max_step``
    the largest frame step between them. Projection stage only: ``backbone_blocks`` > 0 also
    fine-tunes the lite backbone's last that-many blocks (their batch-norm statistics stay
    ImageNet's) at ``backbone_lr_scale`` times the learning rate; checkpoints then hold those
    blocks (``ModelConfig.tuned_backbone_blocks``) and the rest of the backbone stays ImageNet's.
    Projection stage only: ``mirror_embedding`` trains on the embedding a session uses with
    ``SessionConfig(mirror_embedding=True)`` (the default): each frame's embedding averaged with
    its mirror image's, flipped back (two encoder passes a frame; a step takes about 1.5x as long).
    """

    stage: Stage = "stage1"
    steps: int = 6000
    batch_size: int = 4
    crop: int = 224
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    bootstrap_end: float = 0.15
    window: int = 12
    composite_probability: float = 0.5
    max_objects: int = 3
    rounds: int = 3
    freeze_backbone: bool = True
    train_encoder: bool = True
    perturb_scale: float = 1.0
    scribble_reference_probability: float = 0.0
    previous_from_matching: float = 0.0
    ema_decay: float = 0.0
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    keep_every: int = 0
    rollout_frames: int = 6
    rollout_max_step: int = 2
    backbone_blocks: int = 0
    backbone_lr_scale: float = 0.1
    mirror_embedding: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.backbone_blocks <= LITE_BACKBONE_BLOCKS:
            raise ValueError(f"backbone_blocks must lie in 0..{LITE_BACKBONE_BLOCKS} (EfficientNet-Lite0's blocks), "
                             f"got {self.backbone_blocks}")
        if self.backbone_blocks and self.stage != "projection":
            raise ValueError("backbone_blocks fine-tunes the lite backbone's last blocks with the projection: "
                             f"use it with the projection stage, not {self.stage!r}")
        if self.mirror_embedding and self.stage != "projection":
            raise ValueError("mirror_embedding trains the projection on mirror-averaged embeddings: "
                             f"use it with the projection stage, not {self.stage!r}")
        if not self.backbone_lr_scale > 0:
            raise ValueError(f"backbone_lr_scale must be a positive factor, got {self.backbone_lr_scale}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup_distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group that ``torchrun`` describes."""
    if not is_distributed():
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def finish_distributed(wait: bool = True) -> None:
    """Leave the process group :func:`setup_distributed` joined (a no-op outside ``torchrun``).

    ``wait``: first wait for every rank (rank 0 may still be writing its checkpoint when the
    others finish). Destroying the group before the interpreter exits matters: a Gloo worker
    thread that outlives it aborts the process (``terminate called without an active
    exception``, SIGABRT), which fails the whole ``torchrun`` job after a finished run.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def build_model(config: TrainConfig, model_config: ModelConfig, init: str | Path | None) -> MANet:
    """The model to train: from ``init`` (e.g. stage 1's result for stage 2) or fresh."""
    torch.manual_seed(config.seed)
    model = load_checkpoint(init) if init is not None else MANet(model_config)
    stage1 = ("encoder.", "propagation_head.") if config.train_encoder else ("propagation_head.",)
    stages: dict[str, tuple[str, ...]] = {"projection": ("encoder.projection",), "stage1": stage1,
                                          "rollout": ("propagation_head.",), "stage2": ("interaction_head.",)}
    trainable = stages[config.stage]
    if config.backbone_blocks > 0:
        blocks = max(config.backbone_blocks, model.config.tuned_backbone_blocks)
        model.config = dataclasses.replace(model.config, tuned_backbone_blocks=blocks)
    tuned = last_block_prefixes(config.backbone_blocks)
    trainable += tuned
    for name, parameter in model.named_parameters():
        frozen_backbone = (config.freeze_backbone and name.startswith("encoder.backbone.")
                           and not name.startswith(tuned))
        parameter.requires_grad = name.startswith(trainable) and not frozen_backbone
    return model


def set_train_mode(model: MANet, keep_backbone_statistics: bool = False) -> None:
    """Train mode for the parts that learn; frozen parts keep their batch-norm statistics, and so
    does the whole backbone with ``keep_backbone_statistics`` (fine-tuning its last blocks)."""
    model.train()
    backbone = getattr(model.encoder, "backbone", None)
    pretrained = set() if backbone is None or not keep_backbone_statistics else {
        id(module) for module in backbone.modules()}
    for module in model.modules():
        frozen = not any(parameter.requires_grad for parameter in module.parameters())
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (frozen or id(module) in pretrained):
            module.eval()


def scaled_perturbation(scale: float) -> PerturbConfig:
    """The default previous-mask damage with sizes and blob probabilities scaled by ``scale``."""
    base = PerturbConfig()
    return dataclasses.replace(
        base, size_relative_limit=base.size_relative_limit * scale,
        max_morph_radius=max(1, round(base.max_morph_radius * scale)), max_shift=max(1, round(base.max_shift * scale)),
        drop_blob_probability=min(0.9, base.drop_blob_probability * scale),
        add_blob_probability=min(0.9, base.add_blob_probability * scale))


class Trainer:
    """Runs ``config.steps`` optimisation steps, resuming from ``out`` when it holds a run."""

    def __init__(self, config: TrainConfig, data_root: str | Path, split: str | Path | None, out: str | Path,
                 model_config: ModelConfig | None = None, init: str | Path | None = None) -> None:
        self.config = config
        self.out = Path(out)
        self.init = None if init is None else Path(init)
        self.resumed_init: dict[str, Any] | None = None  # the init record of the run being resumed
        self.rank, self.world = setup_distributed()
        self.model = build_model(config, model_config or ModelConfig.lite(), init)
        folder = DavisFolder(data_root, split)
        if init is None and self.model.config.feature_projection is not None:
            # A fresh projection starts from the training frames' principal components.
            from manet.train.projection import initialise_projection, sample_frames

            initialise_projection(self.model, sample_frames(folder))
        self.step_module = self._step_module()
        self.wrapped: nn.Module = self.step_module
        if self.world > 1:
            self.wrapped = nn.parallel.DistributedDataParallel(self.step_module)
        head = [p for n, p in self.model.named_parameters() if p.requires_grad and ".backbone." not in n]
        body = [p for n, p in self.model.named_parameters() if p.requires_grad and ".backbone." in n]
        # Fine-tuned backbone blocks learn at backbone_lr_scale x the learning rate.
        groups = [{"params": head, "scale": 1.0}]
        groups += [{"params": body, "scale": config.backbone_lr_scale}] if body else []
        self.optimizer = torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        crop = (config.crop, config.crop)
        if config.stage == "rollout":
            self.dataset: TripletDataset | FrameDataset | ClipDataset = ClipDataset(
                folder, crop, frames=config.rollout_frames, max_step=config.rollout_max_step,
                composite_probability=config.composite_probability, max_objects=config.max_objects, seed=config.seed)
        elif config.stage in ("projection", "stage1"):
            self.dataset = TripletDataset(
                folder, crop, composite_probability=config.composite_probability,
                max_objects=config.max_objects, seed=config.seed, perturb=scaled_perturbation(config.perturb_scale))
        else:
            self.dataset = FrameDataset(folder, crop, composite_probability=config.composite_probability,
                                        seed=config.seed, max_objects=config.max_objects)
        self.step = 0
        # Shadow copy of every floating-point weight and batch-norm statistic, updated each step.
        self.ema: dict[str, torch.Tensor] | None = None
        if config.ema_decay > 0:
            self.ema = {key: value.detach().clone() for key, value in self.model.state_dict().items()
                        if value.is_floating_point()}
        self._resume()

    def _step_module(self) -> nn.Module:
        require_drawing("training")  # both stages draw robot strokes: fail before any data is read
        if self.config.stage == "projection":
            if self.model.config.feature_projection is None:
                raise CheckpointError("the projection stage trains ModelConfig.feature_projection: the model has none; "
                                      "start from the lite preset or from `python -m manet.train.projection`'s output")
            return MatchingStep(self.model, robot_scribbles, self.config.scribble_reference_probability,
                                mirror=self.config.mirror_embedding)
        if self.config.stage == "rollout":
            return RolloutStep(self.model, robot_scribbles, self.config.window,
                               self.config.scribble_reference_probability)
        if self.config.stage == "stage1":
            return PropagationStep(self.model, self.config.window, self.config.scribble_reference_probability,
                                   robot_scribbles, previous_from_matching=self.config.previous_from_matching)

        def first_round(truth: np.ndarray, prediction: np.ndarray, ids: list[int],
                        rng: np.random.Generator) -> list[Any]:
            # Round 1 is the robot against an all-background prediction: positive strokes only.
            return robot_scribbles(truth, np.zeros_like(truth), ids, rng)

        return InteractionStep(self.model, robot_scribbles, first_round, self.config.rounds)

    def _resume(self) -> None:
        state_path = self.out / "state.json"
        if not state_path.is_file():
            return
        state = json.loads(state_path.read_text())
        # A resumed run may start without --init (an authors' .pth is not converted again): keep its record.
        self.resumed_init = (state.get("provenance") or {}).get("init")
        if state.get("train_config", {}).get("stage") != self.config.stage:
            raise CheckpointError(f"{self.out} holds a {state.get('train_config', {}).get('stage')} run; "
                                  f"use another --out for {self.config.stage}")
        resumed = load_checkpoint(self.out / "last.safetensors")
        self.model.load_state_dict(resumed.state_dict())
        optimizer_state = torch.load(self.out / "optimizer.pt", map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(optimizer_state)
        self.step = int(state["step"])
        if self.ema is not None:
            ema_path = self.out / "ema.safetensors"
            if not ema_path.is_file():
                raise CheckpointError(f"{self.out} has no ema.safetensors: resume without --ema-decay or start anew")
            averaged = load_checkpoint(ema_path).state_dict()
            self.ema = {key: averaged[key].clone() for key in self.ema}

    def learning_rate(self, step: int) -> float:
        return self.config.learning_rate * (1.0 - step / self.config.steps) ** self.config.poly_power

    def batches(self) -> Iterator[dict[str, Any]]:
        """Batches from ``self.step`` on; the order is a pure function of (seed, epoch, rank)."""
        size = self.config.batch_size
        per_epoch = max(1, len(self.dataset) // (size * self.world))
        epoch, offset = divmod(self.step, per_epoch)
        while True:
            self.dataset.set_epoch(epoch)
            order = np.random.default_rng((self.config.seed, epoch)).permutation(len(self.dataset))
            order = order[self.rank::self.world]
            for batch_index in range(offset, per_epoch):
                indices = order[batch_index * size:(batch_index + 1) * size]
                yield collate([self.dataset[int(i)] for i in indices])
            epoch, offset = epoch + 1, 0

    def run(self, on_log: LogCallback | None = None, max_steps: int | None = None) -> Path:
        """Train until ``config.steps`` (or ``max_steps`` more steps); returns the checkpoint path."""
        set_train_mode(self.model, keep_backbone_statistics=self.config.freeze_backbone)
        target = self.config.steps if max_steps is None else min(self.config.steps, self.step + max_steps)
        started, losses = time.perf_counter(), []
        rng = np.random.default_rng((self.config.seed, self.step, self.rank))
        for batch in self.batches():
            if self.step >= target:
                break
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate(self.step) * group.get("scale", 1.0)
            fraction = bootstrap_fraction(self.step, self.config.steps, 1.0, self.config.bootstrap_end)
            loss = self.wrapped(batch, fraction, rng)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"loss became {float(loss)} at step {self.step}; lower --lr and resume")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self._update_ema()
            self.step += 1
            losses.append(float(loss.detach()))
            if self.step % self.config.log_every == 0 or self.step == target:
                self._log({"step": self.step, "loss": float(np.mean(losses)), "lr": self.learning_rate(self.step - 1),
                           "top_fraction": fraction, "seconds": time.perf_counter() - started}, on_log)
                losses = []
            kept = self.config.keep_every > 0 and self.step % self.config.keep_every == 0
            if self.step % self.config.checkpoint_every == 0 or kept or self.step == target:
                self.save()
        return self.out / "last.safetensors"

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        weight = 1.0 - self.config.ema_decay
        with torch.no_grad():
            current = self.model.state_dict()
            for key, average in self.ema.items():
                average.lerp_(current[key].detach(), weight)

    def averaged_model(self) -> MANet:
        """A copy of the model holding the moving-average weights (needs ``ema_decay`` > 0)."""
        if self.ema is None:
            raise ValueError("this run keeps no moving average: set ema_decay > 0")
        model = MANet(self.model.config)
        state = self.model.state_dict()
        state.update(self.ema)
        model.load_state_dict(state)
        return model

    def save(self) -> None:
        """Write weights, optimizer state and step atomically (rank 0 only)."""
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        extra = {"stage": self.config.stage, "step": self.step, "train_config": self.config.to_dict()}
        save_checkpoint(self.model, self.out / "last.safetensors", extra=extra,
                        include_backbone=not self.config.freeze_backbone)
        if self.ema is not None:
            save_checkpoint(self.averaged_model(), self.out / "ema.safetensors", extra={**extra, "ema": True},
                            include_backbone=not self.config.freeze_backbone)
        if self.config.keep_every > 0 and self.step % self.config.keep_every == 0:
            # Snapshots to choose from on a validation split after the run.
            save_checkpoint(self.model, self.out / f"step-{self.step:06d}.safetensors", extra=extra,
                            include_backbone=not self.config.freeze_backbone)
        temporary = self.out / "optimizer.pt.tmp"
        torch.save(self.optimizer.state_dict(), temporary)
        temporary.replace(self.out / "optimizer.pt")
        state = {"step": self.step, "train_config": self.config.to_dict(), "model_config": self.model.config.to_dict(),
                 "provenance": self.provenance()}
        temporary = self.out / "state.json.tmp"
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.out / "state.json")

    def provenance(self) -> dict[str, Any]:
        """What the saved run consists of: sha256 of ``last.safetensors`` (``weights``), of
        ``ema.safetensors`` and of the ``init`` checkpoint, the ImageNet backbone file a lite encoder
        is restored from (checkpoints leave it out), the git commit and package versions."""
        uses_package_backbone = self.config.freeze_backbone and backbone_restorable(self.model.config)
        return provenance(file_record(self.out / "last.safetensors"),
                          ema=file_record(self.out / "ema.safetensors") if self.ema is not None else None,
                          init=self.resumed_init if self.init is None else file_record(self.init),
                          backbone=efficientnet_weights() if uses_package_backbone else None)

    def _log(self, record: dict[str, Any], on_log: LogCallback | None) -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if on_log is not None:
            on_log(record)
