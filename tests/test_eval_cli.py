"""``manet eval`` end to end on a synthetic DAVIS folder, and the protocol on a scripted session."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from data_synthetic import make_synthetic_davis

from manet.cli import main as manet_main
from manet.eval.cli import add_parser, main, parse_value, split_overrides
from manet.eval.dataset import find_sequences, load_sequence, read_sequence_names
from manet.eval.evaluate import EvalSettings, ModelSpec, evaluate, run_rounds
from manet.eval.metrics import interactive_summary
from manet.eval.report import below_best_line, summary_table
from manet.eval.rounds import EvaluationResult, RoundResult, SequenceResult, rounds_below_best
from manet.inference.scribbles import Annotation


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_davis(tmp_path_factory.mktemp("davis"), sequences=2, frames=6, objects=2,
                                with_scribbles=True, seed=3)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="manet")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["eval", *argv])


def test_manet_eval_end_to_end(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, plot = tmp_path / "out" / "report.json", tmp_path / "out" / "plot.png"
    code = manet_main(["eval", str(dataset), "--tiny-random", "--rounds", "3", "--no-progress",
                       "--report", str(report), "--plot", str(plot)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(report.read_text())
    assert [s["name"] for s in data["sequences"]] == ["synth-00", "synth-01"]
    for sequence in data["sequences"]:
        assert sequence["object_ids"] == [1, 2] and sequence["num_frames"] == 6
        rounds = sequence["rounds"]
        assert [r["round"] for r in rounds] == [1, 2, 3]
        assert rounds[0]["source"] == "file" and rounds[0]["frame"] == 3  # the scribble file's frame
        played = [r for r in rounds if r["source"] != "skipped"]
        assert all(r["seconds"] > 0 for r in played)
        assert len({r["frame"] for r in played}) == len(played)  # no frame annotated twice
        for r in rounds:
            assert 0 <= r["jaccard"] <= 1 and 0 <= r["boundary"] <= 1
            assert r["jaccard"] == pytest.approx(np.mean(list(r["jaccard_per_object"].values())))
            # J per frame (mean over the objects): its mean over the frames is the round's J
            assert len(r["jaccard_per_frame"]) == 6 and all(0 <= j <= 1 for j in r["jaccard_per_frame"])
            assert np.mean(r["jaccard_per_frame"]) == pytest.approx(r["jaccard"], abs=1e-4)
        skipped = [i for i, r in enumerate(rounds) if r["source"] == "skipped"]
        for i in skipped:  # a skipped round keeps the masks, so every frame's J too
            assert rounds[i]["jaccard_per_frame"] == rounds[i - 1]["jaccard_per_frame"]
    summary = data["summary"]
    # Round J of the summary: every (sequence, object) pair weighs the same.
    expected = [np.mean([s["rounds"][i]["jaccard_per_object"][k] for s in data["sequences"] for k in ("1", "2")])
                for i in range(3)]
    assert [p["jaccard"] for p in summary["per_round"]] == pytest.approx(expected)
    assert summary["end_seconds"] == pytest.approx(480.0)  # 240 s x 2 objects
    assert 0 <= summary["auc"] <= 1 and summary["curve"]["seconds"][0] == 0.0
    # The rounds target: the report lists exactly the sequences whose last round ends > 0.01 below their best.
    below = summary["below_best_round"]
    assert below["tolerance"] == 0.01
    expected_below = [s["name"] for s in data["sequences"]
                      if max(r["jaccard"] for r in s["rounds"][:-1]) - s["rounds"][-1]["jaccard"] > 0.01]
    assert [found["name"] for found in below["sequences"]] == expected_below
    assert ("no sequence ends more than 0.01 below" in printed) == (not expected_below)


def test_ablation_overrides_reach_the_session_config(dataset: Path, tmp_path: Path) -> None:
    report = tmp_path / "ablation.json"
    args = _parse([str(dataset), "--tiny-random", "--rounds", "2", "--sequences", "synth-01", "--no-progress",
                   "--config-override", "global_memory=false", "--config-override", "memory_rounds=1",
                   "--working-size", "0", "--max-frames", "3", "--report", str(report)])
    assert main(args) == 0
    data = json.loads(report.read_text())
    config = data["context"]["session_config"]
    assert config["global_memory"] is False and config["memory_rounds"] == 1 and config["working_size"] is None
    assert data["sequences"][0]["num_frames"] == 3
    assert data["sequences"][0]["rounds"][0]["source"] == "robot"  # the scribbled frame 3 was cut off


def test_bad_arguments_give_exit_code_2(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_parse([str(dataset), "--tiny-random", "--sequences", "nope"])) == 2
    assert "nope" in capsys.readouterr().err
    assert main(_parse([str(dataset), "--tiny-random", "--config-override", "colour=blue"])) == 2
    assert "unknown setting 'colour'" in capsys.readouterr().err
    assert main(_parse([str(dataset), "--config-override", "embedding_dim=4"])) == 2
    assert "--tiny-random" in capsys.readouterr().err


def test_override_values_are_parsed() -> None:
    assert [parse_value(v) for v in ("false", "True", "on", "none", "12", "0.5", "bfloat16")] == [
        False, True, True, None, 12, 0.5, "bfloat16"]
    session, model = split_overrides([("global_memory", False), ("window", 8), ("embedding_dim", 4)])
    assert session == {"global_memory": False, "window": 8} and model == {"embedding_dim": 4}
    with pytest.raises(ValueError, match="switch"):
        split_overrides([("local_memory", 0)])


def test_sequences_file_and_names_combine(dataset: Path, tmp_path: Path) -> None:
    listing = tmp_path / "split.txt"
    listing.write_text("# dev split\nsynth-01\n\n")
    assert read_sequence_names(listing) == ["synth-01"]
    args = _parse([str(dataset), "--sequences-file", str(listing), "--sequences", "synth-00", "synth-01"])
    from manet.eval.cli import _sequence_names

    assert _sequence_names(args) == ["synth-01", "synth-00"]
    assert [s.name for s in find_sequences(dataset)] == ["synth-00", "synth-01"]


def test_first_round_scribble_file_is_read(dataset: Path) -> None:
    sequence = find_sequences(dataset, ["synth-00"])[0]
    loaded = load_sequence(sequence)
    assert loaded.frames.shape == (6, 64, 96, 3) and loaded.gt.shape == (6, 64, 96)
    assert loaded.first_annotation is not None and loaded.first_annotation.frame == 3
    assert loaded.first_annotation.object_ids == [1, 2]
    assert load_sequence(sequence, max_frames=3).first_annotation is None


class ScriptedSession:
    """Stands in for manet.Session: the scribbled objects become exact on every frame."""

    def __init__(self, gt: np.ndarray) -> None:
        self.gt = gt
        self.masks = np.zeros_like(gt)
        self.frames: list[int] = []
        self._pending: Annotation | None = None

    def interact(self, annotation: Annotation) -> np.ndarray:
        self._pending = annotation
        return self.masks[annotation.frame]

    def propagate(self) -> Iterator[tuple[int, np.ndarray]]:
        assert self._pending is not None
        for object_id in self._pending.object_ids:
            if object_id:
                self.masks[self.gt == object_id] = object_id
        self.frames.append(self._pending.frame)
        yield self._pending.frame, self.masks[self._pending.frame]


def test_protocol_skips_rounds_once_nothing_is_left_to_correct(dataset: Path) -> None:
    loaded = load_sequence(find_sequences(dataset, ["synth-00"])[0])
    session = ScriptedSession(loaded.gt)
    rounds = run_rounds(session, loaded.gt, [1, 2], None, EvalSettings(rounds=3), np.random.default_rng(0))  # type: ignore[arg-type]
    assert [r.source for r in rounds] == ["robot", "skipped", "skipped"]
    assert rounds[0].jaccard == (1.0, 1.0) and rounds[0].seconds > 0
    assert rounds[1].jaccard == rounds[0].jaccard and rounds[1].seconds == 0.0 and rounds[1].frame is None
    assert rounds[0].frame_jaccard == (1.0,) * loaded.gt.shape[0] and rounds[1].frame_jaccard == rounds[0].frame_jaccard


def test_protocol_annotates_new_frames_each_round(dataset: Path) -> None:
    loaded = load_sequence(find_sequences(dataset, ["synth-01"])[0])
    session = ScriptedSession(loaded.gt)
    first = Annotation(2, tuple(s for s in loaded.first_annotation.scribbles if s.object_id == 1))  # type: ignore[union-attr]
    rounds = run_rounds(session, loaded.gt, [1, 2], first, EvalSettings(rounds=3), np.random.default_rng(0))  # type: ignore[arg-type]
    assert [r.source for r in rounds] == ["file", "robot", "skipped"]
    assert rounds[0].jaccard == (1.0, 0.0)  # object 2 not scribbled yet
    assert rounds[1].frame != 2 and rounds[1].jaccard == (1.0, 1.0)
    assert session.frames == [2, rounds[1].frame]


class SuggestingSession(ScriptedSession):
    """A ScriptedSession that suggests a fixed frame; ``perfect`` makes that frame right first."""

    def __init__(self, gt: np.ndarray, suggestion: int, perfect: bool = False) -> None:
        super().__init__(gt)
        self.suggestion, self.perfect, self.asked = suggestion, perfect, 0

    def suggest_frame(self) -> int:
        self.asked += 1
        if self.perfect:
            self.masks[self.suggestion] = self.gt[self.suggestion]
        return self.suggestion


def test_the_simulated_user_can_follow_the_sessions_suggestion(dataset: Path) -> None:
    loaded = load_sequence(find_sequences(dataset, ["synth-01"])[0])
    first = Annotation(2, tuple(s for s in loaded.first_annotation.scribbles if s.object_id == 1))  # type: ignore[union-attr]
    settings = EvalSettings(rounds=2, next_frame="suggested")
    followed = SuggestingSession(loaded.gt, suggestion=4)
    rounds = run_rounds(followed, loaded.gt, [1, 2], first, settings, np.random.default_rng(0))  # type: ignore[arg-type]
    assert [(r.source, r.frame) for r in rounds] == [("file", 2), ("suggested", 4)] and followed.asked == 1
    # Nothing to correct on the suggested frame: the robot takes the worst frame instead.
    fallback = SuggestingSession(loaded.gt, suggestion=4, perfect=True)
    rounds = run_rounds(fallback, loaded.gt, [1, 2], first, settings, np.random.default_rng(0))  # type: ignore[arg-type]
    assert rounds[1].source == "robot" and rounds[1].frame not in (2, 4)
    # The benchmark's rule never asks the session.
    worst = SuggestingSession(loaded.gt, suggestion=4)
    rounds = run_rounds(worst, loaded.gt, [1, 2], first, EvalSettings(rounds=2), np.random.default_rng(0))  # type: ignore[arg-type]
    assert rounds[1].source == "robot" and worst.asked == 0
    with pytest.raises(ValueError, match="next_frame must be one of worst, suggested"):
        EvalSettings(next_frame="random")
    from manet.eval.rounds import NEXT_FRAME_RULES

    for rule in NEXT_FRAME_RULES:  # the command line offers every rule the settings accept
        assert _parse(["data", "--next-frame", rule]).next_frame == rule


def test_next_frame_reaches_the_report_and_keeps_earlier_stores_valid(dataset: Path, tmp_path: Path) -> None:
    from manet.batch.evaluation import run_fingerprint
    from manet.config import SessionConfig
    from manet.provenance import model_spec_weights

    report = tmp_path / "suggested.json"
    args = _parse([str(dataset), "--tiny-random", "--rounds", "2", "--sequences", "synth-00", "--no-progress",
                   "--next-frame", "suggested", "--report", str(report)])
    assert main(args) == 0
    data = json.loads(report.read_text())
    assert data["settings"]["next_frame"] == "suggested"
    assert data["sequences"][0]["rounds"][1]["source"] in ("suggested", "robot", "skipped")
    spec, config = ModelSpec(tiny_random=True), SessionConfig()
    worst = run_fingerprint(spec, config, EvalSettings())
    assert worst != run_fingerprint(spec, config, EvalSettings(next_frame="suggested"))
    # Stores written before the setting existed hold the fingerprint of the settings without it.
    import dataclasses as dc
    import hashlib

    weights = model_spec_weights(dc.asdict(spec))
    digests = [weights.get("sha256"), (weights.get("backbone") or {}).get("sha256")]
    before = {k: v for k, v in dc.asdict(EvalSettings()).items() if k != "next_frame"}
    text = json.dumps([dc.asdict(spec), config.to_dict(), before, digests], sort_keys=True, default=str)
    assert worst == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_robot_jitter_reaches_the_report_and_the_stored_runs_fingerprint(dataset: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from manet.batch.evaluation import run_fingerprint
    from manet.config import SessionConfig
    from manet.simulate.robot import RobotConfig

    report = tmp_path / "jitter.json"
    args = _parse([str(dataset), "--tiny-random", "--rounds", "2", "--sequences", "synth-00", "--no-progress",
                   "--robot-jitter", "0.25", "--seed", "3", "--report", str(report)])
    assert main(args) == 0
    settings = json.loads(report.read_text())["settings"]
    assert settings["robot"]["radius_jitter"] == 0.25 and settings["seed"] == 3
    spec, config = ModelSpec(tiny_random=True), SessionConfig()
    assert run_fingerprint(spec, config, EvalSettings()) != run_fingerprint(
        spec, config, EvalSettings(robot=RobotConfig(radius_jitter=0.25)))
    assert main(_parse([str(dataset), "--tiny-random", "--robot-jitter", "1.5"])) == 2
    assert "radius_jitter must lie in [0, 1)" in capsys.readouterr().err


def test_worker_processes_match_a_single_process(dataset: Path) -> None:
    spec = ModelSpec(tiny_random=True, seed=1)
    settings = EvalSettings(rounds=1, max_frames=3)
    sequences = find_sequences(dataset)
    from manet.config import SessionConfig

    single = evaluate(spec, sequences, SessionConfig(), settings, workers=1)
    parallel = evaluate(spec, sequences, SessionConfig(), settings, workers=2)
    assert [s.name for s in parallel.sequences] == ["synth-00", "synth-01"]
    for a, b in zip(single.sequences, parallel.sequences):
        assert a.rounds[0].frame == b.rounds[0].frame
        assert a.rounds[0].jaccard == pytest.approx(b.rounds[0].jaccard, abs=0.02)


def test_python_dash_m_prints_help() -> None:
    result = subprocess.run([sys.executable, "-m", "manet.eval", "--help"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert result.returncode == 0
    assert "--sequences-file" in result.stdout and "--config-override" in result.stdout


def test_report_names_the_checkout_the_run_started_from(dataset: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's report records the git state as the run starts: a commit made while it runs
    (the tree changes under a long evaluation) is not the code that ran."""
    import manet.eval.evaluate
    import manet.provenance

    states = iter([{"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": True}])
    current = {"state": next(states)}
    monkeypatch.setattr(manet.provenance, "git_state", lambda folder=None: dict(current["state"]))
    real_evaluate = manet.eval.evaluate.evaluate

    def evaluate_then_commit(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real_evaluate(*args, **kwargs)
        current["state"] = next(states)
        return result

    monkeypatch.setattr(manet.eval.evaluate, "evaluate", evaluate_then_commit)
    report = tmp_path / "started.json"
    args = _parse([str(dataset), "--tiny-random", "--rounds", "1", "--sequences", "synth-00", "--no-progress",
                   "--report", str(report)])
    assert main(args) == 0
    assert current["state"]["commit"] == "b" * 40, "the run did not change the checkout"
    assert json.loads(report.read_text())["provenance"]["git"] == {"commit": "a" * 40, "dirty": False}


def _sequence(name: str, jaccards: list[float]) -> SequenceResult:
    rounds = tuple(RoundResult(index + 1, index, "robot", 1.0, (j,), (j,)) for index, j in enumerate(jaccards))
    return SequenceResult(name, 10, 8, 8, (1,), rounds)


def test_sequences_ending_below_their_best_round_are_named() -> None:
    sequences = [
        _sequence("climbs", [0.5, 0.6, 0.7]),
        _sequence("dips-within", [0.5, 0.80, 0.795]),      # 0.005 below its best: within the tolerance
        _sequence("falls", [0.6, 0.9, 0.85, 0.88]),        # 0.02 below round 2
        _sequence("one-round", [0.4]),
    ]
    found = rounds_below_best(sequences)
    assert [(f.name, f.best_round, f.last_round) for f in found] == [("falls", 2, 4)]
    assert found[0].best_jaccard == pytest.approx(0.9) and found[0].last_jaccard == pytest.approx(0.88)
    assert [f.name for f in rounds_below_best(sequences, tolerance=0.001)] == ["dips-within", "falls"]
    assert rounds_below_best(sequences, tolerance=0.05) == []
    with pytest.raises(ValueError, match="tolerance"):
        rounds_below_best(sequences, tolerance=-0.1)
    summary = interactive_summary([np.array([[j] for j in (0.6, 0.9, 0.85, 0.88)])], [[1.0] * 4])
    result = EvaluationResult((sequences[2],), summary, (0.6, 0.9, 0.85, 0.88))
    assert below_best_line(result) == ("1 of 1 end more than 0.01 below their best earlier round: "
                                       "falls (r2 0.900 -> r4 0.880)")
    assert summary_table(result).splitlines()[-1] == below_best_line(result)
    calm = EvaluationResult((sequences[0],), summary, (0.5, 0.6, 0.7))
    assert below_best_line(calm) == "no sequence ends more than 0.01 below its best earlier round"
