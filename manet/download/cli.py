"""``manet download``: the authors' weights and the DAVIS-2017 benchmark data, into the per-user cache.

Examples::

    manet download paper-weights                     # then load_model("paper")
    manet download davis2017 davis2017-scribbles     # then manet eval --data davis2017
    manet download --list                            # what is in the cache

This module imports only argparse at load time: ``manet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

NAMES = ("paper-weights", "backbone", "davis2017", "davis2017-scribbles")
HELP = "fetch the authors' weights or DAVIS-2017 (+ scribbles) into the per-user cache"
NEXT_STEP = {
    "paper-weights": 'Python: load_model("paper")',
    "backbone": "the COCO-pretrained DeepLabv3+ the authors train from",
    "davis2017": "manet eval --data davis2017  |  manet train stage1 --data davis2017 --out RUN",
    "davis2017-scribbles": "round 1 of `manet eval --data davis2017` uses these human scribbles",
}


def add_parser(subparsers: Any) -> None:
    """Add the ``download`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser("download", help=HELP, description=HELP + ". Interrupted downloads resume; "
                                   "every file is checked (size, sha256, content) before it enters the cache. "
                                   "URLs can be replaced with MANET_URL_<NAME> (e.g. MANET_URL_PAPER_WEIGHTS).")
    # argparse checks an empty nargs="*" list against the choices too: [] lets a bare `manet download` through.
    parser.add_argument("names", nargs="*", choices=[*NAMES, []], metavar="NAME",
                        help=f"what to fetch: {', '.join(NAMES)}")
    parser.add_argument("--dir", type=Path, metavar="DIR",
                        help="cache folder to use instead of the per-user one (then set MANET_CACHE_DIR=DIR "
                             "so load_model and --data find it)")
    parser.add_argument("--list", action="store_true", help="show what the cache holds and exit")
    parser.add_argument("--keep-archive", action="store_true", help="keep the zips after extracting them")
    parser.add_argument("--retries", type=int, default=2, metavar="N",
                        help="extra attempts, each resuming, when a connection drops (default: 2)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="give up on a silent server after this long (default: 60)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``manet download``: 0 when everything asked for is in the cache, 1 when a download failed,
    2 for bad arguments."""
    from manet.download.api import download, status
    from manet.download.cache import cache_root
    from manet.errors import ManetError

    try:
        root = cache_root(args.dir)
        if args.list or not args.names:
            if not args.list:
                print(f"manet download: name what to fetch: {', '.join(NAMES)}", file=sys.stderr)
            print(f"cache: {root}")
            for name, where in status(root).items():
                print(f"  {name:<20} {where}")
            return 0 if args.list else 2
        if args.retries < 0 or args.timeout <= 0:
            raise ValueError("--retries must be >= 0 and --timeout > 0")
    except (ManetError, ValueError) as error:
        print(f"manet download: error: {error}", file=sys.stderr)
        return 2
    for name in dict.fromkeys(args.names):  # in order, once each
        print(f"{name}: into {root}", file=sys.stderr)
        try:
            place = download(name, root, progress=not args.quiet, keep_archive=args.keep_archive,
                             retries=args.retries, timeout=args.timeout)
        except (ManetError, ValueError, OSError) as error:
            print(f"manet download: error: {name}: {error}", file=sys.stderr)
            return 1
        print(f"{name}: {place}")
        print(f"  next: {NEXT_STEP[name]}")
    if args.dir is not None:
        print(f"set MANET_CACHE_DIR={root} so load_model('paper') and --data davis2017 look there")
    return 0
