"""Model pieces: encoders' grids, the TF-same padding, heads' fast path, checkpoints, layering."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

import manet
from manet.config import LITE_FEATURE_CHANNELS, LITE_PROJECTION_DIM, ModelConfig
from manet.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from manet.model.encoder import FEATURE_BLOCKS_CHANNELS
from manet.model.heads import SegmentationHead
from manet.model.layers import ASPP, Conv2dSame, EmbeddingLayer
from manet.model.network import MANet


@pytest.mark.parametrize("size", [(240, 427), (97, 131), (64, 64)])
def test_lite_decoder_encoder_output_grid_is_ceil_quarter(size: tuple[int, int]) -> None:
    model = MANet(dataclasses.replace(ModelConfig.lite_decoder(), pretrained_backbone=False)).eval()
    with torch.inference_mode():
        embedding = model.embed(torch.zeros(1, *size, 3, dtype=torch.uint8))
    assert embedding.shape == (1, 100, -(-size[0] // 4), -(-size[1] // 4))
    assert float(embedding.min()) >= 0.0, "the embedding layer ends in ReLU"


def test_same_padding_matches_tensorflow_rule() -> None:
    conv = Conv2dSame(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    # TF SAME on a length-5 input with k=3, s=2: output 3, total padding 2 -> 1 left, 1 right;
    # on length 6: output 3, total padding 1 -> 0 left, 1 right (asymmetric).
    assert conv(torch.ones(1, 1, 5, 5)).shape[-1] == 3
    out = conv(torch.ones(1, 1, 6, 6))
    assert out.shape[-1] == 3
    assert float(out[0, 0, 0, 0]) == 9.0, "no padding on the top-left for an even input"
    assert float(out[0, 0, -1, -1]) == 4.0, "one padded row and column on the bottom-right"


def test_imagenet_backbone_loads_from_installed_package() -> None:
    model = MANet(ModelConfig())
    weight = model.encoder.backbone._conv_stem.weight
    assert weight.shape == (32, 3, 3, 3)
    assert float(weight.abs().sum()) > 0 and float(model.encoder.backbone._bn0.running_var.mean()) != 1.0


def test_head_fast_path_equals_plain_forward() -> None:
    head = SegmentationHead(embedding_dim=6, map_channels=3, width=5, layers=3, kernel=7).eval()
    for module in head.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    embedding = torch.rand(1, 6, 9, 11)
    maps = torch.rand(4, 3, 9, 11)
    with torch.no_grad():
        plain = head(embedding, maps)
        fast = head.forward_from_stem(head.embedding_stem(embedding), maps)
    assert plain.shape == (4, 9, 11)
    assert torch.allclose(plain, fast, atol=1e-5)


def test_checkpoint_round_trip_is_exact(tmp_path) -> None:
    model = manet.load_model("tiny", weights=None)
    path = save_checkpoint(model, tmp_path / "model.safetensors", extra={"steps": 3})
    loaded = load_checkpoint(path)
    for (name, value), (other_name, other) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == other_name and torch.equal(value, other)
    assert loaded.config == model.config
    via_api = manet.load_model(weights=path)
    assert torch.equal(next(via_api.parameters()), next(model.parameters()))


def test_checkpoint_without_backbone_reloads_imagenet(tmp_path) -> None:
    model = MANet(ModelConfig())
    path = save_checkpoint(model, tmp_path / "small.safetensors", include_backbone=False)
    assert path.stat().st_size < 4 * 2**20
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.encoder.backbone._conv_stem.weight, model.encoder.backbone._conv_stem.weight)
    assert torch.equal(loaded.propagation_head.classifier.weight, model.propagation_head.classifier.weight)


def test_bad_checkpoints_are_refused(tmp_path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(manet.CheckpointError):
        manet.load_model(weights=garbage)
    pickle_file = tmp_path / "model.pt"
    torch.save({"a": 1}, pickle_file)
    with pytest.raises(manet.CheckpointError):
        manet.load_model(weights=pickle_file)
    with pytest.raises(manet.CheckpointError):
        manet.load_model(weights=tmp_path / "missing.safetensors")
    tiny = manet.load_model("tiny", weights=None)
    path = save_checkpoint(tiny, tmp_path / "tiny.safetensors")
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    state["interaction_head.classifier.weight"] = torch.zeros(1, 3, 1, 1)
    save_file(state, str(tmp_path / "wrong.safetensors"), metadata=metadata)
    with pytest.raises(manet.CheckpointError, match="wrong shapes"):
        manet.load_model(weights=tmp_path / "wrong.safetensors")
    del state["interaction_head.classifier.bias"]
    state["interaction_head.classifier.weight"] = torch.zeros(1, 8, 1, 1)
    save_file(state, str(tmp_path / "missing_key.safetensors"), metadata=metadata)
    with pytest.raises(manet.CheckpointError, match="missing"):
        manet.load_model(weights=tmp_path / "missing_key.safetensors")


def test_missing_default_weights_fail_clearly(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("manet.loading.DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    with pytest.raises(manet.CheckpointError, match="weights=None"):
        manet.load_model()


def test_import_manet_loads_no_jupyter_packages() -> None:
    code = ("import sys, manet, manet.eval, manet.train, manet.io; "
            "bad = [m for m in ('ipywidgets', 'traitlets', 'anywidget', 'IPython', 'jupyterlab') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


FROZEN_FEATURES = dataclasses.replace(ModelConfig.lite(), feature_projection=None, embedding_dim=LITE_FEATURE_CHANNELS)


def test_lite_encoder_without_projection_embeds_with_frozen_normalised_features() -> None:
    from manet.model.encoder import FEATURE_DISTANCE_SCALE

    model = MANet(FROZEN_FEATURES).eval()
    assert not any(p.requires_grad for p in model.encoder.parameters()), "the embedding is not trained"
    with torch.inference_mode():
        embedding = model.embed(torch.randint(0, 255, (1, 61, 93, 3), dtype=torch.uint8))
    assert embedding.shape == (1, 360, 16, 24)
    norms = embedding[0, :40].norm(dim=0), embedding[0, 40:].norm(dim=0)
    for norm in norms:
        assert torch.allclose(norm, torch.full_like(norm, FEATURE_DISTANCE_SCALE ** 0.5), atol=1e-4)


def test_lite_checkpoint_holds_only_the_heads(tmp_path) -> None:
    model = MANet(ModelConfig.lite())
    path = save_checkpoint(model, tmp_path / "lite.safetensors", include_backbone=False)
    assert path.stat().st_size < 2 * 2**20
    loaded = load_checkpoint(path)
    assert loaded.config == ModelConfig.lite()
    assert torch.equal(loaded.interaction_head.classifier.weight, model.interaction_head.classifier.weight)


def test_a_stroke_on_a_frame_whose_previous_mask_lost_the_object_adds_the_object_there_only() -> None:
    """After round 1 a frame's previous mask can be all background (the object was lost there).
    A stroke adding the object must not turn the whole frame into the object: the previous
    background is kept wherever no stroke contradicts it, as on any other frame."""
    import numpy as np

    from manet.config import SessionConfig
    from manet.inference import interaction
    from manet.inference.scribbles import Annotation, Scribble
    from manet.inference.state import Channels

    model = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="both")).eval()
    embedding = torch.randn(8, 10, 12, generator=torch.Generator().manual_seed(5))
    annotation = Annotation(3, (Scribble(1, [[8.0, 8.0], [24.0, 8.0]]),))  # one positive stroke only
    lost = torch.zeros(10, 12, dtype=torch.long)  # the previous round's mask: all background
    config = SessionConfig(touchup_reach=0.0)
    with torch.no_grad():
        later = interaction.run(model, embedding, annotation, Channels((0, 1)), lost, first_round=False,
                                frame_size=(40, 48), config=config)
    stroked = later.labels == 1
    assert stroked.any()
    ids = later.logits.argmax(dim=0).numpy()
    assert np.array_equal(ids == 1, stroked)  # the stroke's cells, and nothing the stroke did not touch
    # In round 1 nothing is known besides the stroke (the ROI margin covers this small grid, so
    # no background either): matching decides, and more than the stroke's cells go to it.
    with torch.no_grad():
        first = interaction.run(model, embedding, annotation, Channels((0, 1)), None, first_round=True,
                                frame_size=(40, 48), config=config)
    assert (first.logits.argmax(dim=0).numpy() == 1).sum() > stroked.sum()


def test_matching_skip_starts_as_nearest_neighbour_matching() -> None:
    from manet.model.matching import global_matching_map, stroke_matching_map

    model = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="both")).eval()
    generator = torch.Generator().manual_seed(3)
    embedding = torch.randn(1, 8, 6, 7, generator=generator)
    strokes = torch.zeros(2, 6, 7)
    strokes[1, 2, 2:5] = 1.0
    strokes[0, 5, :] = 1.0
    strokes[0][strokes[1] > 0] = -1.0
    strokes[1][strokes[0] > 0] = -1.0
    first_round = torch.zeros(2, 6, 7)
    first_round[0] = 1.0
    with torch.no_grad():
        logits = model.interaction_logits(embedding, strokes, first_round, first_round=True)
        expected = -20.0 * stroke_matching_map(embedding[0], strokes, first_round, True)
        assert torch.allclose(logits, expected, atol=1e-5)
        pixels = embedding[0].flatten(1).t()
        assert torch.allclose(expected, -20.0 * global_matching_map(
            embedding[0], [pixels[strokes[0].flatten() > 0], pixels[strokes[1].flatten() > 0]]), atol=1e-5)
        # After round 1 a previous-round pixel no stroke contradicts is its own nearest reference.
        previous = torch.zeros(2, 6, 7)
        previous[1, :3] = 1.0
        previous[0, 3:] = 1.0
        later = stroke_matching_map(embedding[0], strokes, previous, False)
        assert torch.all(later[1, :2] == 0) and torch.all(later[1, 3:5] > 0)
        global_maps = torch.rand(2, 6, 7, generator=generator)
        local_maps = torch.rand(2, 6, 7, generator=generator)
        propagated = model.propagation_logits(embedding, global_maps, local_maps, previous)
        assert torch.allclose(propagated, -20.0 * global_maps, atol=1e-5)
    names = [name for name, _ in model.named_parameters()]
    assert "propagation_head.skip_scale" in names and "interaction_head.skip_scale" in names
    with pytest.raises(ValueError, match="matching skip"):
        model.propagation_head.add_skip(torch.zeros(2, 6, 7), None)
    one = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="propagation"))
    assert one.propagation_head.skip_scale is not None and one.interaction_head.skip_scale is None
    with pytest.raises(ValueError, match="matching_skip must be"):
        ModelConfig(matching_skip="yes")  # type: ignore[arg-type]


def test_an_untrained_head_is_skipped_at_inference_with_the_same_logits() -> None:
    model = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="both")).eval()
    generator = torch.Generator().manual_seed(5)
    embedding = torch.randn(1, 8, 6, 7, generator=generator)
    global_maps, local_maps = torch.rand(2, 6, 7, generator=generator), torch.rand(2, 6, 7, generator=generator)
    previous = torch.zeros(2, 6, 7)
    previous[0] = 1.0
    calls = []
    model.propagation_head.classifier.register_forward_hook(lambda *_: calls.append(1))
    with torch.inference_mode():
        assert model.propagation_head.adds_nothing() and model.propagation_stem(embedding) is None
        skipped = model.propagation_logits(embedding, global_maps, local_maps, previous)
    assert not calls, "an all-zero classifier: the layers do not run"
    with torch.no_grad(), torch.enable_grad():
        assert not model.propagation_head.adds_nothing(), "with autograd on (training) the head runs"
        full = model.propagation_logits(embedding, global_maps, local_maps, previous)
    assert calls and torch.allclose(skipped, full.detach(), atol=1e-6)
    with torch.no_grad():
        model.propagation_head.classifier.bias.fill_(0.5)
    with torch.inference_mode():
        assert not model.propagation_head.adds_nothing(), "a trained classifier runs"
        trained = model.propagation_logits(embedding, global_maps, local_maps, previous)
    assert not torch.allclose(trained, skipped)


def test_propagation_correction_is_bounded() -> None:
    model = MANet(dataclasses.replace(ModelConfig.tiny(), matching_skip="both", propagation_bound=2.0)).eval()
    generator = torch.Generator().manual_seed(4)
    embedding = torch.randn(1, 8, 6, 7, generator=generator)
    global_maps = torch.rand(2, 6, 7, generator=generator)
    maps = (global_maps, torch.rand(2, 6, 7, generator=generator), torch.rand(2, 6, 7, generator=generator))
    with torch.no_grad():
        assert torch.allclose(model.propagation_logits(embedding, *maps), -20.0 * global_maps, atol=1e-5)
        model.propagation_head.classifier.bias.fill_(50.0)  # a huge correction...
        corrected = model.propagation_logits(embedding, *maps)
    correction = corrected + 20.0 * global_maps
    assert torch.all(correction <= 2.0) and torch.all(correction > 1.9), "...is held within the bound"
    with pytest.raises(ValueError, match="propagation_bound"):
        ModelConfig(propagation_bound=0.0)
    assert ModelConfig.lite().propagation_bound == 3.0


def test_default_config_is_the_shipped_lite_model_and_paper_is_the_papers() -> None:
    assert ModelConfig() == ModelConfig.lite()
    shipped = read_metadata(manet.DEFAULT_WEIGHTS)["config"]
    assert shipped.architecture() == ModelConfig(), "ModelConfig() builds what manet.load_model() loads"
    assert manet.load_model(config=ModelConfig()).config == shipped
    paper = ModelConfig.paper()
    assert (paper.encoder, paper.embedding_dim, paper.decoder_channels, paper.head_width, paper.head_layers,
            paper.head_kernel, paper.matching_skip) == ("paper", 100, 256, 256, 4, 7, "none")
    assert ModelConfig.lite().encoder == "lite" and ModelConfig.lite_decoder().encoder == "lite-decoder"
    assert FEATURE_BLOCKS_CHANNELS == LITE_FEATURE_CHANNELS
    assert ModelConfig().embedding_dim == ModelConfig().feature_projection == LITE_PROJECTION_DIM


def test_weights_saved_before_the_projection_under_the_old_encoder_name_load(tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    model = MANet(FROZEN_FEATURES)
    path = save_checkpoint(model, tmp_path / "new.safetensors", include_backbone=False)
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    # What earlier versions wrote: the old encoder name and no feature_projection field.
    old = {key: value for key, value in json.loads(metadata["config"]).items() if key != "feature_projection"}
    metadata["config"] = json.dumps({**old, "encoder": "lite-features"})
    save_file(load_file(str(path)), str(tmp_path / "old.safetensors"), metadata=metadata)
    loaded = load_checkpoint(tmp_path / "old.safetensors")
    assert loaded.config == FROZEN_FEATURES and type(loaded.encoder).__name__ == "FeatureEncoder"
    assert loaded.encoder.projection is None
    assert torch.equal(loaded.propagation_head.classifier.bias, model.propagation_head.classifier.bias)


def test_old_encoder_names_are_read_and_refused_when_built_directly() -> None:
    old_decoder = {**ModelConfig.lite_decoder().to_dict(), "encoder": "lite"}  # before the rename
    assert ModelConfig.from_dict(old_decoder) == ModelConfig.lite_decoder()
    old_lite = {**ModelConfig.lite().to_dict(), "encoder": "lite-features"}
    assert ModelConfig.from_dict(old_lite) == ModelConfig.lite()
    assert ModelConfig.from_dict(ModelConfig.lite().to_dict()) == ModelConfig.lite()
    without_skip = {key: value for key, value in ModelConfig.lite_decoder().to_dict().items()
                    if key not in ("matching_skip", "propagation_bound")}
    assert ModelConfig.from_dict({**without_skip, "encoder": "lite"}) == ModelConfig.lite_decoder()
    with pytest.raises(ValueError, match="now called 'lite'"):
        ModelConfig(encoder="lite-features")  # type: ignore[arg-type]


def test_a_checkpoint_saved_with_the_old_decoder_name_loads(tmp_path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    config = dataclasses.replace(ModelConfig.lite_decoder(), head_width=8, head_layers=1, pretrained_backbone=False)
    model = MANet(config)
    path = save_checkpoint(model, tmp_path / "new.safetensors", include_backbone=False)
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    assert metadata["backbone"] == "imagenet", "the decoder variant's backbone is restored on loading too"
    metadata["config"] = json.dumps({**json.loads(metadata["config"]), "encoder": "lite"})
    save_file(load_file(str(path)), str(tmp_path / "old.safetensors"), metadata=metadata)
    loaded = load_checkpoint(tmp_path / "old.safetensors")
    assert loaded.config == config
    assert torch.equal(loaded.encoder.aspp.image_pool[1].bias, model.encoder.aspp.image_pool[1].bias)


def test_both_aspp_variants_share_one_module_with_their_checkpoint_keys() -> None:
    paper = ASPP(16, 4)
    lite = ASPP(16, 4, separable=True, pool_norm=False)
    paper_keys, lite_keys = paper.state_dict(), lite.state_dict()
    # The paper's variant: full 3x3 atrous convs and a conv + BN image-pooling branch (the authors' keys).
    assert paper_keys["branches.1.0.weight"].shape == (4, 16, 3, 3) and paper.branches[3][0].dilation == (18, 18)
    assert "image_pool.1.running_mean" in paper_keys and "image_pool.0.bias" not in paper_keys
    # The lite decoder's: depthwise-separable branches, a biased conv in the image-pooling branch.
    assert lite_keys["branches.1.0.0.weight"].shape == (16, 1, 3, 3) and lite.branches[1][0][0].dilation == (6, 6)
    assert lite_keys["image_pool.1.bias"].shape == (4,) and not any("running" in k for k in lite_keys
                                                                    if k.startswith("image_pool"))
    assert paper_keys["project.0.weight"].shape == lite_keys["project.0.weight"].shape == (4, 20, 1, 1)
    features = torch.rand(2, 16, 5, 7)
    for module in (paper.eval(), lite.eval()):
        with torch.no_grad():
            pooled = module.image_pool(features)
            out = module(features)
        assert pooled.shape == (2, 4, 1, 1) and out.shape == (2, 4, 5, 7)
    with torch.no_grad():  # the image-pooling branch sees the mean of the whole map
        shuffled = features[:, :, torch.randperm(5)][:, :, :, torch.randperm(7)]
        assert torch.allclose(paper.image_pool(features), paper.image_pool(shuffled), atol=1e-6)


def test_embedding_layer_lives_with_the_shared_layers() -> None:
    from manet.model import encoder, resnet_deeplab

    assert encoder.EmbeddingLayer is resnet_deeplab.EmbeddingLayer is EmbeddingLayer
    assert isinstance(MANet(ModelConfig.tiny()).encoder.embedding, EmbeddingLayer)
