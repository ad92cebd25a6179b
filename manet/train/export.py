"""Compose the shipped weights from training runs: the encoder and one head from one checkpoint,
a head from another (both trained on the same frozen encoder), saved without the ImageNet
backbone that the installed package provides.

    python -m manet.train.export --base runs/stage1/last.safetensors \\
        --interaction-head runs/stage2/last.safetensors --out manet/weights/manet_lite.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Literal

import torch

from manet.errors import CheckpointError
from manet.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from manet.model.network import MANet

HEADS = ("interaction_head.", "propagation_head.")
MatchingSkip = Literal["none", "interaction", "propagation", "both"]  # ModelConfig.matching_skip


def compose(base: str | Path, heads: dict[str, str | Path]) -> MANet:
    """``base``'s weights with each ``heads[prefix]`` head taken from that checkpoint.

    Each head keeps the matching skip (or its absence) of the checkpoint it comes from.
    Raises CheckpointError when a head's checkpoint was trained on another encoder.
    """
    base_model = load_checkpoint(base)
    encoder = {key: value for key, value in base_model.state_dict().items() if key.startswith("encoder.")}
    sources = {prefix: base_model for prefix in HEADS}
    for prefix, path in heads.items():
        if prefix not in HEADS:
            raise ValueError(f"unknown head {prefix!r}: use one of {HEADS}")
        other = load_checkpoint(path)
        other_state = other.state_dict()
        if any(not torch.equal(value, other_state[key]) for key, value in encoder.items()):
            raise CheckpointError(f"{path} was trained on a different encoder than {base}: heads do not transfer")
        sources[prefix] = other
    interaction = sources["interaction_head."].config.skips("interaction")
    propagation = sources["propagation_head."].config.skips("propagation")
    skips: dict[tuple[bool, bool], MatchingSkip] = {(True, True): "both", (True, False): "interaction",
                                                    (False, True): "propagation", (False, False): "none"}
    skip = skips[(interaction, propagation)]
    model = MANet(dataclasses.replace(base_model.config, matching_skip=skip))
    state = dict(encoder)
    for prefix, source in sources.items():
        state.update({key: value for key, value in source.state_dict().items() if key.startswith(prefix)})
    model.load_state_dict(state)
    return model


def with_matching_skip(base: str | Path, propagation_bound: float | None = None) -> MANet:
    """``base``'s model rebuilt with the matching skip (and ``propagation_bound``): every weight
    kept but the heads' classifiers, which start at zero so the result begins as
    nearest-neighbour matching."""
    old = load_checkpoint(base)
    model = MANet(dataclasses.replace(old.config, matching_skip="both", propagation_bound=propagation_bound))
    state = {key: value for key, value in old.state_dict().items() if ".classifier." not in key}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(".classifier." in key or key.endswith("skip_scale") for key in missing)
    return model


def with_propagation_bound(model: MANet, bound: float) -> MANet:
    """``model`` with its propagation head's correction bounded to ``bound`` logits (weights kept)."""
    bounded = MANet(dataclasses.replace(model.config, propagation_bound=bound))
    bounded.load_state_dict(model.state_dict())
    return bounded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manet.train.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--add-matching-skip", action="store_true",
                        help="rebuild --base with the matching skip (classifiers reset to zero), "
                             "as the starting point of a training run")
    parser.add_argument("--propagation-bound", type=float, default=None,
                        help="bound the propagation head's correction to this many logits in the output")
    parser.add_argument("--interaction-head", default=None)
    parser.add_argument("--propagation-head", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--note", default="", help="free text stored in the metadata")
    args = parser.parse_args(argv)
    heads: dict[str, str | Path] = {}
    if args.interaction_head:
        heads["interaction_head."] = args.interaction_head
    if args.propagation_head:
        heads["propagation_head."] = args.propagation_head
    if args.add_matching_skip:
        if heads:
            parser.error("--add-matching-skip takes --base only")
        path = save_checkpoint(with_matching_skip(args.base, args.propagation_bound), args.out,
                               extra={"sources": {"base": args.base}, "note": args.note or "matching skip added"},
                               include_backbone=False)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MB)")
        return 0
    model = compose(args.base, heads)
    if args.propagation_bound is not None:
        model = with_propagation_bound(model, args.propagation_bound)
    sources: dict[str, Any] = {"base": args.base, **{prefix.rstrip("."): str(path) for prefix, path in heads.items()}}
    history = {name: read_metadata(path)["extra"] for name, path in sources.items()}
    path = save_checkpoint(model, args.out, extra={"sources": sources, "training": history, "note": args.note},
                           include_backbone=False)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MB)")
    print(json.dumps(sources, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
