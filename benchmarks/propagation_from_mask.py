"""Propagation quality alone: give frame 0's ground-truth mask as a full annotation, propagate
once, and print mean J over the remaining frames per sequence (no interaction head involved).

    python benchmarks/propagation_from_mask.py DAVIS_DIR --sequences-file splits/dev.txt \
        [--weights PATH | --matching-baseline]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

import manet
from manet.eval.dataset import find_sequences, load_sequence, read_sequence_names
from manet.eval.metrics import jaccard


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--sequences-file", type=Path, default=None)
    parser.add_argument("--weights", default="default")
    parser.add_argument("--matching-baseline", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.matching_baseline:
        from manet.model.baseline import MatchingBaseline

        model = MatchingBaseline().eval()
    else:
        model = manet.load_model(weights=args.weights)
    names = read_sequence_names(args.sequences_file) if args.sequences_file else None
    scores = []
    for sequence in find_sequences(args.dataset, names):
        loaded = load_sequence(sequence)
        session = manet.Session(model, loaded.frames)
        session.interact_mask(loaded.gt[0], 0)
        for _ in session.propagate():
            pass
        score = float(jaccard(loaded.gt[1:], session.masks[1:], list(loaded.object_ids)).mean())
        scores.append(score)
        print(f"{sequence.name:20s} J {score:.3f}", flush=True)
    print(f"{'mean':20s} J {np.mean(scores):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
