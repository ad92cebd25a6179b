"""Batch commands on a local 2-worker Dask cluster: one task made to fail, finished results kept,
a rerun resumes; and the task runner's contract in this process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from data_synthetic import make_synthetic_davis
from PIL import Image

from manet.batch.runner import TaskEvent, choose_engine, run_tasks
from manet.cli import main as manet_main
from manet.io.davis import read_mask

pytest.importorskip("distributed")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_synthetic_davis(tmp_path / "davis", sequences=3, frames=4, height=48, width=64, objects=2, seed=7)


def _first_frame_masks(dataset: Path, folder: Path) -> Path:
    for sequence in sorted((dataset / "Annotations").iterdir()):
        (folder / sequence.name).mkdir(parents=True)
        shutil.copy(sequence / "00000.png", folder / sequence.name / "00000.png")
    return folder


def _mtimes(folder: Path) -> dict[str, float]:
    return {path.name: path.stat().st_mtime_ns for path in sorted(folder.iterdir())}


def _halve(image_path: Path) -> None:
    with Image.open(image_path) as image:
        image.resize((image.width // 2, image.height // 2)).save(image_path)


@pytest.mark.slow
def test_propagate_keeps_finished_videos_and_resumes(dataset: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    masks, out = _first_frame_masks(dataset, tmp_path / "masks"), tmp_path / "out"
    names = sorted(path.name for path in masks.iterdir())
    broken = names[1]
    shutil.copy(masks / broken / "00000.png", tmp_path / "good.png")
    _halve(masks / broken / "00000.png")  # the wrong size: this video's task fails in its worker
    argv = ["propagate", str(dataset), "--masks", str(masks), "--out", str(out), "--tiny-random",
            "--workers", "2", "--engine", "dask", "--no-progress"]
    assert manet_main(argv) == 1
    error = capsys.readouterr().err
    assert f"{broken}: FAILED: VideoError" in error and "1 of 3 videos failed" in error
    finished = [name for name in names if name != broken]
    assert sorted(path.name for path in out.iterdir()) == finished  # nothing partial left behind
    for name in finished:
        written = sorted(path.name for path in (out / name).iterdir())
        assert written == [f"{t:05d}.png" for t in range(4)]
        with Image.open(out / name / "00000.png") as image:
            assert image.mode == "P"
        given = read_mask(masks / name / "00000.png")
        assert np.array_equal(read_mask(out / name / "00000.png"), given)  # a given mask is kept as given
        assert set(np.unique(read_mask(out / name / "00003.png"))) <= set(np.unique(given))
    before = {name: _mtimes(out / name) for name in finished}
    shutil.copy(tmp_path / "good.png", masks / broken / "00000.png")
    assert manet_main(argv) == 0
    assert "skipping 2 of 3 videos" in capsys.readouterr().out
    assert {name: _mtimes(out / name) for name in finished} == before  # finished videos were not redone
    assert len(list((out / broken).iterdir())) == 4


@pytest.mark.slow
def test_eval_reports_a_failed_sequence_and_resumes(dataset: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    names = sorted(path.name for path in (dataset / "Annotations").iterdir())
    frame = dataset / "JPEGImages" / names[0] / "00001.jpg"
    saved = frame.read_bytes()
    frame.write_bytes(b"not an image")
    results, report = tmp_path / "results", tmp_path / "report.json"
    argv = ["eval", str(dataset), "--tiny-random", "--rounds", "2", "--workers", "2", "--no-progress",
            "--results-dir", str(results), "--report", str(report)]
    assert manet_main(argv) == 1
    assert f"{names[0]} failed" in capsys.readouterr().err
    assert sorted(path.stem for path in results.glob("*.json")) == names[1:]
    assert set(json.loads(report.read_text())["context"]["failed"]) == {names[0]}
    kept = _mtimes(results)
    frame.write_bytes(saved)
    assert manet_main(argv) == 0
    written = json.loads(report.read_text())
    assert [entry["name"] for entry in written["sequences"]] == names
    for entry in written["sequences"]:  # kept results (read back from the store) hold every frame's J too
        assert all(len(r["jaccard_per_frame"]) == entry["num_frames"] for r in entry["rounds"])
    assert {name: stamp for name, stamp in _mtimes(results).items() if name in kept} == kept  # not rerun


def _double_unless_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"negative {value}")
    return 2 * value


def test_runner_reports_each_failure_and_keeps_the_rest() -> None:
    events: list[TaskEvent] = []
    outcome = run_tasks(_double_unless_negative, {"a": (1,), "b": (-1,), "c": (3,)}, engine="serial",
                        on_event=events.append)
    assert outcome.results == {"a": 2, "c": 6}
    assert [failure.key for failure in outcome.failures] == ["b"]
    assert outcome.failures[0].error == "ValueError: negative -1" and "Traceback" in outcome.failures[0].details
    assert [(event.key, event.done, event.total, event.result) for event in events] == [
        ("a", 1, 3, 2), ("b", 2, 3, None), ("c", 3, 3, 6)]


def test_engine_choice() -> None:
    assert choose_engine("auto", 1, None) == "serial"
    assert choose_engine("auto", 2, None) == "dask"
    assert choose_engine("auto", 1, "tcp://scheduler:8786") == "dask"
    with pytest.raises(ValueError, match="workers"):
        choose_engine("auto", 0, None)
    with pytest.raises(ValueError, match="address"):
        choose_engine("processes", 2, "tcp://scheduler:8786")


@pytest.mark.slow
def test_local_processes_without_dask_report_failures_the_same_way() -> None:
    events: list[TaskEvent] = []
    outcome = run_tasks(_double_unless_negative, {"a": (1,), "b": (-1,)}, workers=2, engine="processes",
                        on_event=events.append)
    assert outcome.results == {"a": 2}
    assert [failure.key for failure in outcome.failures] == ["b"] and "negative -1" in outcome.failures[0].error
    assert sorted(event.key for event in events) == ["a", "b"] and max(event.done for event in events) == 2
