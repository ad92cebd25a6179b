"""Loading the authors' released MA-Net checkpoint (a PyTorch ``.pth`` state dict) onto our modules.

Their module names -> ours:

* ``feature_extracter.backbone.{conv1,bn1}`` -> ``encoder.backbone.stem.{conv,norm}``;
  ``layerS.B.{conv1/bn1, conv2/bn2, conv3/bn3, downsample.0/.1}`` ->
  ``stages.{S-1}.B.{reduce, spatial, expand, shortcut}.{conv,norm}``.
* ``feature_extracter.aspp.asppN.{atrous_conv,bn}`` -> ``encoder.aspp.branches.{N-1}.{0,1}``;
  ``global_avg_pool.{1,2}`` -> ``image_pool.{0,1}``; ``{conv1,bn1}`` -> ``project.{0,1}``.
* ``feature_extracter.decoder.{conv1,bn1}`` -> ``encoder.decoder.low_projection.{0,1}``;
  ``last_conv.{0,1,4,5}`` -> ``fuse.{0.0, 0.1, 1.0, 1.1}``.
* The embedding layer is stored twice, as attributes (``seperate_conv``, ``bn1``,
  ``embedding_conv``, ``bn2``) and inside ``semantic_embedding.{0,1,3,4}``; both copies map to
  ``encoder.embedding.{depthwise, depthwise_norm, pointwise, pointwise_norm}`` and must agree.
* ``inter_seghead`` -> ``interaction_head``, ``dynamic_seghead`` -> ``propagation_head``:
  ``layerN.{conv1,bn1,conv2,bn2}`` -> ``layers.{N-1}.{depthwise, depthwise_norm, pointwise,
  pointwise_norm}``, ``conv`` -> ``classifier``.

Per-object input channels of the heads. Their code concatenates, for every object, the
embedding and then (propagation) the global map, the local map and the previous frame's mask,
or (interaction) the scribble mask and the previous round's mask. That is the order of
:meth:`MANet.propagation_logits` / :meth:`MANet.interaction_logits` too, so the permutation
below is the identity today; it stays explicit so a change on either side is one edit here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from manet.config import ModelConfig
from manet.errors import CheckpointError
from manet.model.network import MANet
from manet.model.resnet_deeplab import PaperEncoder

OFFICIAL_PROPAGATION_MAPS = ("global", "local", "previous_mask")
OUR_PROPAGATION_MAPS = ("global", "local", "previous_mask")
OFFICIAL_INTERACTION_MAPS = ("scribble", "previous_mask")
OUR_INTERACTION_MAPS = ("scribble", "previous_mask")
WRAPPER_KEYS = ("state_dict", "model")
PARALLEL_PREFIX = "module."
SHOWN = 5

_BOTTLENECK = (("reduce", "conv1", "bn1"), ("spatial", "conv2", "bn2"), ("expand", "conv3", "bn3"))
_EMBEDDING = (("depthwise", ("seperate_conv", "semantic_embedding.0")),
              ("depthwise_norm", ("bn1", "semantic_embedding.1")),
              ("pointwise", ("embedding_conv", "semantic_embedding.3")),
              ("pointwise_norm", ("bn2", "semantic_embedding.4")))
_HEAD_LAYER = (("depthwise", "conv1"), ("depthwise_norm", "bn1"), ("pointwise", "conv2"), ("pointwise_norm", "bn2"))


def _backbone_modules(encoder: PaperEncoder) -> list[tuple[str, str]]:
    ours, theirs = "encoder.backbone", "feature_extracter.backbone"
    pairs = [(f"{ours}.stem.conv", f"{theirs}.conv1"), (f"{ours}.stem.norm", f"{theirs}.bn1")]
    for stage_index, stage in enumerate(encoder.backbone.stages):
        for block_index, block in enumerate(stage.children()):
            our_block = f"{ours}.stages.{stage_index}.{block_index}"
            their_block = f"{theirs}.layer{stage_index + 1}.{block_index}"
            for part, conv, norm in _BOTTLENECK:
                pairs += [(f"{our_block}.{part}.conv", f"{their_block}.{conv}"),
                          (f"{our_block}.{part}.norm", f"{their_block}.{norm}")]
            if block.shortcut is not None:
                pairs += [(f"{our_block}.shortcut.conv", f"{their_block}.downsample.0"),
                          (f"{our_block}.shortcut.norm", f"{their_block}.downsample.1")]
    return pairs


def _aspp_and_decoder_modules(encoder: PaperEncoder) -> list[tuple[str, str]]:
    ours, theirs = "encoder.aspp", "feature_extracter.aspp"
    pairs = []
    for index in range(len(encoder.aspp.branches)):
        pairs += [(f"{ours}.branches.{index}.0", f"{theirs}.aspp{index + 1}.atrous_conv"),
                  (f"{ours}.branches.{index}.1", f"{theirs}.aspp{index + 1}.bn")]
    pairs += [(f"{ours}.image_pool.0", f"{theirs}.global_avg_pool.1"),
              (f"{ours}.image_pool.1", f"{theirs}.global_avg_pool.2"),
              (f"{ours}.project.0", f"{theirs}.conv1"), (f"{ours}.project.1", f"{theirs}.bn1")]
    ours, theirs = "encoder.decoder", "feature_extracter.decoder"
    pairs += [(f"{ours}.low_projection.0", f"{theirs}.conv1"), (f"{ours}.low_projection.1", f"{theirs}.bn1"),
              (f"{ours}.fuse.0.0", f"{theirs}.last_conv.0"), (f"{ours}.fuse.0.1", f"{theirs}.last_conv.1"),
              (f"{ours}.fuse.1.0", f"{theirs}.last_conv.4"), (f"{ours}.fuse.1.1", f"{theirs}.last_conv.5")]
    return pairs


def _head_modules(model: MANet) -> list[tuple[str, str]]:
    pairs = []
    for ours, theirs in (("interaction_head", "inter_seghead"), ("propagation_head", "dynamic_seghead")):
        head = getattr(model, ours)
        for index in range(len(head.layers)):
            pairs += [(f"{ours}.layers.{index}.{part}", f"{theirs}.layer{index + 1}.{name}")
                      for part, name in _HEAD_LAYER]
        pairs.append((f"{ours}.classifier", f"{theirs}.conv"))
    return pairs


def official_key_map(model: MANet) -> dict[str, str]:
    """Every key of the authors' state dict -> the key of ``model`` it fills.

    ``model`` must be built with ``ModelConfig.paper()`` (any device, ``meta`` included).
    Several official keys may map to one of ours (the duplicated embedding layer).

    Raises:
        CheckpointError: ``model`` is not the paper architecture.
    """
    encoder = model.encoder
    if not isinstance(encoder, PaperEncoder):
        raise CheckpointError(f"the authors' checkpoint fits the 'paper' encoder, not {model.config.encoder!r}: "
                              "build the model with ModelConfig.paper()")
    modules: dict[str, list[str]] = {}
    pairs = _backbone_modules(encoder) + _aspp_and_decoder_modules(encoder) + _head_modules(model)
    pairs += [(f"encoder.embedding.{part}", name) for part, names in _EMBEDDING for name in names]
    for ours, theirs in pairs:
        modules.setdefault(ours, []).append(theirs)
    key_map: dict[str, str] = {}
    for key in model.state_dict():
        module, _, leaf = key.rpartition(".")
        if module not in modules:
            raise CheckpointError(f"{key} has no counterpart in the authors' checkpoint: the model is not "
                                  "the paper architecture the loader knows")
        key_map.update({f"{theirs}.{leaf}": key for theirs in modules[module]})
    return key_map


def head_input_order(official: tuple[str, ...], ours: tuple[str, ...], embedding_dim: int) -> list[int]:
    """For each of our head input channels, the index of the official input channel it takes.

    Channels ``0 .. embedding_dim-1`` are the embedding on both sides; the rest follow the named
    per-object maps of ``ours`` looked up in ``official``.
    """
    if sorted(official) != sorted(ours):
        raise CheckpointError(f"head inputs differ: theirs {official}, ours {ours}")
    return list(range(embedding_dim)) + [embedding_dim + official.index(name) for name in ours]


def permute_head_inputs(state: dict[str, torch.Tensor], head: str, order: list[int]) -> None:
    """Reorder the input channels of ``head``'s first layer in ``state`` (our key names) in place.

    The depthwise conv and its BN act channel by channel; the pointwise conv reads them as
    input columns. Our channel ``i`` takes official channel ``order[i]``.
    """
    if order == sorted(order):
        return
    index = torch.tensor(order)
    prefix = f"{head}.layers.0."
    for name in ("depthwise.weight", "depthwise.bias", "depthwise_norm.weight", "depthwise_norm.bias",
                 "depthwise_norm.running_mean", "depthwise_norm.running_var"):
        state[prefix + name] = state[prefix + name][index]
    state[prefix + "pointwise.weight"] = state[prefix + "pointwise.weight"][:, index]


def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an official ``.pth`` file, unwrapped and without a ``module.`` prefix.

    Accepts a raw state dict or a dict holding it under ``state_dict`` / ``model``. Unpickling
    runs with ``weights_only=True``: files holding arbitrary Python objects are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: pass the path of the authors' released .pth file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ... on bad files
        raise CheckpointError(f"{path} cannot be read as a plain tensor checkpoint ({type(error).__name__}: "
                              f"{error}); only state dicts of tensors are loaded, never arbitrary pickles") from error
    for wrapper in WRAPPER_KEYS:
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper), Mapping):
            loaded = loaded[wrapper]
            break
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    state: dict[str, torch.Tensor] = {}
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                                  "pass the model's state dict")
        state[key.removeprefix(PARALLEL_PREFIX)] = value
    return state


def _check_keys_and_shapes(state: Mapping[str, torch.Tensor], key_map: Mapping[str, str],
                           own: Mapping[str, torch.Tensor], source: str) -> None:
    missing = sorted(set(key_map) - set(state))
    unexpected = sorted(set(state) - set(key_map))
    wrong = sorted(f"{key} {tuple(state[key].shape)} (expected {tuple(own[key_map[key]].shape)})"
                   for key in set(state) & set(key_map) if state[key].shape != own[key_map[key]].shape)
    unfilled = sorted(set(own) - set(key_map.values()))
    problems = [f"{label} {len(keys)}: {keys[:SHOWN]}" for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong), ("unfilled", unfilled))
                if keys]
    if problems:
        raise CheckpointError(f"{source} is not the authors' MA-Net checkpoint (ResNet-101 DeepLabv3+, 100-d "
                              f"embedding, 256-wide heads): " + "; ".join(problems))


def _gather(state: Mapping[str, torch.Tensor], key_map: Mapping[str, str], source: str) -> dict[str, torch.Tensor]:
    """Our state dict from theirs; duplicated official tensors must be equal."""
    ours: dict[str, torch.Tensor] = {}
    first_source: dict[str, str] = {}
    for official_key in sorted(key_map):
        key, tensor = key_map[official_key], state[official_key]
        if key not in ours:
            ours[key], first_source[key] = tensor, official_key
        elif not torch.equal(ours[key], tensor):
            raise CheckpointError(f"{source}: {first_source[key]} and {official_key} are copies of the same "
                                  "embedding layer but differ; the file is corrupt or was edited")
    return ours


def load_official_checkpoint(path: str | Path) -> MANet:
    """``MANet(ModelConfig.paper())`` in eval mode with the authors' released weights.

    Every official key must be consumed, every shape must match, every parameter and buffer of
    ours must be filled, and the two stored copies of the embedding layer must be equal.

    Raises:
        CheckpointError: unreadable or untrusted file, or any key / shape / copy mismatch.
    """
    source = str(path)
    state = read_official_state(path)
    config = ModelConfig.paper()
    with torch.device("meta"):
        skeleton = MANet(config)  # names and shapes only: no memory, no random initialisation
    key_map = official_key_map(skeleton)
    own = skeleton.state_dict()
    _check_keys_and_shapes(state, key_map, own, source)
    ours = _gather(state, key_map, source)
    embedding_dim = config.embedding_dim
    permute_head_inputs(ours, "propagation_head",
                        head_input_order(OFFICIAL_PROPAGATION_MAPS, OUR_PROPAGATION_MAPS, embedding_dim))
    permute_head_inputs(ours, "interaction_head",
                        head_input_order(OFFICIAL_INTERACTION_MAPS, OUR_INTERACTION_MAPS, embedding_dim))
    # Every parameter and buffer is filled (checked above), so the loaded tensors become the model's
    # own: no random initialisation, no second copy of 60M floats.
    ours = {key: tensor.to(own[key].dtype).contiguous() for key, tensor in ours.items()}
    skeleton.load_state_dict(ours, strict=True, assign=True)
    return skeleton.eval()
