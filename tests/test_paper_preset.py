"""The paper encoder and the loader of the authors' checkpoint, on a synthetic checkpoint with their key
names and shapes (``tests/data/manet_official_state_dict.txt``: the key and shape of each of the 822
entries of their released checkpoint, a list of facts kept with the tests)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from official_checkpoint import official_shapes

import manet
from manet.config import ModelConfig
from manet.errors import CheckpointError
from manet.model.heads import SegmentationHead
from manet.model.network import MANet
from manet.model.official import head_input_order, official_key_map, permute_head_inputs
from manet.model.resnet_deeplab import PaperEncoder

EMBEDDING_COPIES = {"seperate_conv": "semantic_embedding.0", "bn1": "semantic_embedding.1",
                    "embedding_conv": "semantic_embedding.3", "bn2": "semantic_embedding.4"}
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
State = dict[str, torch.Tensor]


def _random_tensor(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return torch.tensor(1000)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=generator) + 0.5
    if len(shape) == 4:  # conv weights scaled so activations keep their size through 100+ layers
        return torch.randn(shape, generator=generator) / math.sqrt(shape[1] * shape[2] * shape[3])
    if key.endswith("weight"):
        return 1.0 + 0.1 * torch.randn(shape, generator=generator)
    return 0.1 * torch.randn(shape, generator=generator)


def _cheap_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    # A stride-0 view: right shape, one stored element, so files for error cases stay tiny.
    value = torch.tensor(3) if key.endswith("num_batches_tracked") else torch.tensor(0.5)
    return value.expand(shape)


def official_state(random: bool) -> State:
    """Their state dict; the attribute and Sequential copies of the embedding layer share tensors."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in official_shapes().items():
        state[key] = _random_tensor(key, shape, generator) if random else _cheap_tensor(key, shape)
    for attribute, sequential in EMBEDDING_COPIES.items():
        for key in [key for key in state if key.startswith(attribute + ".")]:
            state[sequential + key[len(attribute):]] = state[key]
    return state


@pytest.fixture(scope="module")
def official() -> State:
    return official_state(random=True)


@pytest.fixture(scope="module")
def loaded(official: State, tmp_path_factory: pytest.TempPathFactory) -> MANet:
    path = tmp_path_factory.mktemp("official") / "manet.pth"
    torch.save(official, path)
    return manet.load_model("paper", checkpoint=path)


def test_reference_lists_the_full_network() -> None:
    shapes = official_shapes()
    assert len(shapes) == 822
    assert shapes["dynamic_seghead.layer1.conv1.weight"] == (103, 1, 7, 7)
    assert shapes["inter_seghead.layer1.conv2.weight"] == (256, 102, 1, 1)


def test_every_official_tensor_lands_in_its_module(official: State, loaded: MANet) -> None:
    key_map = official_key_map(loaded)
    own = loaded.state_dict()
    assert set(key_map) == set(official)
    assert set(key_map.values()) == set(own)
    assert len(set(key_map.values())) == len(official) - 14  # 14 duplicated embedding tensors
    for official_key, key in key_map.items():
        assert torch.equal(own[key], official[official_key]), (official_key, key)
    assert loaded.config == ModelConfig.paper()
    assert not loaded.training


def _bn(x: torch.Tensor, state: State, prefix: str) -> torch.Tensor:
    return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                        state[f"{prefix}.weight"], state[f"{prefix}.bias"], training=False, eps=1e-5)


def _conv(x: torch.Tensor, state: State, prefix: str, stride: int = 1, dilation: int = 1,
          groups: int = 1) -> torch.Tensor:
    weight = state[f"{prefix}.weight"]
    padding = (weight.shape[-1] - 1) * dilation // 2
    return F.conv2d(x, weight, state.get(f"{prefix}.bias"), stride, padding, dilation, groups)


def _their_head(x: torch.Tensor, state: State, head: str) -> torch.Tensor:
    for layer in range(1, 5):
        prefix = f"{head}.layer{layer}"
        x = F.relu(_bn(_conv(x, state, f"{prefix}.conv1", groups=x.shape[1]), state, f"{prefix}.bn1"))
        x = F.relu(_bn(_conv(x, state, f"{prefix}.conv2"), state, f"{prefix}.bn2"))
    return _conv(x, state, f"{head}.conv")[:, 0]


