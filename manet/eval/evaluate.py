"""Evaluate a model over DAVIS sequences: the protocol of :mod:`manet.eval.rounds` per sequence,
in this process or as tasks (local processes, a Dask cluster, a results folder to resume from).

The protocol's types are re-exported here, the names ``manet eval`` and scripts import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from manet.batch.evaluation import evaluate_tasks
from manet.config import SessionConfig
from manet.eval.rounds import (
    EvalProgress,
    EvalSettings,
    EvaluationResult,
    ModelSpec,
    ProgressCallback,
    RoundCallback,
    RoundResult,
    SequenceResult,
    evaluate_loaded,
    evaluate_sequence,
    run_rounds,
    sequence_rng,
    summarize,
)
from manet.io.davis import DavisSequence
from manet.model.network import MANet
from manet.simulate.robot import require_drawing

__all__ = [
    "EvalProgress", "EvalSettings", "EvaluationResult", "ModelSpec", "ProgressCallback", "RoundCallback",
    "RoundResult", "SequenceResult", "evaluate", "evaluate_loaded", "evaluate_sequence", "run_rounds",
    "sequence_rng", "summarize",
]


def evaluate(model: MANet | ModelSpec, sequences: Sequence[DavisSequence], session_config: SessionConfig,
             settings: EvalSettings, workers: int = 1,
             progress: ProgressCallback | None = None, address: str | None = None,
             results_dir: str | os.PathLike[str] | None = None) -> EvaluationResult:
    """Evaluate sequences and summarise them.

    Args:
        model: a built model, or a :class:`ModelSpec` (needed for tasks: each worker process
            builds its own copy).
        workers: local processes to spread sequences over. Parallel sequences share the CPU, so
            their seconds (and AUC/J@60) are pessimistic; time with ``workers=1``.
        progress: called as rounds (or, with tasks, sequences) finish.
        address: a Dask scheduler to run the sequences on (:mod:`manet.batch.runner`).
        results_dir: keep each finished sequence there; a rerun skips the stored ones.

    With ``workers > 1``, an ``address`` or a ``results_dir`` the sequences run as tasks
    (:func:`manet.batch.evaluation.evaluate_tasks`): a failing sequence is listed in
    ``failures`` and the others are summarised.
    """
    if not sequences:
        raise ValueError("no sequences to evaluate")
    require_drawing("evaluation")  # before a model is built or a frame read
    if workers > 1 or address is not None or results_dir is not None:
        if not isinstance(model, ModelSpec):
            raise ValueError("running sequences as tasks needs a ModelSpec (each process builds its own model), "
                             "not a model")
        return evaluate_tasks(model, sequences, session_config, settings, workers=workers, address=address,
                              results_dir=results_dir, progress=progress)
    built = model.build() if isinstance(model, ModelSpec) else model
    total = len(sequences) * settings.rounds
    results: list[SequenceResult] = []
    for sequence in sequences:
        def on_round(result: RoundResult, name: str = sequence.name) -> None:
            if progress is not None:
                done = len(results) * settings.rounds + result.index
                progress(EvalProgress(done, total, name, result.index, result.mean_jaccard))

        results.append(evaluate_sequence(built, sequence, session_config, settings, on_round))
    return summarize(results, settings)
