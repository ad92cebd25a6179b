"""An evaluation as JSON, as a plot, and as a short text table.

The plot is drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot), so making one
never changes the backend of a notebook or a script. matplotlib comes with the ``eval`` extra and
is imported only when a plot is made, so the JSON report and the table work without it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manet.eval.rounds import BELOW_BEST_TOLERANCE, EvalSettings, EvaluationResult, SequenceResult, rounds_below_best
from manet.optional import require
from manet.provenance import model_spec_weights, provenance

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_FORMAT = "manet-eval/1"


def _sequence_dict(sequence: SequenceResult) -> dict[str, Any]:
    return {
        "name": sequence.name,
        "num_frames": sequence.num_frames,
        "size": [sequence.height, sequence.width],
        "object_ids": list(sequence.object_ids),
        "rounds": [
            {
                "round": r.index,
                "frame": r.frame,
                "source": r.source,
                "seconds": r.seconds,
                "jaccard": r.mean_jaccard,
                "boundary": r.mean_boundary,
                "jaccard_per_object": {str(k): v for k, v in zip(sequence.object_ids, r.jaccard)},
                "boundary_per_object": {str(k): v for k, v in zip(sequence.object_ids, r.boundary)},
                "jaccard_per_frame": [round(value, 5) for value in r.frame_jaccard],
            }
            for r in sequence.rounds
        ],
    }


def report_dict(result: EvaluationResult, settings: EvalSettings,
                context: Mapping[str, Any] | None = None,
                run_provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole run as plain JSON-ready data.

    Keys: ``format``; ``settings``; ``context`` (what the caller adds: dataset, model,
    session config, ...); ``provenance`` (:func:`manet.provenance.provenance`: the weights' sha256,
    git commit, package versions; ``run_provenance`` when given, else made from ``context["model"]``,
    the run's :class:`~manet.eval.rounds.ModelSpec` fields); ``summary`` (``auc``, ``jaccard_at_threshold``,
    ``threshold_seconds``, ``end_seconds``, ``curve`` {seconds, jaccard}, ``per_round``
    [{round, jaccard, boundary, seconds}], ``below_best_round`` {tolerance, sequences: [{name,
    best_round, best_jaccard, last_round, last_jaccard}]}: the sequences whose last round ends more
    than the tolerance below their best earlier round); ``sequences`` (per sequence and round: frame,
    source, seconds, J and F means and per object, and ``jaccard_per_frame``: J of every frame,
    averaged over the objects).
    """
    summary = result.summary
    per_round = [
        {"round": index + 1, "jaccard": j, "boundary": f, "seconds": s}
        for index, (j, f, s) in enumerate(zip(summary.round_jaccard, result.round_boundary, summary.round_seconds))
    ]
    context = dict(context or {})
    if run_provenance is None:
        model = context.get("model")
        run_provenance = provenance(model_spec_weights(model) if isinstance(model, Mapping) else None)
    return {
        "format": REPORT_FORMAT,
        "settings": dataclasses.asdict(settings),
        "context": context,
        "provenance": dict(run_provenance),
        "summary": {
            "auc": summary.auc,
            "jaccard_at_threshold": summary.jaccard_at_threshold,
            "threshold_seconds": summary.threshold_seconds,
            "end_seconds": summary.end_seconds,
            "curve": {"seconds": list(summary.curve_seconds), "jaccard": list(summary.curve_jaccard)},
            "per_round": per_round,
            "below_best_round": {
                "tolerance": BELOW_BEST_TOLERANCE,
                "sequences": [dataclasses.asdict(found) for found in rounds_below_best(result.sequences)],
            },
        },
        "sequences": [_sequence_dict(sequence) for sequence in result.sequences],
    }


def write_report(path: Path, data: Mapping[str, Any]) -> None:
    """Write :func:`report_dict` output as indented JSON (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def plot_figure(result: EvaluationResult, title: str = "") -> Figure:
    """Two panels: mean J over cumulative seconds (with the threshold line), and J and F by round."""
    figure_module = require("matplotlib.figure", "plotting an evaluation")
    summary = result.summary
    figure = figure_module.Figure(figsize=(10, 4), layout="constrained")
    over_time, by_round = figure.subplots(1, 2)
    over_time.plot(summary.curve_seconds, summary.curve_jaccard, marker="o", markersize=3)
    over_time.axvline(summary.threshold_seconds, color="k", linestyle="--", linewidth=1)
    over_time.set(xlabel="cumulative seconds", ylabel="mean J", ylim=(0, 1), xlim=(0, summary.end_seconds),
                  title=f"AUC {summary.auc:.3f}   J@{summary.threshold_seconds:g}s {summary.jaccard_at_threshold:.3f}")
    rounds = list(range(1, len(summary.round_jaccard) + 1))
    by_round.plot(rounds, summary.round_jaccard, marker="o", label="J")
    by_round.plot(rounds, result.round_boundary, marker="s", label="F")
    by_round.set(xlabel="round", ylabel="mean score", ylim=(0, 1), xticks=rounds, title="by round")
    by_round.legend(loc="lower right")
    if title:
        figure.suptitle(title)
    return figure


def save_plot(path: Path, result: EvaluationResult, title: str = "") -> None:
    """Render :func:`plot_figure` to a file (format from the suffix: png, pdf, svg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = plot_figure(result, title)
    require("matplotlib.backends.backend_agg", "plotting an evaluation").FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120)


def summary_table(result: EvaluationResult) -> str:
    """A plain-text table: J per sequence and round, then the summary lines."""
    rounds = len(result.summary.round_jaccard)
    width = max([8] + [len(s.name) for s in result.sequences])
    header = f"{'sequence':<{width}} " + " ".join(f"{'r' + str(i):>6}" for i in range(1, rounds + 1)) + f" {'sec':>7}"
    lines = [header]
    for sequence in result.sequences:
        cells = " ".join(f"{r.mean_jaccard:6.3f}" for r in sequence.rounds)
        seconds = sum(r.seconds for r in sequence.rounds)
        lines.append(f"{sequence.name:<{width}} {cells} {seconds:7.2f}")
    means = " ".join(f"{v:6.3f}" for v in result.summary.round_jaccard)
    lines.append(f"{'mean J':<{width}} {means} {sum(result.summary.round_seconds):7.2f}")
    lines.append(f"{'mean F':<{width}} " + " ".join(f"{v:6.3f}" for v in result.round_boundary))
    summary = result.summary
    lines.append(f"AUC {summary.auc:.3f}   J@{summary.threshold_seconds:g}s {summary.jaccard_at_threshold:.3f}"
                 f"   (curve ends at {summary.end_seconds:g} s)")
    if rounds > 1:
        lines.append(below_best_line(result))
    return "\n".join(lines)


def below_best_line(result: EvaluationResult) -> str:
    """One line naming the sequences whose last round ends more than
    :data:`~manet.eval.rounds.BELOW_BEST_TOLERANCE` below their best earlier round."""
    found = rounds_below_best(result.sequences)
    if not found:
        return f"no sequence ends more than {BELOW_BEST_TOLERANCE:g} below its best earlier round"
    listed = ", ".join(f"{f.name} (r{f.best_round} {f.best_jaccard:.3f} -> r{f.last_round} {f.last_jaccard:.3f})"
                       for f in found)
    return (f"{len(found)} of {len(result.sequences)} end more than {BELOW_BEST_TOLERANCE:g} below their best "
            f"earlier round: {listed}")