@torch.no_grad()
def test_heads_compute_what_theirs_compute(official: State, loaded: MANet) -> None:
    generator = torch.Generator().manual_seed(1)
    objects, height, width = 3, 9, 11
    embedding = torch.rand(1, 100, height, width, generator=generator)
    scribbles = (torch.rand(objects, height, width, generator=generator) > 0.8).float()
    previous = F.one_hot(torch.randint(0, objects, (height, width), generator=generator), objects)
    previous = previous.permute(2, 0, 1).float()
    global_maps, local_maps = torch.rand(2, objects, height, width, generator=generator)
    # Their per-object inputs: embedding, scribble mask, previous-round mask (interaction) and
    # embedding, global map, local map, previous-frame mask (propagation).
    embeddings = embedding.expand(objects, -1, -1, -1)
    theirs = _their_head(torch.cat([embeddings, scribbles[:, None], previous[:, None]], 1), official, "inter_seghead")
    ours = loaded.interaction_logits(embedding, scribbles, previous, first_round=False)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    inputs = torch.cat([embeddings, global_maps[:, None], local_maps[:, None], previous[:, None]], 1)
    theirs = _their_head(inputs, official, "dynamic_seghead")
    ours = loaded.propagation_logits(embedding, global_maps, local_maps, previous)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert theirs.std() > 0.01  # logits vary far more than the tolerance


def _their_bottleneck(x: torch.Tensor, state: State, prefix: str, stride: int, dilation: int) -> torch.Tensor:
    out = F.relu(_bn(_conv(x, state, f"{prefix}.conv1"), state, f"{prefix}.bn1"))
    out = F.relu(_bn(_conv(out, state, f"{prefix}.conv2", stride, dilation), state, f"{prefix}.bn2"))
    out = _bn(_conv(out, state, f"{prefix}.conv3"), state, f"{prefix}.bn3")
    if f"{prefix}.downsample.0.weight" in state:
        x = _bn(_conv(x, state, f"{prefix}.downsample.0", stride), state, f"{prefix}.downsample.1")
    return F.relu(out + x)


def _their_stage(x: torch.Tensor, state: State, stage: int, blocks: int) -> torch.Tensor:
    for block in range(blocks):
        stride = 2 if stage in (2, 3) and block == 0 else 1
        dilation = (2, 4, 8)[block] if stage == 4 else 1  # multi-grid (1, 2, 4) x 2 in the last stage
        x = _their_bottleneck(x, state, f"feature_extracter.backbone.layer{stage}.{block}", stride, dilation)
    return x


def _their_encoder(images: torch.Tensor, state: State) -> torch.Tensor:
    """Their extract_feature as the facts describe it: output stride 16, multi-grid 2/4/8, ASPP 1/6/12/18."""
    net = "feature_extracter.backbone"
    x = F.relu(_bn(_conv(images, state, f"{net}.conv1", stride=2), state, f"{net}.bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    low = x = _their_stage(x, state, 1, 3)
    for stage, blocks in ((2, 4), (3, 23), (4, 3)):
        x = _their_stage(x, state, stage, blocks)
    aspp = "feature_extracter.aspp"
    branches = [F.relu(_bn(_conv(x, state, f"{aspp}.aspp{index}.atrous_conv", dilation=rate), state,
                           f"{aspp}.aspp{index}.bn")) for index, rate in enumerate((1, 6, 12, 18), start=1)]
    pooled = F.adaptive_avg_pool2d(x, 1)
    pooled = F.relu(_bn(_conv(pooled, state, f"{aspp}.global_avg_pool.1"), state, f"{aspp}.global_avg_pool.2"))
    branches.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=True))
    x = F.relu(_bn(_conv(torch.cat(branches, 1), state, f"{aspp}.conv1"), state, f"{aspp}.bn1"))
    decoder = "feature_extracter.decoder"
    low = F.relu(_bn(_conv(low, state, f"{decoder}.conv1"), state, f"{decoder}.bn1"))
    x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=True)
    x = F.relu(_bn(_conv(torch.cat([x, low], 1), state, f"{decoder}.last_conv.0"), state, f"{decoder}.last_conv.1"))
    x = F.relu(_bn(_conv(x, state, f"{decoder}.last_conv.4"), state, f"{decoder}.last_conv.5"))
    x = F.relu(_bn(_conv(x, state, "semantic_embedding.0", groups=x.shape[1]), state, "semantic_embedding.1"))
    return F.relu(_bn(_conv(x, state, "semantic_embedding.3"), state, "semantic_embedding.4"))


@torch.no_grad()
def test_embedding_matches_their_network_on_bgr_input(official: State, loaded: MANet) -> None:
    generator = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 256, (1, 64, 96, 3), generator=generator, dtype=torch.uint8)
    # Their input: BGR pixels in [0, 1] normalised with the ImageNet RGB statistics, channel by channel.
    bgr = frames.permute(0, 3, 1, 2).float().flip(1) / 255.0
    theirs = _their_encoder((bgr - IMAGENET_MEAN) / IMAGENET_STD, official)
    ours = loaded.embed(frames)
    assert ours.shape == theirs.shape == (1, 100, 16, 24)
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-3)
    assert theirs.std() > 0.1


