"""Memory and time of opening and reading a long video with ``VideoSource``.

Synthesises a 2000-frame 854x480 mp4 (in a child process, so that writing it does not count
towards this process's peak memory), opens it, reads every frame in order, then reads frames
backwards and at random, and prints resident memory (current and peak) after each step.

    python benchmarks/long_video_memory.py [--frames 2000] [--cache-mb 128] [--video existing.mp4]

Exit status 1 when ``--max-open-seconds`` or ``--max-open-mb`` (memory added by opening) is exceeded.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

HEIGHT, WIDTH, FPS = 480, 854, 25.0
REPOSITORY = Path(__file__).resolve().parents[1]


def write_video(path: Path, num_frames: int) -> None:
    """A moving noise texture with a bright square, written with OpenCV's mp4v encoder."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (HEIGHT // 8, WIDTH // 4, 3), dtype=np.uint8), (2 * WIDTH, HEIGHT))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit("this OpenCV build cannot write mp4v video")
    for t in range(num_frames):
        frame = np.ascontiguousarray(texture[:, t % WIDTH: t % WIDTH + WIDTH])
        y, x = (7 * t) % (HEIGHT - 40), (11 * t) % (WIDTH - 40)
        frame[y:y + 40, x:x + 40] = 255
        writer.write(frame)
    writer.release()


def memory_mb() -> tuple[float, float]:
    """(current resident set, peak resident set) of this process in MB."""
    try:
        import psutil

        current = psutil.Process().memory_info().rss / 2**20
    except ImportError:
        current = _proc_status_kb("VmRSS") / 1024
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return current, peak_kb / 1024


def _proc_status_kb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")


def report(step: str, seconds: float | None = None) -> float:
    current, peak = memory_mb()
    timing = f"  {seconds:6.2f} s" if seconds is not None else ""
    print(f"{step:<28} rss {current:7.1f} MB   peak {peak:7.1f} MB{timing}", flush=True)
    return current


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--cache-mb", type=float, default=None, help="frame cache budget (default: library's)")
    parser.add_argument("--video", type=Path, default=None, help="benchmark this file instead of a synthetic one")
    parser.add_argument("--max-open-seconds", type=float, default=None)
    parser.add_argument("--max-open-mb", type=float, default=None)
    parser.add_argument("--write-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_only is not None:
        write_video(args.write_only, args.frames)
        return 0

    with tempfile.TemporaryDirectory(prefix="manet-bench-") as folder:
        path = args.video
        if path is None:
            path = Path(folder) / "long.mp4"
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--frames", str(args.frames), "--write-only", str(path)],
                           check=True)
            print(f"synthesised {args.frames} frames {WIDTH}x{HEIGHT} in {time.perf_counter() - started:.1f} s "
                  f"({path.stat().st_size / 2**20:.1f} MB)")
        return run(path, args)


def run(path: Path, args: argparse.Namespace) -> int:
    sys.path.insert(0, str(REPOSITORY))
    from manet.io.video import DEFAULT_CACHE_MB, VideoSource

    baseline = report("after import")
    started = time.perf_counter()
    video = VideoSource.open(path, cache_mb=DEFAULT_CACHE_MB if args.cache_mb is None else args.cache_mb)
    open_seconds = time.perf_counter() - started
    opened = report("after open", open_seconds)
    print(f"  {video.source_description}; cache budget {video.stats().cache_budget_bytes / 2**20:.0f} MB")

    started = time.perf_counter()
    checksum = 0
    for frame in video:
        checksum += int(frame[0, 0, 0])
    seconds = time.perf_counter() - started
    report("after iterating all frames", seconds)
    print(f"  {video.num_frames / seconds:.0f} frames/s, {video.stats()}")

    started = time.perf_counter()
    for t in range(video.num_frames - 1, max(-1, video.num_frames - 301), -1):
        video.frame(t)
    report("after 300 frames backwards", time.perf_counter() - started)

    started = time.perf_counter()
    for t in np.random.default_rng(0).integers(0, video.num_frames, 50):
        video.frame(int(t))
    report("after 50 random frames", time.perf_counter() - started)
    print(f"  {video.stats()}")

    failed = False
    if args.max_open_seconds is not None and open_seconds > args.max_open_seconds:
        print(f"FAIL: opening took {open_seconds:.2f} s > {args.max_open_seconds} s")
        failed = True
    if args.max_open_mb is not None and opened - baseline > args.max_open_mb:
        print(f"FAIL: opening added {opened - baseline:.1f} MB > {args.max_open_mb} MB")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
