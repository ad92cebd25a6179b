"""``manet annotate``: video checks, the notebook it writes, and how it starts or finds JupyterLab.

No server is started and no browser opened: ``run_command`` and ``list_servers`` are replaced.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import nbformat
import pytest
from synthetic_video import moving_square_video

import manet
from manet.cli import build_parser
from manet.cli import main as manet_main
from manet_widget import annotate_cli
from manet_widget.annotate_cli import build_notebook, lab_command, running_server_url, video_reference

FRAMES = 6


def write_video(path: Path, frames: int = FRAMES) -> Path:
    """A small MJPG .avi of the moving-square clip (OpenCV writes it everywhere)."""
    video = moving_square_video(frames=frames)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (video.shape[2], video.shape[1]))
    assert writer.isOpened()
    for frame in video:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


class Recorder:
    """Stands in for ``run_command``: keeps the commands instead of running them."""

    def __init__(self, status: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.opened: list[str] = []  # URLs given to webbrowser.open
        self.status = status

    def __call__(self, command: list[str]) -> int:
        self.commands.append(command)
        return self.status


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(annotate_cli, "run_command", recorder)
    monkeypatch.setattr(annotate_cli, "list_servers", list)
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: recorder.opened.append(url) or True)
    return recorder


def code_cells(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


# ----------------------------------------------------------------------------- arguments
def test_parser_reads_every_option() -> None:
    args = build_parser({"annotate": "manet_widget.annotate_cli"}).parse_args(
        ["annotate", "clip.mp4", "--objects", "3", "--port", "8890", "--no-browser", "--notebook-dir", "out"])
    assert (args.video, args.objects, args.port, args.no_browser, args.notebook_dir) == \
        (Path("clip.mp4"), 3, 8890, True, Path("out"))
    defaults = build_parser({"annotate": "manet_widget.annotate_cli"}).parse_args(["annotate", "clip.mp4"])
    assert (defaults.objects, defaults.port, defaults.no_browser, defaults.notebook_dir) == (1, None, False, None)


@pytest.mark.parametrize("option", [["--objects", "0"], ["--objects", "256"], ["--objects", "two"],
                                    ["--port", "0"], ["--port", "70000"]])
def test_parser_rejects_out_of_range_values(option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser({"annotate": "manet_widget.annotate_cli"}).parse_args(["annotate", "clip.mp4", *option])
    assert exit_info.value.code == 2
    assert option[0] in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad videos
def test_missing_video_is_an_error_and_nothing_starts(launcher: Recorder, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert manet_main(["annotate", str(tmp_path / "nothing.mp4"), "--no-browser"]) == 2
    error = capsys.readouterr().err
    assert "manet annotate: error: no such file or folder" in error and "nothing.mp4" in error
    assert launcher.commands == [] and list(tmp_path.iterdir()) == []


def test_corrupt_video_is_an_error_and_no_notebook_is_written(launcher: Recorder, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    assert manet_main(["annotate", str(corrupt), "--no-browser"]) == 2
    assert "cannot read video" in capsys.readouterr().err
    assert launcher.commands == [] and sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_missing_notebook_dir_is_an_error(launcher: Recorder, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "clip.avi")
    assert manet_main(["annotate", str(video), "--notebook-dir", str(tmp_path / "absent"), "--no-browser"]) == 2
    assert "--notebook-dir" in capsys.readouterr().err
    assert launcher.commands == []


# ----------------------------------------------------------------------------- notebook + command
def test_writes_notebook_next_to_video_and_starts_lab_on_it(launcher: Recorder, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "clip.avi")
    assert manet_main(["annotate", str(video), "--objects", "3", "--port", "8890", "--no-browser"]) == 0
    notebook = tmp_path / "clip_annotate.ipynb"
    [opening, masks] = code_cells(notebook)
    assert "Annotator.from_video('clip.avi')" in opening  # relative: the kernel starts in the notebook's folder
    assert "range(3 - len(annotator.objects))" in opening
    assert "annotator.masks" in masks
    assert launcher.commands == [lab_command(notebook, port=8890, open_browser=False)]
    assert launcher.opened == []
    assert f"notebook: {notebook}" in capsys.readouterr().out


def test_never_overwrites_an_existing_notebook(launcher: Recorder, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi")
    mine = tmp_path / "clip_annotate.ipynb"
    mine.write_text("my own notes")
    assert manet_main(["annotate", str(video), "--no-browser"]) == 0
    assert manet_main(["annotate", str(video), "--no-browser"]) == 0
    assert mine.read_text() == "my own notes"
    written = [Path(command[4]) for command in launcher.commands]
    assert [path.name for path in written] == ["clip_annotate-2.ipynb", "clip_annotate-3.ipynb"]
    assert all(path.is_file() for path in written)


def test_notebook_dir_elsewhere_names_the_video_by_absolute_path(launcher: Recorder, tmp_path: Path) -> None:
    frames_dir = tmp_path / "videos" / "square"
    frames_dir.mkdir(parents=True)
    for t, frame in enumerate(moving_square_video(frames=4)):
        cv2.imwrite(str(frames_dir / f"{t:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "notebooks"
    out.mkdir()
    assert manet_main(["annotate", str(frames_dir), "--notebook-dir", str(out)]) == 0
    notebook = out / "square_annotate.ipynb"
    assert f"Annotator.from_video({str(frames_dir)!r})" in code_cells(notebook)[0]
    assert "range(" not in code_cells(notebook)[0]  # one object: nothing to add
    assert launcher.commands == [lab_command(notebook, port=None, open_browser=True)]


def test_lab_command() -> None:
    notebook = Path("/data/clips/clip_annotate.ipynb")
    command = lab_command(notebook, port=9000, open_browser=False, as_root=True)
    assert command[:5] == [sys.executable, "-m", "jupyter", "lab", str(notebook)]
    assert set(command[5:]) == {"--ServerApp.root_dir=/data/clips", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=9000",
                                "--ServerApp.port_retries=0", "--ServerApp.open_browser=False", "--allow-root"}
    plain = lab_command(notebook, as_root=False)
    assert not any(part.startswith(("--ServerApp.port", "--ServerApp.open_browser", "--allow")) for part in plain)
    as_me = lab_command(notebook)
    assert ("--allow-root" in as_me) == (hasattr(os, "geteuid") and os.geteuid() == 0)


def test_video_reference_is_relative_only_inside_the_notebook_folder(tmp_path: Path) -> None:
    assert video_reference(tmp_path / "a" / "clip.mp4", tmp_path) == "a/clip.mp4"
    assert video_reference(tmp_path / "clip.mp4", tmp_path / "notebooks") == str(tmp_path / "clip.mp4")


# ----------------------------------------------------------------------------- running servers
def server(root: Path, port: int = 8888, token: str = "secret") -> dict[str, Any]:
    return {"url": f"http://localhost:{port}/", "root_dir": str(root), "port": port, "token": token, "pid": 1}


def test_uses_a_running_server_that_holds_the_notebook(monkeypatch: pytest.MonkeyPatch, launcher: Recorder,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "my clips"
    folder.mkdir()
    video = write_video(folder / "clip.avi")
    servers = [server(tmp_path / "elsewhere", 8888), server(tmp_path, 8889, token="t0k")]
    monkeypatch.setattr(annotate_cli, "list_servers", lambda: servers)
    assert manet_main(["annotate", str(video), "--no-browser"]) == 0
    url = "http://localhost:8889/lab/tree/my%20clips/clip_annotate.ipynb?token=t0k"
    assert url in capsys.readouterr().out
    assert launcher.commands == [] and launcher.opened == []
    assert manet_main(["annotate", str(video)]) == 0
    assert launcher.opened == [url.replace("clip_annotate", "clip_annotate-2")]


def test_starts_a_new_server_when_no_running_one_fits(monkeypatch: pytest.MonkeyPatch, launcher: Recorder,
                                                      tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi")
    monkeypatch.setattr(annotate_cli, "list_servers", lambda: [server(tmp_path / "other"), server(tmp_path, 8888)])
    assert manet_main(["annotate", str(video), "--port", "9999", "--no-browser"]) == 0  # 8888 is not the port asked for
    assert launcher.commands == [lab_command(tmp_path / "clip_annotate.ipynb", port=9999, open_browser=False)]


def test_running_server_url_without_token(tmp_path: Path) -> None:
    notebook = tmp_path / "clip_annotate.ipynb"
    assert running_server_url(notebook, [server(tmp_path, token="")]) == "http://localhost:8888/lab/tree/clip_annotate.ipynb"
    assert running_server_url(notebook, [{"pid": 3}, server(tmp_path / "sub")]) is None


# ----------------------------------------------------------------------------- the notebook runs
def test_written_notebook_opens_the_video_with_the_objects_asked_for(monkeypatch: pytest.MonkeyPatch,
                                                                     launcher: Recorder, tmp_path: Path,
                                                                     tiny_model: Any) -> None:
    video = write_video(tmp_path / "it's a clip.avi")
    monkeypatch.setattr(manet, "load_model", lambda *a, **k: tiny_model)  # the shipped weights are not needed here
    assert manet_main(["annotate", str(video), "--objects", "4", "--no-browser"]) == 0
    monkeypatch.chdir(tmp_path)  # a kernel starts in the notebook's folder
    namespace: dict[str, Any] = {}
    for index, source in enumerate(code_cells(tmp_path / "it's a clip_annotate.ipynb")):
        exec(compile(source, f"cell {index}", "exec"), namespace)  # noqa: S102
    annotator = namespace["annotator"]
    try:
        assert [item["id"] for item in annotator.objects] == [1, 2, 3, 4]
        assert namespace["masks"].shape == (FRAMES, 48, 64)
        assert annotator.session.num_frames == FRAMES
    finally:
        assert annotator.wait(30)


def test_build_notebook_without_a_way_to_add_objects_lists_one() -> None:
    notebook = build_notebook("clip.mp4", 5, None)
    nbformat.validate(notebook)
    opening = notebook.cells[1].source
    assert "Annotator.from_video('clip.mp4')" in opening and "range(" not in opening
    assert all(cell.get("outputs", []) == [] for cell in notebook.cells)


def test_missing_widget_or_jupyterlab_is_explained(monkeypatch: pytest.MonkeyPatch, launcher: Recorder,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "clip.avi")

    def no_widget() -> None:
        raise ImportError("No module named 'anywidget'")

    with monkeypatch.context() as patch:
        patch.setattr(annotate_cli, "add_object_call", no_widget)
        assert manet_main(["annotate", str(video), "--no-browser"]) == 2
    assert "pip install 'manet-jupyter[widget]'" in capsys.readouterr().err

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "jupyterlab" else real_find_spec(name, *a))
    assert manet_main(["annotate", str(video), "--no-browser"]) == 2
    error = capsys.readouterr().err
    assert "JupyterLab is not installed" in error and "clip_annotate.ipynb" in error
    assert launcher.commands == []
