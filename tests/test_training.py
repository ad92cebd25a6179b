"""Training loop: loss goes down, resuming is exact, DDP replicas stay identical."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from data_synthetic import make_synthetic_davis

from manet.config import ModelConfig
from manet.model.checkpoint import load_checkpoint
from manet.model.network import MANet
from manet.train.loop import TrainConfig, Trainer

TINY = dict(batch_size=2, crop=32, window=2, log_every=1, checkpoint_every=100, seed=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_davis(tmp_path_factory.mktemp("davis"), sequences=2, frames=6, height=48, width=64,
                                objects=2, seed=3)


def fixed_batch_loss(trainer: Trainer) -> float:
    """Loss on the same four samples (epoch 0), without updating anything."""
    from manet.train.data import collate

    trainer.dataset.set_epoch(0)
    batch = collate([trainer.dataset[index] for index in range(4)])
    with torch.no_grad():
        return float(trainer.step_module(batch, 1.0, np.random.default_rng(0)))


def test_stage1_loss_decreases_on_a_tiny_dataset(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = TrainConfig(steps=40, learning_rate=0.05, bootstrap_end=1.0, **TINY)
    trainer = Trainer(config, dataset, None, tmp_path / "run", ModelConfig.tiny())
    before = fixed_batch_loss(trainer)
    records: list[dict] = []
    trainer.run(on_log=records.append)
    after = fixed_batch_loss(trainer)
    assert len(records) == 40
    assert after < 0.8 * before, (before, after)
    log_lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log_lines) == 40 and json.loads(log_lines[-1])["step"] == 40
    assert load_checkpoint(tmp_path / "run" / "last.safetensors").config == ModelConfig.tiny()


def test_resume_continues_exactly(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = TrainConfig(steps=6, **TINY)
    straight = Trainer(config, dataset, None, tmp_path / "straight", ModelConfig.tiny())
    straight.run()
    split = Trainer(config, dataset, None, tmp_path / "split", ModelConfig.tiny())
    split.run(max_steps=3)
    resumed = Trainer(config, dataset, None, tmp_path / "split", ModelConfig.tiny())
    assert resumed.step == 3
    resumed.run()
    for (name, first), second in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(first, second, atol=1e-6), name


def test_stage2_trains_only_the_interaction_head(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    stage1 = Trainer(TrainConfig(steps=2, **TINY), dataset, None, tmp_path / "s1", ModelConfig.tiny())
    stage1_path = stage1.run()
    stage2 = Trainer(TrainConfig(stage="stage2", steps=3, **TINY), dataset, None, tmp_path / "s2",
                     init=stage1_path)
    before = {name: value.clone() for name, value in stage2.model.state_dict().items()}
    records: list[dict] = []
    stage2.run(on_log=records.append)
    after = stage2.model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("interaction_head.") for name in changed), changed
    assert all(np.isfinite(record["loss"]) for record in records)


def test_resuming_into_another_stage_is_refused(dataset: Path, tmp_path: Path) -> None:
    Trainer(TrainConfig(steps=1, **TINY), dataset, None, tmp_path / "run", ModelConfig.tiny()).run()
    from manet.errors import CheckpointError

    with pytest.raises(CheckpointError, match="stage1"):
        Trainer(TrainConfig(stage="stage2", steps=1, **TINY), dataset, None, tmp_path / "run", ModelConfig.tiny())


def test_two_process_ddp_keeps_replicas_identical(dataset: Path, tmp_path: Path) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    # --standalone: the launcher binds its rendezvous and the workers' master port to free ports itself, so
    # parallel runs and busy machines cannot collide on a fixed port.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(worker), str(dataset), str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1",
                                 "PYTHONPATH": str(Path(__file__).parent)})
    assert result.returncode == 0, result.stderr[-3000:]
    digests = [(tmp_path / f"rank{rank}.sha256").read_text() for rank in (0, 1)]
    assert digests[0] == digests[1], "gradients were not averaged across processes"
    untrained = Trainer(TrainConfig(steps=1, **TINY), dataset, None, tmp_path / "fresh", ModelConfig.tiny())
    import hashlib

    digest = hashlib.sha256()
    for value in untrained.model.parameters():
        digest.update(value.detach().cpu().numpy().tobytes())
    assert digest.hexdigest() != digests[0], "the replicas trained"


def test_propagation_head_alone_with_scribble_references(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = TrainConfig(steps=3, train_encoder=False, perturb_scale=3.0, scribble_reference_probability=1.0, **TINY)
    trainer = Trainer(config, dataset, None, tmp_path / "run", ModelConfig.tiny())
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trainer.run()
    after = trainer.model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("propagation_head.") for name in changed), changed
    truth = np.zeros((256, 256), np.int64)
    truth[8:72, 8:72] = 1
    labels = trainer.step_module._reference_labels(torch.from_numpy(truth), 2, (64, 64), np.random.default_rng(0))
    assert 0 < int((labels == 1).sum()) < 16 * 16, "a scribble, not the whole mask"
    assert int((labels == 0).sum()) > 0 and bool((labels[-1, -1] == 0)), "the ROI background"


def test_compose_takes_heads_from_runs_on_the_same_encoder(dataset: Path, tmp_path: Path) -> None:
    from manet.errors import CheckpointError
    from manet.train.export import compose

    torch.set_num_threads(1)
    stage1 = Trainer(TrainConfig(steps=2, **TINY), dataset, None, tmp_path / "s1", ModelConfig.tiny()).run()
    stage2 = Trainer(TrainConfig(stage="stage2", steps=2, **TINY), dataset, None, tmp_path / "s2", init=stage1).run()
    composed = compose(stage1, {"interaction_head.": stage2})
    expected = load_checkpoint(stage2).state_dict()
    for name, value in composed.state_dict().items():
        assert torch.equal(value, expected[name]), name
    other = Trainer(TrainConfig(steps=3, **{**TINY, "seed": 5}), dataset, None, tmp_path / "other",
                    ModelConfig.tiny()).run()
    with pytest.raises(CheckpointError, match="different encoder"):
        compose(stage1, {"interaction_head.": other})


def test_matching_skip_is_added_and_composed_per_head(tmp_path: Path) -> None:
    from manet.model.checkpoint import save_checkpoint
    from manet.train.export import compose, with_matching_skip, with_propagation_bound

    plain = save_checkpoint(MANet(ModelConfig.tiny()), tmp_path / "plain.safetensors")
    skipped_model = with_matching_skip(plain)
    assert skipped_model.config.matching_skip == "both"
    original = load_checkpoint(plain).state_dict()
    for name, value in skipped_model.state_dict().items():
        if ".classifier." in name:
            assert torch.count_nonzero(value) == 0, name
        elif name.endswith("skip_scale"):
            assert float(value) == 20.0
        else:
            assert torch.equal(value, original[name]), name
    skipped = save_checkpoint(skipped_model, tmp_path / "skip.safetensors")
    mixed = compose(skipped, {"interaction_head.": plain})
    assert mixed.config.matching_skip == "propagation"
    assert torch.equal(mixed.interaction_head.classifier.weight,
                       load_checkpoint(plain).interaction_head.classifier.weight)
    assert mixed.propagation_head.skip_scale is not None and mixed.interaction_head.skip_scale is None
    assert compose(plain, {"interaction_head.": skipped}).config.matching_skip == "interaction"
    bounded = with_propagation_bound(mixed, 2.0)
    assert bounded.propagation_head.correction_bound == 2.0 and bounded.config.propagation_bound == 2.0
    assert all(torch.equal(value, mixed.state_dict()[key]) for key, value in bounded.state_dict().items())


def test_previous_mask_can_come_from_matching_the_previous_frame(dataset: Path, tmp_path: Path) -> None:
    from manet.model.matching import global_matching_map
    from manet.train.data import collate

    torch.set_num_threads(1)
    config = TrainConfig(steps=2, previous_from_matching=1.0, **TINY)
    trainer = Trainer(config, dataset, None, tmp_path / "run", ModelConfig.tiny())
    seen: list[torch.Tensor] = []
    original = trainer.model.propagation_logits

    def spy(embedding, global_maps, local_maps, previous_masks, stem=None):
        seen.append(previous_masks)
        return original(embedding, global_maps, local_maps, previous_masks)

    trainer.model.propagation_logits = spy  # type: ignore[method-assign]
    trainer.dataset.set_epoch(0)
    batch = collate([trainer.dataset[0]])
    with torch.no_grad():
        loss = trainer.step_module(batch, 1.0, np.random.default_rng(0))
        embeddings = trainer.model.embed(batch["images"][0])  # reference, previous, current
    assert torch.isfinite(loss)
    channels = int(batch["num_objects"][0]) + 1
    reference_ids = torch.nn.functional.interpolate(batch["masks"][0][:1, None].float(), size=embeddings.shape[-2:],
                                                    mode="nearest")[0, 0].long()
    pixels = embeddings[0].flatten(1).t()
    references = [pixels[(reference_ids == c).flatten()] for c in range(channels)]
    expected = global_matching_map(embeddings[1], references).argmin(dim=0)
    assert torch.equal(seen[0].argmax(dim=0), expected), "the previous mask is the matching prediction"
    assert not torch.equal(expected, torch.nn.functional.interpolate(
        batch["previous_mask"][0][None, None].float(), size=embeddings.shape[-2:], mode="nearest")[0, 0].long())


def test_moving_average_of_weights_is_saved_and_resumes(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = TrainConfig(steps=6, ema_decay=0.5, **TINY)
    start = Trainer(config, dataset, None, tmp_path / "fresh", ModelConfig.tiny()).model.state_dict()
    straight = Trainer(config, dataset, None, tmp_path / "straight", ModelConfig.tiny())
    weights: list[dict[str, torch.Tensor]] = []
    original_step = straight.optimizer.step

    def step_and_record(*args, **kwargs):
        result = original_step(*args, **kwargs)
        weights.append({key: value.detach().clone() for key, value in straight.model.state_dict().items()})
        return result

    straight.optimizer.step = step_and_record  # type: ignore[method-assign]
    straight.run()
    name = "propagation_head.classifier.weight"
    expected = start[name].clone()
    for state in weights:
        expected = 0.5 * expected + 0.5 * state[name]
    averaged = load_checkpoint(tmp_path / "straight" / "ema.safetensors").state_dict()
    assert torch.allclose(averaged[name], expected, atol=1e-6)
    assert not torch.allclose(averaged[name], straight.model.state_dict()[name])
    split = Trainer(config, dataset, None, tmp_path / "split", ModelConfig.tiny())
    split.run(max_steps=3)
    resumed = Trainer(config, dataset, None, tmp_path / "split", ModelConfig.tiny())
    resumed.run()
    resumed_average = load_checkpoint(tmp_path / "split" / "ema.safetensors").state_dict()
    for key, value in averaged.items():
        assert torch.allclose(value, resumed_average[key], atol=1e-6), key
    plain = Trainer(TrainConfig(steps=6, **TINY), dataset, None, tmp_path / "split", ModelConfig.tiny())
    with pytest.raises(ValueError, match="ema_decay"):
        plain.averaged_model()


def test_rollout_trains_the_propagation_head_on_its_own_predictions(dataset: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    import dataclasses

    from manet.train import steps

    model_config = dataclasses.replace(ModelConfig.tiny(), matching_skip="both")
    config = TrainConfig(stage="rollout", steps=30, learning_rate=0.05, bootstrap_end=1.0, rollout_frames=3,
                         scribble_reference_probability=1.0, **TINY)
    trainer = Trainer(config, dataset, None, tmp_path / "run", model_config)
    assert trainer.dataset[0]["images"].shape[0] == 3
    seen: list[torch.Tensor] = []
    original = trainer.model.propagation_logits

    def recording(embedding, global_maps, local_maps, previous_masks, stem=None):
        logits = original(embedding, global_maps, local_maps, previous_masks, stem)
        seen.append(previous_masks.detach().clone())
        seen.append(logits.detach().argmax(dim=0))
        return logits

    trainer.model.propagation_logits = recording  # type: ignore[method-assign]
    loss_before = fixed_batch_loss(trainer)
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    # Each clip's second propagated frame takes the first one's prediction as its previous mask.
    assert torch.equal(seen[2].argmax(dim=0), seen[1]), "the prediction is passed on"
    records: list[dict] = []
    trainer.run(on_log=records.append)
    after = trainer.model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("propagation_head.") for name in changed), changed
    assert fixed_batch_loss(trainer) < loss_before, "the loss went down"
    assert isinstance(trainer.step_module, steps.RolloutStep)
