"""Replays `manet eval`'s rounds on dev videos and saves rounds 1 and 8's masks (ignored by git).

Run from the repository: python runs/eval/edges/boundary_masks.py ../shared/data/davis2016-480p-dev bear,car-turn
"""
import sys, numpy as np, torch, manet
from manet.eval.dataset import load_sequence, find_sequences
from manet.eval.rounds import EvalSettings, sequence_rng, _next_annotation
from manet.eval.metrics import jaccard
from manet.inference.refine import GuidedUpsampler
torch.set_num_threads(1)
root = sys.argv[1]; names = sys.argv[2].split(',')
import os; os.makedirs('runs/eval/edges/masks', exist_ok=True)
model = manet.load_model()
for name in names:
    seq = load_sequence(find_sequences(root, [name])[0])
    cfg = manet.SessionConfig()
    s = manet.Session(model, seq.frames, config=cfg)
    rng = sequence_rng(0, seq.name); settings = EvalSettings(rounds=8)
    masks = np.zeros_like(seq.gt); annotated = []
    saved = {}
    for i in range(1, 9):
        a, _ = _next_annotation(i, masks, seq.gt, seq.object_ids, seq.first_annotation, annotated, settings, rng)
        s.interact(a)
        for _ in s.propagate(): pass
        masks = s.masks; annotated.append(a.frame)
        if i in (1, 8): saved[f'r{i}'] = masks.copy()
        print(name, i, a.frame, jaccard(seq.gt, masks, seq.object_ids).mean(), flush=True)
    # oracle: GT area fraction per grid cell -> guided filter
    np.save(f"runs/eval/edges/masks/{name}-meta.npy", np.array([*s.grid, *s.working_size]))
    np.savez_compressed(f'runs/eval/edges/masks/{name}.npz', gt=seq.gt, **saved, annotated=np.array(annotated))
