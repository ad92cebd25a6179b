"""The DAVIS interactive protocol on one sequence, driving :class:`manet.Session` as a user script would.

Per sequence: round 1 uses ``Scribbles/<seq>/001.json`` when present, else the robot's
first-round scribble; every later round the robot draws on the worst frame not annotated
yet (the benchmark's rule, which reads the ground truth), or, with
``EvalSettings.next_frame = "suggested"``, on the frame the session suggests
(:meth:`manet.Session.suggest_frame`, as the annotator shows a user). A round's time is the
wall clock of ``session.interact`` plus the full ``session.propagate`` (round 1 therefore
includes computing the frame embeddings, as in the benchmark where the clock runs from
receiving the scribble to submitting the masks). The robot, the suggestion and the metrics
are not timed. When the robot finds nothing left to correct, the remaining rounds repeat the
last result at 0 s, as the benchmark fills missing interactions.

:func:`manet.eval.evaluate.evaluate` runs it over many sequences (in this process or as tasks
through :mod:`manet.batch.evaluation`, which builds on this module).
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from manet.config import ModelConfig, SessionConfig
from manet.errors import VideoError
from manet.eval.dataset import LoadedSequence, load_sequence
from manet.eval.metrics import (
    DAVIS_SECONDS_PER_OBJECT,
    DAVIS_THRESHOLD_SECONDS,
    InteractiveSummary,
    boundary_f,
    interactive_summary,
    jaccard,
)
from manet.inference.scribbles import CLICK_RADIUS_FRACTION, Annotation, click_radius, strokes_to_clicks
from manet.inference.session import Session
from manet.io.davis import DavisSequence
from manet.loading import load_model
from manet.model.network import MANet
from manet.simulate.robot import RobotConfig, first_round_annotation, robot_annotation

NEXT_FRAME_RULES = ("worst", "suggested")


@dataclass(frozen=True)
class EvalSettings:
    """How a run is conducted (everything but the model and the session config).

    Attributes:
        rounds: interactions per sequence (benchmark: 8).
        seed: seeds the robot (per sequence, from the seed and the sequence name).
        max_frames: use only the first frames of each sequence (quick runs).
        robot: the simulated user's drawing parameters.
        threshold_seconds, seconds_per_object: see :func:`~manet.eval.metrics.interactive_summary`.
        prompt: ``scribbles`` (the robot's strokes) or ``clicks`` (each stroke replaced by a
            click at its middle, radius ``click_radius_fraction`` x the frame's short side).
        next_frame: which frame a later round corrects. ``worst``: the frame with the lowest J
            (the benchmark's rule, read off the ground truth). ``suggested``: the frame the
            session suggests without ground truth (:meth:`manet.Session.suggest_frame`, the
            annotator's suggestion), so the run measures a user who follows it; when the
            suggested frame has nothing to correct the robot takes the worst frame (its
            round's source then reads ``robot``, a followed suggestion ``suggested``).
    """

    rounds: int = 8
    seed: int = 0
    max_frames: int | None = None
    robot: RobotConfig = field(default_factory=RobotConfig)
    threshold_seconds: float = DAVIS_THRESHOLD_SECONDS
    seconds_per_object: float | None = DAVIS_SECONDS_PER_OBJECT
    prompt: str = "scribbles"
    click_radius_fraction: float = CLICK_RADIUS_FRACTION
    next_frame: str = "worst"

    def __post_init__(self) -> None:
        if self.next_frame not in NEXT_FRAME_RULES:
            raise ValueError(f"next_frame must be one of {', '.join(NEXT_FRAME_RULES)}, got {self.next_frame!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {self.rounds}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}")


@dataclass(frozen=True)
class ModelSpec:
    """What model to build, in a form worker processes can rebuild identically.

    Attributes:
        weights: ``"default"`` (shipped weights) or a checkpoint path; ignored for
            ``tiny_random``.
        preset: ``lite`` or ``paper``: the architecture ``weights`` or ``checkpoint`` fill.
        checkpoint: the authors' released ``.pth`` (``preset="paper"``); overrides ``weights``.
        tiny_random: a random :meth:`ModelConfig.tiny` network (tests, CI).
        matching_baseline: the training-free ImageNet-feature matching baseline.
        model_overrides: :class:`ModelConfig` fields changed from the tiny config.
        seed: torch seed set before building, so random weights are the same everywhere.
    """

    weights: str = "default"
    preset: str = "lite"
    checkpoint: str | None = None
    tiny_random: bool = False
    matching_baseline: bool = False
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    def build(self) -> MANet:
        torch.manual_seed(self.seed)
        if self.matching_baseline:
            from manet.model.baseline import MatchingBaseline

            return MatchingBaseline().eval()
        if self.tiny_random:
            config = dataclasses.replace(ModelConfig.tiny(), **dict(self.model_overrides))
            return load_model(weights=None, config=config)
        if self.model_overrides:
            raise ValueError(f"ModelConfig overrides {sorted(self.model_overrides)} apply only to --tiny-random: "
                             "a checkpoint fixes its own architecture")
        if self.checkpoint is not None:
            return load_model("paper", checkpoint=self.checkpoint)
        if self.preset not in ("lite", "paper"):
            raise ValueError(f"unknown preset {self.preset!r}: use 'lite' or 'paper'")
        return load_model(self.preset, weights=self.weights)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RoundResult:
    """One round of one sequence.

    Attributes:
        index: round number, from 1.
        frame: the annotated frame, None for a round the robot skipped (nothing to correct).
        source: ``file`` (human scribble), ``robot``, ``suggested`` (the robot's strokes on the
            frame the session suggested, :attr:`EvalSettings.next_frame`) or ``skipped``.
        seconds: model wall clock of the round (0 when skipped).
        jaccard, boundary: per object (in ``SequenceResult.object_ids`` order), mean over frames.
        frame_jaccard: per frame, J averaged over the objects (empty in results stored before it
            was recorded): where a round helped and where it hurt.
    """

    index: int
    frame: int | None
    source: str
    seconds: float
    jaccard: tuple[float, ...]
    boundary: tuple[float, ...]
    frame_jaccard: tuple[float, ...] = ()

    @property
    def mean_jaccard(self) -> float:
        return float(np.mean(self.jaccard))

    @property
    def mean_boundary(self) -> float:
        return float(np.mean(self.boundary))


@dataclass(frozen=True)
class SequenceResult:
    name: str
    num_frames: int
    height: int
    width: int
    object_ids: tuple[int, ...]
    rounds: tuple[RoundResult, ...]


BELOW_BEST_TOLERANCE = 0.01
"""How far (in J) a sequence's last round may end below its best earlier round before
:func:`rounds_below_best` lists it: the rounds target "corrections never make things worse"."""


@dataclass(frozen=True)
class BelowBest:
    """A sequence whose last round ended more than the tolerance below its best earlier round."""

    name: str
    best_round: int
    best_jaccard: float
    last_round: int
    last_jaccard: float


def rounds_below_best(sequences: Sequence[SequenceResult],
                      tolerance: float = BELOW_BEST_TOLERANCE) -> list[BelowBest]:
    """The sequences (in order) whose last round's mean J is more than ``tolerance`` below the
    best mean J of an earlier round; a sequence of one round has no earlier round."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    found = []
    for sequence in sequences:
        if len(sequence.rounds) < 2:
            continue
        *earlier, last = sequence.rounds
        best = max(earlier, key=lambda r: r.mean_jaccard)  # the first of equal bests
        if best.mean_jaccard - last.mean_jaccard > tolerance:
            found.append(BelowBest(sequence.name, best.index, best.mean_jaccard, last.index, last.mean_jaccard))
    return found


@dataclass(frozen=True)
class EvaluationResult:
    """All finished sequences of a run and their DAVIS summary; ``round_boundary`` is the mean F
    per round over every (sequence, object), like ``summary.round_jaccard`` for J; ``failures``
    the sequences that raised when run as tasks (:class:`manet.batch.runner.TaskFailure`)."""

    sequences: tuple[SequenceResult, ...]
    summary: InteractiveSummary
    round_boundary: tuple[float, ...]
    failures: tuple[Any, ...] = ()


@dataclass(frozen=True)
class EvalProgress:
    """Reported after each round (or, with worker processes, after each sequence)."""

    done: int
    total: int
    sequence: str
    round: int
    jaccard: float


ProgressCallback = Callable[[EvalProgress], None]
RoundCallback = Callable[[RoundResult], None]


def sequence_rng(seed: int, name: str) -> np.random.Generator:
    """The robot's generator for a sequence: independent of which other sequences run."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def run_rounds(session: Session, gt: np.ndarray, object_ids: Sequence[int], first: Annotation | None,
               settings: EvalSettings, rng: np.random.Generator,
               on_round: RoundCallback | None = None) -> tuple[RoundResult, ...]:
    """Play ``settings.rounds`` rounds on a fresh session against (T, H, W) ground truth."""
    results: list[RoundResult] = []
    annotated: list[int] = []
    masks = np.zeros_like(gt)
    for index in range(1, settings.rounds + 1):
        suggested = session.suggest_frame() if index > 1 and settings.next_frame == "suggested" else None
        annotation, source = _next_annotation(index, masks, gt, object_ids, first, annotated, settings, rng,
                                              suggested)
        if annotation is None:
            last = results[-1]
            result = RoundResult(index, None, "skipped", 0.0, last.jaccard, last.boundary, last.frame_jaccard)
        else:
            seconds = _timed_round(session, annotation)
            annotated.append(annotation.frame)
            masks = session.masks
            per_frame = jaccard(gt, masks, object_ids)  # (T, K)
            result = RoundResult(index, annotation.frame, source, seconds,
                                 tuple(per_frame.mean(axis=0).tolist()),
                                 tuple(boundary_f(gt, masks, object_ids).mean(axis=0).tolist()),
                                 tuple(per_frame.mean(axis=1).tolist()))
        results.append(result)
        if on_round is not None:
            on_round(result)
    return tuple(results)


def _next_annotation(index: int, masks: np.ndarray, gt: np.ndarray, object_ids: Sequence[int],
                     first: Annotation | None, annotated: list[int], settings: EvalSettings,
                     rng: np.random.Generator, suggested: int | None = None) -> tuple[Annotation | None, str]:
    annotation: Annotation | None = None
    source = "robot"
    if index == 1:
        if first is not None:
            annotation, source = first, "file"
        else:
            annotation = first_round_annotation(gt, rng=rng, object_ids=object_ids, config=settings.robot)
    else:
        if suggested is not None:
            annotation = robot_annotation(gt, masks, object_ids, rng, annotated, frame=suggested,
                                          config=settings.robot)
            source = "suggested"
        if annotation is None:
            annotation = robot_annotation(gt, masks, object_ids, rng, annotated, config=settings.robot)
            source = "robot"
    if annotation is not None and settings.prompt == "clicks":
        radius = click_radius(gt.shape[1], gt.shape[2], settings.click_radius_fraction)
        annotation = strokes_to_clicks(annotation, radius)
    return annotation, source


def _timed_round(session: Session, annotation: Annotation) -> float:
    started = time.perf_counter()
    session.interact(annotation)
    for _ in session.propagate():
        pass
    return time.perf_counter() - started


def evaluate_loaded(model: MANet, sequence: LoadedSequence, session_config: SessionConfig,
                    settings: EvalSettings, on_round: RoundCallback | None = None) -> SequenceResult:
    """Evaluate one sequence already in memory."""
    if not sequence.object_ids:
        raise VideoError(f"{sequence.name}: the annotations hold no object (every pixel is 0); leave it out")
    session = Session(model, sequence.frames, config=session_config)
    rounds = run_rounds(session, sequence.gt, sequence.object_ids, sequence.first_annotation, settings,
                        sequence_rng(settings.seed, sequence.name), on_round)
    num_frames, height, width = sequence.gt.shape
    return SequenceResult(sequence.name, num_frames, height, width, sequence.object_ids, rounds)


def evaluate_sequence(model: MANet, sequence: DavisSequence, session_config: SessionConfig,
                      settings: EvalSettings, on_round: RoundCallback | None = None) -> SequenceResult:
    """Load one sequence from its folder and evaluate it."""
    return evaluate_loaded(model, load_sequence(sequence, settings.max_frames), session_config, settings, on_round)


def summarize(sequences: Sequence[SequenceResult], settings: EvalSettings) -> EvaluationResult:
    """The DAVIS summary (AUC, J@threshold) and per-round means of finished sequences."""
    object_jaccard = [np.array([r.jaccard for r in s.rounds]) for s in sequences]
    seconds = [[r.seconds for r in s.rounds] for s in sequences]
    summary = interactive_summary(object_jaccard, seconds, settings.threshold_seconds, settings.seconds_per_object)
    boundary = np.concatenate([np.array([r.boundary for r in s.rounds]) for s in sequences], axis=1)
    return EvaluationResult(tuple(sequences), summary, tuple(float(v) for v in boundary.mean(axis=1)))
