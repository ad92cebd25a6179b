"""Memory and time of a long video: reading it with ``VideoSource``, and (``--with-model``) a round.

Synthesises a 2000-frame 854x480 mp4 (in a child process, so that writing it does not count
towards this process's peak memory), opens it, reads every frame in order, then reads frames
backwards and at random, and prints resident memory (current and peak) after each step.

With ``--with-model`` it instead opens ``manet.Session`` on the video with a randomly initialised
default model, embeds every frame, runs one round (interact on the middle frame, full
propagation) and prints resident memory after each stage plus what the session holds.

    python benchmarks/long_video_memory.py [--frames 2000] [--cache-mb 128] [--video existing.mp4]
    python benchmarks/long_video_memory.py --with-model [--embedding-budget-mb 512] [--max-peak-mb 4096]

Exit status 1 when ``--max-open-seconds``, ``--max-open-mb`` (memory added by opening) or
``--max-peak-mb`` (peak resident memory of the whole run) is exceeded.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

HEIGHT, WIDTH, FPS = 480, 854, 25.0
REPOSITORY = Path(__file__).resolve().parents[1]

if TYPE_CHECKING:
    from manet import Scribble, Session


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


def resident_split_mb() -> tuple[float, float]:
    """(anonymous, file-backed) resident memory in MB; memory-mapped embeddings are file-backed."""
    return _proc_status_kb("RssAnon") / 1024, _proc_status_kb("RssFile") / 1024


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
    parser.add_argument("--with-model", action="store_true", help="run one segmentation round on the video")
    parser.add_argument("--embedding-budget-mb", type=float, default=512.0,
                        help="SessionConfig.embedding_budget_mb for --with-model (beyond it embeddings spill to disk)")
    parser.add_argument("--reuse-budget-mb", type=float, default=1024.0,
                        help="SessionConfig.reuse_budget_mb for --with-model (what later rounds reuse)")
    parser.add_argument("--max-peak-mb", type=float, default=None, help="fail when peak resident memory exceeds this")
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
        return run_model(path, args) if args.with_model else run(path, args)


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


def run_model(path: Path, args: argparse.Namespace) -> int:
    """One round on the long video; prints memory after each stage and the session's holdings."""
    sys.path.insert(0, str(REPOSITORY))
    import manet
    from manet import SessionConfig

    report("after import")
    started = time.perf_counter()
    session = manet.Session(manet.load_model(weights=None), path,
                            SessionConfig(embedding_budget_mb=args.embedding_budget_mb,
                                          reuse_budget_mb=args.reuse_budget_mb))
    report("after opening the session", time.perf_counter() - started)
    total = session.num_frames
    started = time.perf_counter()
    session.prepare(progress=lambda done, count: _milestone(f"embedded {done}/{count}", done, count))
    embed_seconds = time.perf_counter() - started
    report("after embedding every frame", embed_seconds)
    frame = total // 2
    started = time.perf_counter()
    session.interact(square_scribbles(frame), frame=frame)
    report(f"after interact (frame {frame})", time.perf_counter() - started)
    started = time.perf_counter()
    for done, _ in enumerate(session.propagate(), start=1):
        _milestone(f"propagated {done}/{total - 1}", done, total - 1)
    propagate_seconds = time.perf_counter() - started
    report("after propagation (committed)", propagate_seconds)
    print(f"  encoder {1000 * embed_seconds / total:.0f} ms/frame, propagation "
          f"{1000 * propagate_seconds / max(1, total - 1):.0f} ms/frame; parts: "
          + ", ".join(f"{part} {1000 * sec / max(1, total - 1):.0f}" for part, sec in
                      session.last_propagation_seconds.items()))
    describe_holdings(session)
    _, peak = memory_mb()
    anonymous, file_backed = resident_split_mb()
    print(f"peak resident memory {peak:.0f} MB (now: {anonymous:.0f} MB anonymous + {file_backed:.0f} MB file-backed)")
    if args.max_peak_mb is not None and peak > args.max_peak_mb:
        print(f"FAIL: peak resident memory {peak:.0f} MB > {args.max_peak_mb:.0f} MB")
        return 1
    return 0


def square_scribbles(frame: int) -> list[Scribble]:
    """A stroke across the synthetic video's bright square on ``frame`` and one on the background."""
    from manet import Scribble

    y, x = (7 * frame) % (HEIGHT - 40), (11 * frame) % (WIDTH - 40)
    background_y = (y + HEIGHT // 2) % (HEIGHT - 20) + 10
    return [Scribble(1, np.array([[x + 8, y + 20], [x + 32, y + 20]], dtype=np.float64)),
            Scribble(0, np.array([[20, background_y], [WIDTH - 20, background_y]], dtype=np.float64))]


def _milestone(label: str, done: int, total: int) -> None:
    if done == total or done % 250 == 0:
        report(label)


def describe_holdings(session: Session) -> None:
    """Megabytes of each per-frame structure the session keeps after a round."""
    mb = 2.0**20
    state = session.state()
    cache = session.mask_cache
    masks = cache.nbytes / mb
    logits = sum(record.logits.nbytes for record in state.rounds) / mb
    before = sum(record.global_before.maps.nbytes for record in state.rounds) / mb
    memory = 0.0 if state.global_memory is None else state.global_memory.maps.nbytes / mb
    local = sum(maps.nbytes for entry in state.local_rounds for maps in entry.maps.values()) / mb
    data = session.embeddings.export()
    embeddings = 0.0 if data is None else data.nbytes / mb
    where = "a memory-mapped file" if session.embeddings.spilled else "RAM"
    print(f"  session holds: mask cache {masks:.0f} MB ({len(cache)} frames at {session.height}x{session.width}), "
          f"round logits {logits:.0f} MB, global memory {memory:.0f} MB + {before:.0f} MB before-round copies, "
          f"local memory {local:.0f} MB, embeddings {embeddings:.0f} MB in {where} (grid {session.grid})")


if __name__ == "__main__":
    sys.exit(main())
