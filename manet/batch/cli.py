"""``manet propagate``: masks of every frame of many videos from masks of some of their frames.

Examples::

    manet propagate data/DAVIS --masks first-frames/ --out results/ --workers 2
    manet propagate data/DAVIS --masks first-frames/ --out results/ --address tcp://scheduler:8786
    manet propagate data/DAVIS --masks m/ --out r/ --preset paper --checkpoint manet.pth

This module imports only argparse at load time: ``manet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "segment every frame of many videos from masks of some frames (DAVIS layout), locally or on a cluster"


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers``, ``--address`` and ``--engine``, shared by ``propagate`` and ``eval``."""
    parser.add_argument("--address", metavar="tcp://HOST:8786",
                        help="run the videos as tasks on this Dask scheduler (needs the [cluster] extra)")
    parser.add_argument("--engine", choices=["auto", "serial", "dask", "processes"], default="auto",
                        help="auto: in this process for one worker, else a local Dask cluster when Dask is "
                             "installed, else local processes")


def add_parser(subparsers: Any) -> None:
    """Add the ``propagate`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser("propagate", help=HELP, description=HELP)
    parser.add_argument("data", type=Path, help="folder with JPEGImages/<video>/ frames")
    parser.add_argument("--masks", type=Path, required=True,
                        help="folder with <video>/<frame>.png masks of any frames (e.g. the first)")
    parser.add_argument("--out", type=Path, required=True, help="output folder: <video>/<frame>.png for every frame")
    parser.add_argument("--videos", nargs="+", metavar="NAME", help="videos to run (default: every folder in --masks)")
    parser.add_argument("--preset", choices=["lite", "paper"], default="lite",
                        help="architecture and session settings (paper: SessionConfig.paper())")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--weights", metavar="PATH", help="checkpoint of `manet train` (default: the shipped weights)")
    model.add_argument("--checkpoint", metavar="PATH.pth", help="the authors' released weights (--preset paper)")
    model.add_argument("--tiny-random", action="store_true", help="a random tiny model (tests and CI)")
    parser.add_argument("--working-size", type=int, metavar="N", help="short side at which frames are embedded")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="local worker processes (default 1)")
    add_engine_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=main)


def _setup(args: argparse.Namespace) -> tuple[Any, Any, list[Any]]:
    from manet.batch.propagate import find_videos
    from manet.config import SessionConfig
    from manet.eval.evaluate import ModelSpec

    if args.checkpoint is not None and args.preset != "paper":
        raise ValueError("--checkpoint loads the authors' weights, which fit the paper architecture: "
                         "add --preset paper")
    if args.preset == "paper" and args.checkpoint is None and args.weights is None and not args.tiny_random:
        raise ValueError("--preset paper has no shipped weights: pass --checkpoint manet.pth or --weights PATH")
    config = SessionConfig.paper() if args.preset == "paper" else SessionConfig()
    if args.working_size is not None:
        config = config.replace(working_size=args.working_size or None)
    spec = ModelSpec(weights=args.weights or "default", preset=args.preset, checkpoint=args.checkpoint,
                     tiny_random=args.tiny_random)
    return spec, config, find_videos(args.data, args.masks, args.out, args.videos)


def main(args: argparse.Namespace) -> int:
    """Run ``manet propagate``: 0 when every video is written, 1 when some failed, 2 for bad input."""
    from tqdm.auto import tqdm

    from manet.batch.propagate import is_complete, propagate_task
    from manet.batch.runner import TaskEvent, run_tasks
    from manet.errors import ManetError

    try:
        spec, config, videos = _setup(args)
    except (ValueError, ManetError, OSError) as error:
        print(f"manet propagate: error: {error}", file=sys.stderr)
        return 2
    pending = [task for task in videos if not is_complete(task)]
    if len(pending) < len(videos):
        print(f"skipping {len(videos) - len(pending)} of {len(videos)} videos already written to {args.out}")
    tasks = {task.name: (spec, task, config) for task in pending}
    with tqdm(total=len(tasks), unit="video", disable=True if args.no_progress else None) as bar:
        def on_event(event: TaskEvent) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{event.key} {'failed' if event.failure else 'done'}")

        try:
            outcome = run_tasks(propagate_task, tasks, workers=args.workers, address=args.address,
                                engine=args.engine, on_event=on_event)
        except (ValueError, ImportError, OSError) as error:
            print(f"manet propagate: error: {error}", file=sys.stderr)
            return 2
    for name, result in sorted(outcome.results.items()):
        print(f"{name}: {result.frames} frames from {result.given} mask(s) in {result.seconds:.1f} s")
    for failure in outcome.failures:
        print(f"{failure.key}: FAILED: {failure.error}", file=sys.stderr)
    if outcome.failures:
        print(f"{len(outcome.failures)} of {len(tasks)} videos failed; the {len(outcome.results)} written are kept: "
              "rerun the same command to retry only the failed ones", file=sys.stderr)
        return 1
    return 0
