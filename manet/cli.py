"""The ``manet`` command: ``train``, ``eval``, ``annotate``, ``download`` and ``propagate``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Subcommand modules, each with add_parser(subparsers) and main(args) -> int. Imported on use
# so that `manet --help` stays fast.
SUBCOMMANDS = {
    "train": "manet.train.cli",
    "eval": "manet.eval.cli",
    "annotate": "manet_widget.annotate_cli",
    "propagate": "manet.batch.cli",
    "download": "manet.download.cli",
}


def build_parser(available: dict[str, str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manet", description="Interactive video object segmentation (MA-Net).")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, module_name in (available or SUBCOMMANDS).items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            subparsers.add_parser(name, help=f"unavailable: {error}")
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    # Import only the named subcommand's module when there is one (fast, and independent of
    # optional extras such as the widget's dependencies).
    chosen = arguments[0] if arguments and arguments[0] in SUBCOMMANDS else None
    parser = build_parser({chosen: SUBCOMMANDS[chosen]} if chosen else None)
    args = parser.parse_args(arguments)
    module = importlib.import_module(SUBCOMMANDS[args.command])
    return int(module.main(args))

if __name__ == "__main__":
    sys.exit(main())
