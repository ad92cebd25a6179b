"""The trained feature projection of the lite encoder: config, encoder output, PCA start, training,
checkpoints and the snapshots kept for checkpoint choice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from data_synthetic import make_synthetic_davis

from manet.config import ModelConfig
from manet.model.checkpoint import load_checkpoint, save_checkpoint
from manet.model.encoder import FEATURE_BLOCKS_CHANNELS, FeatureEncoder
from manet.model.network import MANet
from manet.train.loop import TrainConfig, Trainer
from manet.train.projection import initial_model, main, pca_projection

RANDOM_BACKBONE = dict(pretrained_backbone=False)
# The lite encoder without a projection: the frozen features themselves.
FROZEN = dataclasses.replace(ModelConfig.lite(), feature_projection=None, embedding_dim=360, **RANDOM_BACKBONE)


def projected(dim: int) -> ModelConfig:
    return dataclasses.replace(ModelConfig.lite(), feature_projection=dim, embedding_dim=dim, **RANDOM_BACKBONE)


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("size", [(48, 64), (50, 70), (97, 131), (240, 427)])
def test_projection_before_upsampling_equals_projecting_the_upsampled_features(size: tuple[int, int]) -> None:
    """decode() projects each block before its height pass and rebuilds the upsampled norm from
    neighbouring rows: the same embedding as projecting the 360 frozen channels at stride 4,
    gradients included (training goes through it)."""
    torch.manual_seed(0)
    model = MANet(projected(24)).eval()
    encoder = model.encoder
    assert isinstance(encoder, FeatureEncoder) and encoder.projection is not None
    with torch.no_grad():
        encoder.projection.weight.normal_()
        encoder.projection.bias.normal_()
        encoder.projection_scale.fill_(1.3)
        features = encoder.backbone(torch.randn(2, 3, *size))
    direct = encoder.project(encoder.frozen_features(features))
    fast = encoder.decode(features)
    assert fast.shape == direct.shape == (2, 24, -(-size[0] // 4), -(-size[1] // 4))
    torch.testing.assert_close(fast, direct, atol=2e-5, rtol=1e-4)
    grad_fast = torch.autograd.grad(fast.square().sum(), encoder.projection.weight)[0]
    grad_direct = torch.autograd.grad(direct.square().sum(), encoder.projection.weight)[0]
    torch.testing.assert_close(grad_fast, grad_direct, atol=1e-3, rtol=1e-3)


def test_config_refuses_a_projection_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="equal embedding_dim"):
        dataclasses.replace(ModelConfig.lite(), feature_projection=64)
    with pytest.raises(ValueError, match="1..360"):
        dataclasses.replace(ModelConfig.lite(), feature_projection=400, embedding_dim=400)
    with pytest.raises(ValueError, match="'lite' encoder"):
        dataclasses.replace(ModelConfig.tiny(), feature_projection=8)
    config = projected(32)
    assert ModelConfig.from_dict(config.to_dict()) == config, "a projected lite config is not the decoder variant"
    old = {key: value for key, value in ModelConfig.lite().to_dict().items() if key != "feature_projection"}
    assert ModelConfig.from_dict(old).feature_projection is None, "configs saved before the field read as no projection"


def test_projected_embedding_has_the_learned_length_and_fewer_channels() -> None:
    model = MANet(projected(16)).eval()
    encoder = model.encoder
    assert isinstance(encoder, FeatureEncoder) and encoder.projection_scale is not None
    with torch.no_grad():
        encoder.projection_scale.fill_(1.7)
        embedding = model.embed(torch.from_numpy(frames(1)[0])[None])
    assert embedding.shape == (1, 16, 12, 16)
    assert torch.allclose(embedding[0].norm(dim=0), torch.full((12, 16), 1.7), atol=1e-4)
    trainable = {name for name, parameter in model.encoder.named_parameters() if parameter.requires_grad}
    assert trainable == {"projection.weight", "projection.bias", "projection_scale"}, trainable


def test_pca_start_spans_the_features_top_components() -> None:
    model = MANet(projected(8)).eval()
    weight, bias = pca_projection(model, frames(3), 8, pixels_per_frame=10_000)
    components = weight[:, :, 0, 0].double()
    assert torch.allclose(components @ components.t(), torch.eye(8, dtype=torch.float64), atol=1e-4), "orthonormal rows"
    encoder = model.encoder
    assert isinstance(encoder, FeatureEncoder)
    with torch.no_grad():
        features = torch.cat([encoder.frozen_features(encoder.backbone(model.preprocess(torch.from_numpy(f)[None])))[0]
                              .flatten(1).t() for f in frames(3)]).double()
    centred = features - features.mean(0)
    captured = ((centred @ components.t()) ** 2).sum() / (centred ** 2).sum()
    # The top 8 of 360 directions hold more variance than any 8 random orthonormal directions.
    random = torch.linalg.qr(torch.randn(360, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    assert captured > 3 * ((centred @ random) ** 2).sum() / (centred ** 2).sum()
    projected_mean = features.mean(0) @ components.t() + bias.double()
    assert projected_mean.abs().max() < 1e-3, "the bias centres the projected features"
    with pytest.raises(ValueError, match="'lite' encoder"):
        pca_projection(MANet(ModelConfig.tiny()), frames(1), 4)
    with pytest.raises(ValueError, match="no frames"):
        pca_projection(model, [], 8)


def test_initial_model_is_matching_on_the_projection_and_round_trips(tmp_path: Path) -> None:
    model = initial_model(frames(2), 12, base=FROZEN)
    assert model.config.feature_projection == 12 and model.config.embedding_dim == 12
    assert float(model.propagation_head.classifier.weight.detach().abs().sum()) == 0.0, "the heads start as matching"
    path = save_checkpoint(model, tmp_path / "init.safetensors", include_backbone=True)
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert FEATURE_BLOCKS_CHANNELS == 360


def test_stage1_trains_the_projection_keeps_snapshots_and_the_cli_writes_an_init(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = make_synthetic_davis(tmp_path / "davis", sequences=2, frames=5, height=64, width=64, objects=1, seed=4)
    init = tmp_path / "init.safetensors"
    assert main(["--data", str(data), "--dim", "8", "--frames-per-sequence", "2", "--out", str(init)]) == 0
    start = load_checkpoint(init)
    assert start.config.feature_projection == 8
    config = TrainConfig(steps=4, batch_size=1, crop=48, window=2, log_every=1, checkpoint_every=3, keep_every=2,
                         seed=0)
    trainer = Trainer(config, data, None, tmp_path / "run", start.config, init=init)
    trainer.run()
    trained = trainer.model.state_dict()
    assert not torch.equal(trained["encoder.projection.weight"], start.state_dict()["encoder.projection.weight"])
    assert torch.equal(trained["encoder.backbone._conv_stem.weight"],
                       start.state_dict()["encoder.backbone._conv_stem.weight"]), "the backbone stays frozen"
    kept = sorted(path.name for path in (tmp_path / "run").glob("step-*.safetensors"))
    assert kept == ["step-000002.safetensors", "step-000004.safetensors"]
    snapshot = load_checkpoint(tmp_path / "run" / "step-000004.safetensors").state_dict()
    assert torch.equal(snapshot["encoder.projection.weight"], trained["encoder.projection.weight"])


def test_a_fresh_run_starts_its_projection_from_the_principal_components(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = make_synthetic_davis(tmp_path / "davis", sequences=1, frames=4, height=48, width=48, objects=1, seed=5)
    config = TrainConfig(steps=1, batch_size=1, crop=32, window=2, seed=0)
    trainer = Trainer(config, data, None, tmp_path / "run", projected(6))
    encoder = trainer.model.encoder
    assert isinstance(encoder, FeatureEncoder) and encoder.projection is not None
    rows = encoder.projection.weight.detach()[:, :, 0, 0]
    assert torch.allclose(rows @ rows.t(), torch.eye(6), atol=1e-4), "not the default random init"
    with pytest.raises(ValueError, match="no feature projection"):
        from manet.train.projection import initialise_projection

        initialise_projection(MANet(FROZEN), frames(1))


def test_projection_stage_trains_only_the_projection_through_matching(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = make_synthetic_davis(tmp_path / "davis", sequences=2, frames=5, height=64, width=64, objects=2, seed=6)
    config = TrainConfig(stage="projection", steps=3, batch_size=2, crop=48, window=2, log_every=1, seed=0,
                         scribble_reference_probability=1.0)
    trainer = Trainer(config, data, None, tmp_path / "run", projected(8))
    before = {key: value.clone() for key, value in trainer.model.state_dict().items()}
    trainer.run()
    after = trainer.model.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert {"encoder.projection.weight", "encoder.projection.bias", "encoder.projection_scale"} <= changed
    assert all(key.startswith("encoder.projection") for key in changed), changed
    with pytest.raises(ValueError, match="has none"):
        Trainer(config, data, None, tmp_path / "plain", FROZEN)


def test_command_lines_refuse_bad_input_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "missing"), "--dim", "8", "--out", str(tmp_path / "init.safetensors")]) == 2
    assert "not a DAVIS-layout folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--data", str(tmp_path), "--dim", "0", "--out", str(tmp_path / "init.safetensors")])
    assert exited.value.code == 2 and "--dim must lie in 1..360" in capsys.readouterr().err
    assert not (tmp_path / "init.safetensors").exists()
    data = make_synthetic_davis(tmp_path / "davis", sequences=1, frames=3, height=32, width=32, objects=1, seed=7)
    import argparse

    from manet.train.cli import add_parser
    from manet.train.cli import main as train_main

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "projection", "--data", str(data), "--preset", "tiny",
                              "--out", str(tmp_path / "run"), "--steps", "1"])
    assert train_main(args) == 2
    assert "the model has none" in capsys.readouterr().err
    args = parser.parse_args(["train", "projection", "--data", str(data), "--out", str(tmp_path / "run"),
                              "--steps", "1", "--backbone-blocks", "17"])
    assert train_main(args) == 2
    assert "manet train: error: backbone_blocks must lie in 0..16" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_backbone_blocks_fine_tune_the_last_blocks_and_checkpoints_hold_only_those(tmp_path: Path) -> None:
    """``--backbone-blocks 2`` trains blocks 14 and 15 with the projection (their batch-norm
    statistics stay ImageNet's); a checkpoint holds those two blocks, and loading it restores the
    rest of the backbone from the ImageNet package with the tuned blocks on top."""
    torch.set_num_threads(1)
    data = make_synthetic_davis(tmp_path / "davis", sequences=2, frames=5, height=64, width=64, objects=2, seed=6)
    config = TrainConfig(stage="projection", steps=2, batch_size=2, crop=48, window=2, log_every=1, seed=0,
                         scribble_reference_probability=1.0, backbone_blocks=2)
    trainer = Trainer(config, data, None, tmp_path / "run", dataclasses.replace(projected(8), pretrained_backbone=True))
    assert trainer.model.config.tuned_backbone_blocks == 2
    imagenet = {key: value.clone() for key, value in trainer.model.state_dict().items()}
    path = trainer.run()
    after = trainer.model.state_dict()
    changed = {key for key in imagenet if not torch.equal(imagenet[key], after[key])}
    tuned = ("encoder.backbone._blocks.14.", "encoder.backbone._blocks.15.")
    assert {"encoder.projection.weight", "encoder.backbone._blocks.14._expand_conv.weight",
            "encoder.backbone._blocks.15._project_conv.weight", "encoder.backbone._blocks.15._bn2.weight"} <= changed
    assert all(key.startswith(("encoder.projection", *tuned)) for key in changed), changed
    assert not any("running_" in key for key in changed), "batch-norm statistics must stay ImageNet's"

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        stored = set(handle.keys())
        assert handle.metadata()["backbone"] == "imagenet"
    backbone_keys = {key for key in stored if key.startswith("encoder.backbone.")}
    assert backbone_keys and all(key.startswith(tuned) for key in backbone_keys), sorted(backbone_keys)[:3]
    loaded = load_checkpoint(path)
    assert loaded.config.tuned_backbone_blocks == 2
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, after[key]), key
    from manet.train.export import main as export

    assert export(["--base", str(path), "--out", str(tmp_path / "shipped.safetensors")]) == 0
    for key, value in load_checkpoint(tmp_path / "shipped.safetensors").state_dict().items():
        assert torch.equal(value, after[key]), key

    plain = dataclasses.replace(projected(8), pretrained_backbone=True)
    untuned = MANet(plain)
    untuned.load_state_dict(after)
    save_checkpoint(untuned, tmp_path / "untuned.safetensors", include_backbone=False)
    with safe_open(str(tmp_path / "untuned.safetensors"), framework="pt") as handle:
        assert not any(key.startswith("encoder.backbone.") for key in handle.keys())


def test_backbone_blocks_are_checked() -> None:
    with pytest.raises(ValueError, match="tuned_backbone_blocks must lie in 0..16"):
        dataclasses.replace(projected(8), tuned_backbone_blocks=17)
    with pytest.raises(ValueError, match="needs the 'lite' encoder with a feature_projection"):
        dataclasses.replace(FROZEN, tuned_backbone_blocks=1)
    with pytest.raises(ValueError, match="use it with the projection stage"):
        TrainConfig(stage="stage1", backbone_blocks=1)
    with pytest.raises(ValueError, match="backbone_blocks must lie in 0..16"):
        TrainConfig(stage="projection", backbone_blocks=-2)
    with pytest.raises(ValueError, match="backbone_lr_scale must be a positive factor"):
        TrainConfig(stage="projection", backbone_blocks=2, backbone_lr_scale=0.0)
    assert ModelConfig.from_dict({k: v for k, v in projected(8).to_dict().items()
                                  if k != "tuned_backbone_blocks"}).tuned_backbone_blocks == 0


def test_mirror_embedding_trains_on_the_embedding_sessions_use(tmp_path: Path) -> None:
    """``TrainConfig(mirror_embedding=True)`` embeds each frame as a session does by default (the
    frame's and its mirror image's embeddings averaged): the result is exactly mirror-symmetric,
    which one pass is not (TensorFlow padding is asymmetric), and it trains the projection."""
    torch.set_num_threads(1)
    from manet.inference.embeddings import mirror_average
    from manet.train.steps import embed_for_training

    model = MANet(projected(8)).eval()
    images = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        plain = embed_for_training(model, images)
        plain_flipped = embed_for_training(model, images.flip(-1)).flip(-1)
        both = embed_for_training(model, images, mirror=True)
        both_flipped = embed_for_training(model, images.flip(-1), mirror=True).flip(-1)
        session = mirror_average(model.encoder(model.preprocess(images)),
                                 model.encoder(model.preprocess(images).flip(-1)).flip(-1))
    assert (plain - plain_flipped).abs().max() > 1e-2, "one pass should not be mirror-symmetric"
    assert torch.allclose(both, both_flipped, atol=1e-5)
    assert torch.allclose(both, session, atol=2e-2), "training and sessions should embed alike"

    data = make_synthetic_davis(tmp_path / "davis", sequences=2, frames=5, height=64, width=64, objects=1, seed=8)
    config = TrainConfig(stage="projection", steps=2, batch_size=1, crop=48, window=2, log_every=1, seed=0,
                         scribble_reference_probability=1.0, mirror_embedding=True)
    trainer = Trainer(config, data, None, tmp_path / "run", projected(8))
    before = trainer.model.state_dict()["encoder.projection.weight"].clone()
    trainer.run()
    assert not torch.equal(before, trainer.model.state_dict()["encoder.projection.weight"])
    import json

    assert json.loads((tmp_path / "run" / "state.json").read_text())["train_config"]["mirror_embedding"] is True
    with pytest.raises(ValueError, match="mirror_embedding trains the projection"):
        TrainConfig(stage="stage1", mirror_embedding=True)
