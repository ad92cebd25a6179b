"""Time of a correction propagated over a range of frames against the whole video.

Synthesises a long 854x480 mp4 (the moving square of ``long_video_memory.py``), embeds every
frame, runs round 1 over the whole video, then times round 2 on frame ``--at`` twice: propagated
over [at - radius, at + radius] only, and (after undo) over the whole video. Checks that the
ranged round left every frame outside its range unchanged, and prints both times.

    python benchmarks/propagation_range.py [--frames 2000] [--at 1500] [--radius 100] [--working-size 240]

Weights are random (``load_model(weights=None)``): times do not depend on them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from manet import Scribble, Session

REPOSITORY = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--at", type=int, default=None, help="frame of the correction (default: 3/4 of the video)")
    parser.add_argument("--radius", type=int, default=100, help="frames on each side of the correction to propagate")
    parser.add_argument("--working-size", type=int, default=240, help="SessionConfig.working_size (short side)")
    parser.add_argument("--video", type=Path, default=None, help="an existing video instead of a synthetic one")
    args = parser.parse_args()
    sys.path[:0] = [str(REPOSITORY), str(BENCHMARKS)]
    from long_video_memory import square_scribbles

    with tempfile.TemporaryDirectory(prefix="manet-range-") as folder:
        path = args.video
        if path is None:
            path = Path(folder) / "long.mp4"
            subprocess.run([sys.executable, str(BENCHMARKS / "long_video_memory.py"), "--frames", str(args.frames),
                            "--write-only", str(path)], check=True)
        return run(path, args, square_scribbles)


def run(path: Path, args: argparse.Namespace, scribbles: Callable[[int], list[Scribble]]) -> int:
    import manet

    session = manet.Session(manet.load_model(weights=None), path,
                            manet.SessionConfig(working_size=args.working_size, embedding_budget_mb=2048))
    total = session.num_frames
    at = min(total - 1, args.at if args.at is not None else (3 * total) // 4)
    start, stop = max(0, at - args.radius), min(total - 1, at + args.radius)
    started = time.perf_counter()
    session.prepare()
    print(f"{total} frames {session.width}x{session.height}, working size {session.working_size}: "
          f"embedded in {time.perf_counter() - started:.1f} s")
    first = seconds_of_round(session, scribbles(total // 2), total // 2)
    print(f"round 1 (frame {total // 2}, whole video):      {first:7.1f} s")
    before = session.masks
    ranged = seconds_of_round(session, scribbles(at), at, start=start, stop=stop)
    after = session.masks
    outside = np.ones(total, dtype=bool)
    outside[start:stop + 1] = False
    unchanged = bool(np.array_equal(before[outside], after[outside]))
    session.undo()
    whole = seconds_of_round(session, scribbles(at), at)
    print(f"round 2 (frame {at}, frames {start}..{stop}): {ranged:7.1f} s  ({stop - start + 1} frames)")
    print(f"round 2 (frame {at}, whole video):      {whole:7.1f} s  ({total} frames)")
    print(f"range / whole: {ranged / whole:.3f}; frames outside the range unchanged: {unchanged}")
    return 0 if unchanged else 1


def seconds_of_round(session: Session, prompts: list[Scribble], frame: int, start: int | None = None,
                     stop: int | None = None) -> float:
    """Wall time of interact + propagate over [start, stop] on ``frame``."""
    started = time.perf_counter()
    session.interact(prompts, frame=frame)
    for _ in session.propagate(start=start, stop=stop):
        pass
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
