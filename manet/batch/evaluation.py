"""``manet eval`` with sequences as tasks (local processes or a Dask cluster), failures reported per
sequence, and finished sequences kept in a results folder so a rerun only runs the rest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from manet.batch.runner import Engine, TaskEvent, TaskFailure, run_tasks
from manet.config import SessionConfig
from manet.errors import ManetError
from manet.eval.rounds import (
    EvalProgress,
    EvalSettings,
    EvaluationResult,
    ModelSpec,
    ProgressCallback,
    RoundResult,
    SequenceResult,
    evaluate_sequence,
    summarize,
)
from manet.io.davis import DavisSequence
from manet.provenance import model_spec_weights

STORE_FORMAT = "manet-eval-sequence-1"
_MODELS: dict[str, Any] = {}  # per worker process: the model each spec built


class EvaluationFailed(ManetError):
    """Every sequence of a run failed: nothing to summarise (the failures say why)."""


def run_fingerprint(spec: ModelSpec, session_config: SessionConfig, settings: EvalSettings) -> str:
    """A digest of everything a sequence's numbers depend on; stored results of another run differ.

    The weights file's sha256 is part of it: a checkpoint retrained at the same path is another model.
    """
    weights = model_spec_weights(dataclasses.asdict(spec))
    digests = [weights.get("sha256"), (weights.get("backbone") or {}).get("sha256")]
    run = dataclasses.asdict(settings)
    if run["next_frame"] == "worst":  # the rule before the setting existed: earlier stores stay valid
        del run["next_frame"]
    text = json.dumps([dataclasses.asdict(spec), session_config.to_dict(), run, digests],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SequenceStore:
    """``folder/<sequence>.json``: one finished sequence each, written atomically, tagged with the
    run's fingerprint so results of other settings are never mixed in."""

    def __init__(self, folder: str | os.PathLike[str], fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint

    def load(self, name: str) -> SequenceResult | None:
        """The stored result of ``name``; None when absent. Raises ValueError for another run's file."""
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != STORE_FORMAT or data.get("fingerprint") != self.fingerprint:
            raise ValueError(f"{path} holds a result of a run with other settings or model: use another "
                             "--results-dir, or delete it to start over")
        return sequence_from_dict(data["sequence"])

    def save(self, result: SequenceResult) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{result.name}.json"
        temporary = path.with_name(f".{path.name}.partial")
        payload = {"format": STORE_FORMAT, "fingerprint": self.fingerprint, "sequence": dataclasses.asdict(result)}
        temporary.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(temporary, path)


def sequence_from_dict(data: dict[str, Any]) -> SequenceResult:
    """Inverse of ``dataclasses.asdict`` for :class:`SequenceResult`."""
    rounds = tuple(RoundResult(**{**entry, "jaccard": tuple(entry["jaccard"]), "boundary": tuple(entry["boundary"]),
                                  "frame_jaccard": tuple(entry.get("frame_jaccard", ()))})
                   for entry in data["rounds"])
    return SequenceResult(data["name"], data["num_frames"], data["height"], data["width"],
                          tuple(data["object_ids"]), rounds)


def evaluate_task(spec: ModelSpec, sequence: DavisSequence, session_config: SessionConfig,
                  settings: EvalSettings) -> SequenceResult:
    """One sequence with the model ``spec`` builds (built once per worker process)."""
    key = repr(spec)
    if key not in _MODELS:
        _MODELS[key] = spec.build()
    return evaluate_sequence(_MODELS[key], sequence, session_config, settings)


def evaluate_tasks(spec: ModelSpec, sequences: Sequence[DavisSequence], session_config: SessionConfig,
                   settings: EvalSettings, *, workers: int = 1, address: str | None = None,
                   engine: Engine = "auto", results_dir: str | os.PathLike[str] | None = None,
                   progress: ProgressCallback | None = None) -> EvaluationResult:
    """Evaluate ``sequences`` as tasks; the result summarises every finished one and lists the failures.

    With ``results_dir`` each sequence is stored as it finishes and sequences stored by an earlier
    run with the same settings are not run again.

    Raises:
        EvaluationFailed: no sequence finished.
    """
    store = None if results_dir is None else SequenceStore(results_dir, run_fingerprint(spec, session_config, settings))
    finished: dict[str, SequenceResult] = {}
    if store is not None:
        finished = {s.name: result for s in sequences if (result := store.load(s.name)) is not None}
    tasks = {s.name: (spec, s, session_config, settings) for s in sequences if s.name not in finished}
    total = len(sequences) * settings.rounds
    already = len(finished)

    def on_event(event: TaskEvent) -> None:
        if event.failure is not None:
            return
        result: SequenceResult = event.result
        if store is not None:
            store.save(result)
        if progress is not None:
            progress(EvalProgress((already + event.done) * settings.rounds, total, result.name, settings.rounds,
                                  result.rounds[-1].mean_jaccard))

    outcome = run_tasks(evaluate_task, tasks, workers=workers, address=address, engine=engine, on_event=on_event)
    finished.update(outcome.results)
    ordered = [finished[s.name] for s in sequences if s.name in finished]
    if not ordered:
        raise EvaluationFailed("every sequence failed: " + "; ".join(f"{f.key}: {f.error}" for f in outcome.failures))
    return dataclasses.replace(summarize(ordered, settings), failures=tuple(outcome.failures))


__all__ = ["EvaluationFailed", "SequenceStore", "TaskFailure", "evaluate_task", "evaluate_tasks"]
