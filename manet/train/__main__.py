"""``python -m manet.train stage1 ...`` (the same as ``manet train``)."""

from __future__ import annotations

import argparse
import sys

from manet.train.cli import add_parser, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m manet.train")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    sys.exit(main(parser.parse_args(["train", *sys.argv[1:]])))
