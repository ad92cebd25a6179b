"""``manet eval``: the DAVIS interactive protocol over a DAVIS-layout folder.

Examples::

    manet eval data/DAVIS --sequences-file splits/dev.txt --rounds 8 --report out.json --plot out.png
    manet eval data/DAVIS --config-override global_memory=false        # paper Fig. 8 ablation
    manet eval tests/data --tiny-random --max-frames 6 --rounds 3      # a smoke run

This module imports only argparse at load time: ``manet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HELP = "run the DAVIS interactive protocol (simulated user, J/F, AUC, J@60s) on a DAVIS-layout folder"

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def parse_value(text: str) -> Any:
    """``true``/``false`` (also yes/no/on/off) -> bool, ``none`` -> None, then int, float, str."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    if lowered in {"none", "null"}:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` -> ``(key, parsed value)``."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. global_memory=false; got {text!r}")
    return key.strip(), parse_value(value)


def split_overrides(pairs: Sequence[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sort overrides into (SessionConfig changes, ModelConfig changes), checking names and bools."""
    from manet.config import ModelConfig, SessionConfig

    session_fields = {f.name: f for f in dataclasses.fields(SessionConfig)}
    model_fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    session_changes: dict[str, Any] = {}
    model_changes: dict[str, Any] = {}
    for key, value in pairs:
        if key in session_fields:
            target, default = session_changes, session_fields[key].default
        elif key in model_fields:
            target, default = model_changes, model_fields[key].default
        else:
            raise ValueError(f"unknown setting {key!r}; SessionConfig fields: {sorted(session_fields)}; "
                             f"ModelConfig fields: {sorted(model_fields)}")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"{key} is a switch: use {key}=true or {key}=false")  # noqa: TRY004 (a CLI value)
        target[key] = value
    return session_changes, model_changes


def add_parser(subparsers: Any) -> None:
    """Add the ``eval`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser("eval", help=HELP, description=HELP)
    parser.add_argument("dataset", type=Path, nargs="?",
                        help="folder with JPEGImages/<seq>/ and Annotations/<seq>/ (or give it as --data)")
    parser.add_argument("--data", metavar="FOLDER|davis2017",
                        help="the dataset: a folder, or davis2017 for what `manet download davis2017` extracted "
                             "(then the val split unless sequences are named; its official scribbles give round 1)")
    parser.add_argument("--sequences", nargs="+", metavar="NAME", help="sequences to run (default: all)")
    parser.add_argument("--sequences-file", type=Path, metavar="FILE", help="sequence names, one a line")
    parser.add_argument("--rounds", type=int, default=8, help="interactions per sequence (default: 8)")
    parser.add_argument("--report", type=Path, metavar="OUT.json", help="write every number as JSON")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="plot J over time and by round")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes to spread sequences over (timings then share the CPU)")
    parser.add_argument("--address", metavar="tcp://HOST:8786",
                        help="run the sequences as tasks on this Dask scheduler (needs the [cluster] extra)")
    parser.add_argument("--results-dir", type=Path, metavar="DIR",
                        help="keep each finished sequence in DIR; rerunning skips those already there")
    parser.add_argument("--config-override", type=parse_override, action="append", default=[],
                        metavar="KEY=VALUE", help="change a SessionConfig (or, with --tiny-random, "
                        "ModelConfig) field, e.g. global_memory=false, memory_rounds=2; repeatable")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--weights", metavar="PATH", help="checkpoint to evaluate (default: the shipped weights)")
    model.add_argument("--checkpoint", metavar="PATH.pth",
                       help="the authors' released MA-Net weights (with --preset paper; read with weights_only=True)")
    model.add_argument("--tiny-random", action="store_true", help="a random tiny model (tests and CI)")
    model.add_argument("--matching-baseline", action="store_true",
                       help="no trained weights: ImageNet features matched by nearest neighbour")
    parser.add_argument("--preset", choices=["lite", "paper"], default="lite",
                        help="architecture and session settings (paper: the authors' setup, SessionConfig.paper())")
    parser.add_argument("--max-frames", type=int, metavar="N", help="use only the first N frames of each sequence")
    parser.add_argument("--working-size", type=int, metavar="N",
                        help="short side in pixels at which frames are embedded (0 = original size)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the simulated user (default: 0); its strokes change with the seed only "
                             "with --robot-jitter above 0")
    parser.add_argument("--robot-jitter", type=float, default=0.0, metavar="FRACTION",
                        help="the simulated user's opening radius scaled by a factor drawn from [1 - FRACTION, "
                             "1 + FRACTION] per error region, so seeds draw different strokes (default 0: the "
                             "benchmark's fixed rule)")
    parser.add_argument("--seconds-per-object", type=float, default=240.0, metavar="SECONDS",
                        help="time budget per object where the AUC curve ends (DAVIS: 240 = 8 x 30 s)")
    parser.add_argument("--prompt", choices=["scribbles", "clicks"], default="scribbles",
                        help="how the simulated user annotates: strokes, or clicks at the strokes' middles")
    parser.add_argument("--click-radius", type=float, default=None, metavar="FRACTION",
                        help="click radius as a fraction of the frame's short side (default 0.04)")
    # manet.eval.rounds.NEXT_FRAME_RULES, spelled out: importing it here would load torch for --help
    parser.add_argument("--next-frame", choices=["worst", "suggested"], default="worst",
                        help="frame a later round corrects: the worst by ground truth (the benchmark), or the "
                             "one the session suggests, as the annotator shows a user (default: worst)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=main)


def _sequence_names(args: argparse.Namespace) -> list[str] | None:
    from manet.io.davis import read_split

    names: list[str] = []
    if args.sequences_file is not None:
        names.extend(read_split(args.sequences_file))
    if args.sequences:
        names.extend(name for name in args.sequences if name not in names)
    if not names and (args.sequences_file is not None or args.sequences):
        raise ValueError("the sequence selection is empty")
    return names or None


def _resolve_dataset(args: argparse.Namespace) -> Path:
    """The folder of ``--data`` or of the positional argument; ``davis2017`` names the cached download,
    whose ``ImageSets/val.txt`` becomes the selection when no sequences are named."""
    from manet.download.cache import resolve_data

    if (args.data is None) == (args.dataset is None):
        raise ValueError("name the dataset once: a DAVIS-layout folder (positional or --data FOLDER), "
                         "or --data davis2017 after `manet download davis2017 davis2017-scribbles`")
    source = resolve_data(args.data if args.data is not None else args.dataset, split="val")
    if source.split_file is not None and args.sequences_file is None and not args.sequences:
        args.sequences_file = source.split_file
    if source.note:
        print(f"manet eval: note: {source.note}", file=sys.stderr)
    args.dataset = source.root  # the report and the plot name the folder
    return source.root


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any, list[Any]]:
    from manet.config import SessionConfig
    from manet.eval.evaluate import EvalSettings, ModelSpec
    from manet.io.davis import find_sequences
    from manet.simulate.robot import RobotConfig

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    session_changes, model_changes = split_overrides(args.config_override)
    if args.working_size is not None:
        session_changes["working_size"] = args.working_size or None
    if args.checkpoint is not None and args.preset != "paper":
        raise ValueError("--checkpoint loads the authors' weights, which fit the paper architecture: "
                         "add --preset paper")
    if args.preset == "paper" and args.checkpoint is None and args.weights is None and not args.tiny_random:
        raise ValueError("--preset paper has no shipped weights: pass --checkpoint manet.pth (the authors' release) "
                         "or --weights PATH (a paper-preset run of `manet train`)")
    base = SessionConfig.paper() if args.preset == "paper" else SessionConfig()
    session_config = base.replace(**session_changes)
    if model_changes and not args.tiny_random:
        raise ValueError(f"ModelConfig overrides {sorted(model_changes)} need --tiny-random: "
                         "a checkpoint fixes its own architecture")
    spec = ModelSpec(weights=args.weights or "default", preset=args.preset,
                     checkpoint=None if args.checkpoint is None else str(args.checkpoint), tiny_random=args.tiny_random,
                     matching_baseline=args.matching_baseline,
                     model_overrides=model_changes, seed=args.seed)
    settings = EvalSettings(rounds=args.rounds, seed=args.seed, max_frames=args.max_frames,
                            seconds_per_object=args.seconds_per_object, prompt=args.prompt,
                            next_frame=args.next_frame, robot=RobotConfig(radius_jitter=args.robot_jitter))
    if args.click_radius is not None:
        settings = dataclasses.replace(settings, click_radius_fraction=args.click_radius)
    root = _resolve_dataset(args)  # may set the split file: before _sequence_names
    sequences = find_sequences(root, _sequence_names(args))
    return settings, session_config, spec, sequences


def tqdm_callback(bar: Any) -> Callable[[Any], None]:
    """A ``progress`` callback for :func:`manet.eval.evaluate.evaluate` that drives a tqdm bar
    (``tqdm.auto.tqdm(total=len(sequences) * rounds)`` works in terminals and notebooks)."""

    def update(event: Any) -> None:
        bar.update(event.done - bar.n)
        bar.set_postfix_str(f"{event.sequence} r{event.round} J={event.jaccard:.3f}")

    return update


def main(args: argparse.Namespace) -> int:
    """Run ``manet eval``; returns 0 on success, 2 for bad arguments or data, 1 if a run fails."""
    from tqdm.auto import tqdm

    from manet.errors import ManetError
    from manet.eval.evaluate import evaluate
    from manet.eval.report import report_dict, save_plot, summary_table, write_report
    from manet.provenance import model_spec_weights, provenance

    try:
        settings, session_config, spec, sequences = _setup(args)
    except (ValueError, ManetError, OSError) as error:
        print(f"manet eval: error: {error}", file=sys.stderr)
        return 2
    # what ran: the checkout and weights as the run starts (the tree may change while it runs)
    started = provenance(model_spec_weights(dataclasses.asdict(spec)))
    total = len(sequences) * settings.rounds
    try:
        with tqdm(total=total, unit="round", disable=True if args.no_progress else None) as bar:
            result = evaluate(spec, sequences, session_config, settings, workers=args.workers,
                              progress=tqdm_callback(bar), address=args.address, results_dir=args.results_dir)
    except (ManetError, ValueError, OSError, ImportError) as error:
        print(f"manet eval: error: {error}", file=sys.stderr)
        return 1
    print(summary_table(result))
    context = {
        "dataset": str(args.dataset),
        "sequences": [s.name for s in sequences],
        "model": dataclasses.asdict(spec),
        "session_config": session_config.to_dict(),
        "workers": args.workers,
        "failed": {failure.key: failure.error for failure in result.failures},
    }
    if args.report is not None:
        write_report(args.report, report_dict(result, settings, context, run_provenance=started))
        print(f"report: {args.report}")
    if args.plot is not None:
        save_plot(args.plot, result, title=str(args.dataset))
        print(f"plot: {args.plot}")
    for failure in result.failures:
        print(f"manet eval: {failure.key} failed: {failure.error}", file=sys.stderr)
    if result.failures:
        print(f"manet eval: {len(result.failures)} of {len(sequences)} sequences failed; the summary covers the "
              f"{len(result.sequences)} that finished", file=sys.stderr)
        return 1
    return 0