@torch.no_grad()
def test_paper_encoder_gives_the_stride_4_grid() -> None:
    torch.manual_seed(3)
    encoder = PaperEncoder(ModelConfig.paper()).eval()
    embedding = encoder(torch.randn(1, 3, 64, 96))
    assert embedding.shape == (1, 100, 16, 24)
    assert embedding.min() >= 0
    assert encoder(torch.randn(1, 3, 61, 93)).shape == (1, 100, 16, 24)  # ceil(H/4), ceil(W/4)
    assert sum(p.numel() for p in encoder.backbone.parameters()) == 42_500_160  # ResNet-101 minus its fc


def _save(state: object, path: Path) -> Path:
    torch.save(state, path)
    return path


def test_wrapped_parallel_checkpoint_loads(tmp_path: Path) -> None:
    state = official_state(random=False)
    wrapped = {"epoch": 40, "state_dict": {"module." + key: value for key, value in state.items()}}
    model = manet.load_model("paper", checkpoint=_save(wrapped, tmp_path / "wrapped.pth"))
    own = model.state_dict()
    assert torch.equal(own["encoder.aspp.branches.3.0.weight"],
                       state["feature_extracter.aspp.aspp4.atrous_conv.weight"])
    assert int(own["propagation_head.layers.0.depthwise_norm.num_batches_tracked"]) == 3


def _drop(state: State) -> None:
    del state["inter_seghead.conv.bias"]


def _add(state: State) -> None:
    state["feature_extracter.decoder.last_conv.8.weight"] = torch.zeros(2, 256, 1, 1)


def _reshape_head(state: State) -> None:
    state["dynamic_seghead.layer1.conv1.weight"] = torch.zeros(102, 1, 7, 7)


def _reshape_backbone(state: State) -> None:
    state["feature_extracter.backbone.layer3.22.conv2.weight"] = torch.zeros(256, 256, 1, 1)


def _diverge_copies(state: State) -> None:
    state["semantic_embedding.3.weight"] = state["embedding_conv.weight"].clone() + 1.0


@pytest.mark.parametrize("corrupt, message", [
    (_drop, "missing 1: ['inter_seghead.conv.bias']"),
    (_add, "unexpected 1: ['feature_extracter.decoder.last_conv.8.weight']"),
    (_reshape_head, "dynamic_seghead.layer1.conv1.weight (102, 1, 7, 7) (expected (103, 1, 7, 7))"),
    (_reshape_backbone, "layer3.22.conv2.weight (256, 256, 1, 1) (expected (256, 256, 3, 3))"),
    (_diverge_copies, "embedding_conv.weight and semantic_embedding.3.weight are copies"),
])
def test_mismatching_checkpoints_are_refused(tmp_path: Path, corrupt: Callable[[State], None], message: str) -> None:
    state = official_state(random=False)
    corrupt(state)
    with pytest.raises(CheckpointError) as raised:
        manet.load_model("paper", checkpoint=_save(state, tmp_path / "bad.pth"))
    assert message in str(raised.value)


CALLS: list[str] = []


def _record(text: str) -> str:
    CALLS.append(text)
    return text


class Payload:
    """Unpickling this with full pickle would call ``_record``: weights_only must never do it."""

    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return _record, ("unpickled",)


def test_arbitrary_pickles_are_refused(tmp_path: Path) -> None:
    state: dict[str, object] = dict(official_state(random=False))
    state["hook"] = Payload()
    with pytest.raises(CheckpointError, match="never arbitrary pickles"):
        manet.load_model("paper", checkpoint=_save(state, tmp_path / "pickle.pth"))
    assert CALLS == []
    with pytest.raises(CheckpointError, match="does not exist"):
        manet.load_model("paper", checkpoint=tmp_path / "absent.pth")
    with pytest.raises(CheckpointError, match="not a tensor"):
        manet.load_model("paper", checkpoint=_save({"conv.weight": torch.zeros(1), "epoch": 3}, tmp_path / "n.pth"))


@torch.no_grad()
def test_head_input_permutation_reorders_the_first_layer() -> None:
    torch.manual_seed(4)
    theirs, ours = SegmentationHead(4, 3, 8, 2, 3).eval(), SegmentationHead(4, 3, 8, 2, 3).eval()
    for module in theirs.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    order = head_input_order(("local", "global", "mask"), ("global", "local", "mask"), 4)
    assert order == [0, 1, 2, 3, 5, 4, 6]
    state = {f"head.{key}": value.clone() for key, value in theirs.state_dict().items()}
    permute_head_inputs(state, "head", order)
    ours.load_state_dict({key.removeprefix("head."): value for key, value in state.items()})
    embedding, maps = torch.randn(2, 4, 6, 7), torch.randn(2, 3, 6, 7)
    torch.testing.assert_close(ours(embedding, maps), theirs(embedding, maps[:, [1, 0, 2]]))
    assert not torch.allclose(ours(embedding, maps), theirs(embedding, maps))
    with pytest.raises(CheckpointError, match="head inputs differ"):
        head_input_order(("global", "scribble"), ("global", "local"), 4)
