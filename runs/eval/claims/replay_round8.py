"""Replay motocross-bumps' round 8 of the fixed-user dev run with parts of its strokes.

Usage: python replay_round8.py DEV_ROOT motocross-bumps-strokes.json
The JSON file holds the eight annotations the simulated user drew in `manet eval` (fixed user,
seed 0, defaults of commit 239861a). Rounds 1-7 are replayed as drawn; round 8 (frame 15) with
both strokes, the background stroke alone and the object stroke alone, each undone before the
next. Prints mean J of the video and J of frames 10-24 (x100). MANET_CLAIM / MANET_CLAIM_EXCL in
the environment switch on the exploratory claim limits (claims.patch beside this file).
"""
import dataclasses
import json
import sys

import numpy as np
import torch

import manet
from manet.eval.dataset import find_sequences, load_sequence
from manet.eval.metrics import jaccard

torch.set_num_threads(1)
root, recorded = sys.argv[1], sys.argv[2]
rounds = [manet.Annotation(a["frame"], tuple(manet.Scribble(s["object_id"], np.array(s["points"]), s["radius"])
                                             for s in a["scribbles"]))
          for a in json.load(open(recorded))["annotations"]]
sequence = load_sequence(find_sequences(root, ["motocross-bumps"])[0])
session = manet.Session(manet.load_model(), sequence.frames)
for record in rounds[:7]:
    session.interact(record)
    list(session.propagate())


def frame_j() -> np.ndarray:
    return jaccard(sequence.gt, session.masks, sequence.object_ids).reshape(len(sequence.gt), -1).mean(-1)


before = frame_j()
print("round 7", round(float(before.mean()), 3), (before[10:25] * 100).astype(int).tolist())
last = rounds[7]
for name, keep in [("round 8, both strokes", (0, 1)), ("background stroke alone", (0,)), ("object stroke alone", (1,))]:
    session.interact(dataclasses.replace(last, scribbles=tuple(s for s in last.scribbles if s.object_id in keep)))
    list(session.propagate())
    after = frame_j()
    print(name, round(float(after.mean()), 3), (after[10:25] * 100).astype(int).tolist())
    session.undo()
