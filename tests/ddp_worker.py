"""Run a few training steps in one process of a torchrun job and record a digest of its parameters
(batch-norm buffers are re-broadcast from rank 0 at every forward, so they are left out).

Used by tests/test_training.py: ``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py DATA OUT``.
"""

from __future__ import annotations

import hashlib
import os
import sys

import torch

from manet.config import ModelConfig
from manet.train.loop import TrainConfig, Trainer, finish_distributed


def main() -> None:
    data, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    config = TrainConfig(steps=3, batch_size=1, crop=32, window=2, log_every=1, checkpoint_every=100, seed=0)
    trainer = Trainer(config, data, None, out, ModelConfig.tiny())
    trainer.run()
    digest = hashlib.sha256()
    for value in trainer.model.parameters():
        digest.update(value.detach().cpu().numpy().tobytes())
    with open(os.path.join(out, f"rank{trainer.rank}.sha256"), "w", encoding="utf-8") as handle:
        handle.write(digest.hexdigest())
    finish_distributed()


if __name__ == "__main__":
    main()
