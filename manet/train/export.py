"""Compose the shipped weights from training runs: the encoder and one head from one checkpoint,
a head from another (both trained on the same frozen encoder), saved without the ImageNet
backbone that the installed package provides.

    python -m manet.train.export --base runs/stage1/last.safetensors \\
        --interaction-head runs/stage2/last.safetensors --out manet/weights/manet_lite.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from manet.errors import CheckpointError
from manet.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from manet.model.network import MANet

HEADS = ("interaction_head.", "propagation_head.")


def compose(base: str | Path, heads: dict[str, str | Path]) -> MANet:
    """``base``'s weights with each ``heads[prefix]`` head taken from that checkpoint.

    Raises CheckpointError when a head's checkpoint was trained on another encoder.
    """
    model = load_checkpoint(base)
    state = model.state_dict()
    encoder = {key: value for key, value in state.items() if key.startswith("encoder.")}
    for prefix, path in heads.items():
        if prefix not in HEADS:
            raise ValueError(f"unknown head {prefix!r}: use one of {HEADS}")
        other = load_checkpoint(path).state_dict()
        if any(not torch.equal(value, other[key]) for key, value in encoder.items()):
            raise CheckpointError(f"{path} was trained on a different encoder than {base}: heads do not transfer")
        state.update({key: value for key, value in other.items() if key.startswith(prefix)})
    model.load_state_dict(state)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manet.train.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
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
    model = compose(args.base, heads)
    sources: dict[str, Any] = {"base": args.base, **{prefix.rstrip("."): str(path) for prefix, path in heads.items()}}
    history = {name: read_metadata(path)["extra"] for name, path in sources.items()}
    path = save_checkpoint(model, args.out, extra={"sources": sources, "training": history, "note": args.note},
                           include_backbone=False)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MB)")
    print(json.dumps(sources, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
