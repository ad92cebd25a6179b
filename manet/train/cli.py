"""``manet train projection|stage1|rollout|stage2``: command-line front end of :mod:`manet.train.loop`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from manet.config import ModelConfig

PRESETS = {"lite": ModelConfig.lite, "lite-decoder": ModelConfig.lite_decoder, "paper": ModelConfig.paper,
           "tiny": ModelConfig.tiny}


def add_parser(subparsers: Any) -> None:
    """Register the ``train`` subcommand."""
    from manet.train.loop import TrainConfig

    defaults = TrainConfig()
    parser = subparsers.add_parser("train", help="train the lite (or paper) model on a DAVIS-layout folder",
                                   description="projection trains the lite encoder's feature projection through "
                                               "nearest-neighbour matching; stage 1 the embedding decoder (or "
                                               "projection) and the propagation head; rollout the propagation head on "
                                               "its own round-1 rollouts from simulated strokes; stage 2 the "
                                               "interaction head "
                                               "with the encoder frozen. "
                                               "Runs resume from --out; use torchrun for several processes.")
    parser.add_argument("stage", choices=["projection", "stage1", "rollout", "stage2"])
    parser.add_argument("--data", required=True, metavar="FOLDER|davis2017",
                        help="DAVIS-layout folder (JPEGImages/, Annotations/), or davis2017 for what "
                             "`manet download davis2017` extracted (multi-object; default split: ImageSets/train.txt)")
    parser.add_argument("--split", default=None, help="file with one sequence name a line (default: all)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, state.json")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="lite")
    parser.add_argument("--init", default=None,
                        help="checkpoint to start from: stage 1's last.safetensors for stage 2, or the authors' "
                             "released .pth with --preset paper (read with weights_only=True)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many more steps")
    for field in dataclasses.fields(defaults):
        if field.name == "stage":
            continue
        value = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, type=_parse_bool, default=value, metavar="true|false")
        else:
            parser.add_argument(flag, type=type(value), default=value)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


OFFICIAL_SUFFIXES = (".pth", ".pt")


def prepare_init(init: str | None, preset: str, out: str | Path) -> str | None:
    """The safetensors checkpoint a run starts from.

    An authors' ``.pth`` (``--preset paper`` only) is mapped onto our modules, every key and
    shape checked, and written whole to ``out`` as ``init-official[.rankN].safetensors`` (one
    file per torchrun rank, so ranks never write the same file).
    """
    if init is None or Path(init).suffix not in OFFICIAL_SUFFIXES:
        return init
    if (Path(out) / "state.json").is_file():
        return None  # resuming: the run's own last.safetensors replaces the starting weights
    from manet.errors import CheckpointError
    from manet.model.checkpoint import save_checkpoint
    from manet.model.official import load_official_checkpoint

    if preset != "paper":
        raise CheckpointError(f"{init} looks like the authors' released checkpoint ({Path(init).suffix}); "
                              "it fits the paper architecture only: add --preset paper")
    model = load_official_checkpoint(init)
    rank = os.environ.get("RANK")
    name = "init-official.safetensors" if rank is None else f"init-official.rank{rank}.safetensors"
    return str(save_checkpoint(model, Path(out) / name, extra={"source": str(init)}))


def main(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from manet.download.cache import resolve_data
    from manet.errors import ManetError
    from manet.train.loop import TrainConfig, Trainer, finish_distributed

    try:
        source = resolve_data(args.data, split="train")
    except ManetError as error:
        print(f"manet train: error: {error}", file=sys.stderr)
        return 2
    if source.split_file is not None and args.split is None:
        args.split = str(source.split_file)
    args.data = str(source.root)

    if args.threads:
        torch.set_num_threads(args.threads)
    fields = {field.name for field in dataclasses.fields(TrainConfig)} - {"stage"}
    try:
        config = TrainConfig(stage=args.stage, **{name: getattr(args, name) for name in fields})
        trainer = Trainer(config, args.data, args.split, args.out, PRESETS[args.preset](),
                          prepare_init(args.init, args.preset, args.out))
    except (ManetError, ValueError) as error:
        print(f"manet train: error: {error}", file=sys.stderr)
        return 2
    target = config.steps if args.max_steps is None else min(config.steps, trainer.step + args.max_steps)
    bar = tqdm(total=target, initial=trainer.step, desc=f"{args.stage}", disable=trainer.rank != 0,
               file=sys.stderr, mininterval=5.0)

    def on_log(record: dict[str, Any]) -> None:
        bar.update(record["step"] - bar.n)
        bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")

    try:
        path = trainer.run(on_log=on_log, max_steps=args.max_steps)
    except BaseException:
        finish_distributed(wait=False)  # the other ranks may never reach a barrier now
        raise
    finish_distributed()
    bar.close()
    if trainer.rank == 0:
        print(f"checkpoint: {path} (step {trainer.step})")
    return 0
