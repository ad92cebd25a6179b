"""``python -m manet.eval DATASET ...`` (the same as ``manet eval``)."""

from __future__ import annotations

import argparse
import sys

from manet.eval.cli import add_parser, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m manet.eval")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    sys.exit(main(parser.parse_args(["eval", *sys.argv[1:]])))
