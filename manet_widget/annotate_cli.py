"""``manet annotate VIDEO``: write a notebook that opens the annotator on VIDEO, then open it in JupyterLab.

Examples::

    manet annotate clip.mp4                     # writes clip_annotate.ipynb next to clip.mp4, starts JupyterLab
    manet annotate frames/ --objects 3          # a folder of frames, three objects listed from the start
    manet annotate clip.mp4 --notebook-dir ~/work --port 8890 --no-browser

An existing notebook is never overwritten: the new one gets a numbered name. When a Jupyter server
is already running whose root folder holds the notebook, the command prints the notebook's URL on
that server (and opens it in the browser unless ``--no-browser``) instead of starting another.

This module imports only the standard library at load time: ``manet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

HELP = "open a video in the annotator: write a notebook for it and start JupyterLab on it"
MAX_OBJECTS = 255
NOTEBOOK_SUFFIX = "_annotate"
ServerInfo = Mapping[str, Any]


def add_parser(subparsers: Any) -> None:
    """Add the ``annotate`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser("annotate", help=HELP, description=HELP)
    parser.add_argument("video", type=Path, help="video file (mp4, avi, mov, ...) or folder of jpg/png frames")
    parser.add_argument("--objects", type=_object_count, default=1, metavar="N",
                        help=f"objects listed in the annotator from the start, 1..{MAX_OBJECTS} (default: 1)")
    parser.add_argument("--port", type=_port, default=None, metavar="P",
                        help="port of the JupyterLab server (default: 8888 or the next free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser; print the URL only")
    parser.add_argument("--notebook-dir", type=Path, default=None, metavar="DIR",
                        help="where to write the notebook (default: the video's folder)")


def main(args: argparse.Namespace) -> int:
    """Run ``manet annotate``; returns 0 on success, 2 for a bad video or notebook folder,
    otherwise JupyterLab's exit status."""
    from manet.errors import ManetError

    try:
        video = args.video.expanduser().resolve()
        check_video(video)
        notebook = write_notebook(video, args.notebook_dir, args.objects)
    except (ManetError, OSError) as error:
        print(f"manet annotate: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"manet annotate: error: the annotator needs the widget extra ({error}): "
              "pip install 'manet-jupyter[widget]'", file=sys.stderr)
        return 2
    print(f"notebook: {notebook}")
    url = running_server_url(notebook, list_servers(), port=args.port)
    if url is not None:
        print(f"a Jupyter server is already running; open the notebook there:\n  {url}")
        if not args.no_browser:
            import webbrowser

            webbrowser.open(url)
        return 0
    if importlib.util.find_spec("jupyterlab") is None:
        print(f"manet annotate: error: JupyterLab is not installed: pip install jupyterlab, then open {notebook}",
              file=sys.stderr)
        return 2
    command = lab_command(notebook, port=args.port, open_browser=not args.no_browser)
    print("starting JupyterLab (Ctrl+C to stop):", " ".join(command), flush=True)
    return run_command(command)


# ----------------------------------------------------------------------------- video
def check_video(video: Path) -> None:
    """Open ``video`` and decode its first frame.

    Raises:
        VideoError: the path is missing, not a video or image folder, or does not decode.
    """
    from manet.io.video import VideoSource

    source = VideoSource.open(video)
    try:
        source.frame(0)
    finally:
        source.close()


# ----------------------------------------------------------------------------- notebook
def notebook_candidates(video: Path, folder: Path) -> Iterable[Path]:
    """``<folder>/<name>_annotate.ipynb``, then ``..._annotate-2.ipynb``, ``-3``, ... (endless);
    ``<name>`` is the video file's stem or the frame folder's name."""
    stem = video.stem if video.suffix else video.name
    yield folder / f"{stem}{NOTEBOOK_SUFFIX}.ipynb"
    number = 2
    while True:
        yield folder / f"{stem}{NOTEBOOK_SUFFIX}-{number}.ipynb"
        number += 1


def video_reference(video: Path, notebook_folder: Path) -> str:
    """How the notebook names the video: relative when it lies inside the notebook's folder
    (the kernel starts there, and the pair can move together), else absolute."""
    try:
        return video.relative_to(notebook_folder).as_posix()
    except ValueError:
        return str(video)


def build_notebook(video_path: str, num_objects: int, add_object_call: str | None) -> Any:
    """The notebook (an nbformat 4 ``NotebookNode``) that opens the annotator on ``video_path``.

    ``add_object_call`` is the statement that lists one more object in ``annotator``, or None
    when objects cannot be added from Python (then only the first object is listed).
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    name = Path(video_path).name
    opening = f"from manet_widget import Annotator\n\nannotator = Annotator.from_video({video_path!r})\n"
    if num_objects > 1 and add_object_call is not None:
        opening += f"for _ in range({num_objects} - len(annotator.objects)):\n    {add_object_call}\n"
    opening += "annotator"
    cells = [
        new_markdown_cell(
            f"# Annotate `{name}`\n\n"
            "Run the next cell to open the annotator. Scribble over an object, press **Enter** to run a\n"
            "round, then correct the frame it is least sure about (**s** jumps there) and run again.\n"
            "Keys **1**-**9** pick an object, **0** or **b** the background brush, **Esc** cancels,\n"
            "**?** lists every shortcut."),
        new_code_cell(opening),
        new_markdown_cell(
            "The masks of the last round, one object id per pixel (0 = background). Save them with the\n"
            "widget's export panel or from Python, e.g.\n"
            "`manet.io.export_png_folder(masks, \"masks\")` or `manet.io.export_npz(masks, \"masks.npz\")`."),
        new_code_cell("masks = annotator.masks  # (T, H, W) uint8 object ids\nmasks.shape"),
    ]
    for index, cell in enumerate(cells):
        cell["id"] = f"manet-annotate-{index}"
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(notebook)
    return notebook


def add_object_call() -> str | None:
    """The statement that adds an object to ``annotator`` with the installed widget, or None.

    Raises:
        ImportError: the widget's dependencies (anywidget, ipywidgets) are not installed.
    """
    from manet_widget.widget import Annotator

    if callable(getattr(Annotator, "add_object", None)):
        return "annotator.add_object()"
    if isinstance(getattr(Annotator, "controller", None), property):
        # The message the "+ object" button sends, handled by the widget's controller.
        return 'annotator.controller.handle_message({"type": "add_object"})'
    return None


def write_notebook(video: Path, directory: Path | None, num_objects: int) -> Path:
    """Write the annotation notebook for ``video`` under the first free candidate name.

    Raises:
        OSError: the folder does not exist or cannot be written (the message names the option
            to use instead).
    """
    folder = directory.expanduser().resolve() if directory is not None else video.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"the notebook folder {folder} does not exist: "
                                 "create it or pass another --notebook-dir")
    import nbformat

    text = nbformat.writes(build_notebook(video_reference(video, folder), num_objects, add_object_call()))
    for path in notebook_candidates(video, folder):
        try:
            with open(path, "x", encoding="utf-8") as file:  # "x": never replace an existing notebook
                file.write(text)
            return path
        except FileExistsError:
            continue
        except PermissionError:
            raise PermissionError(f"cannot write a notebook in {folder}: pass --notebook-dir DIR "
                                  "with a folder you can write to") from None
    raise AssertionError("notebook_candidates is endless")  # pragma: no cover


# ----------------------------------------------------------------------------- Jupyter
def lab_command(notebook: Path, port: int | None = None, open_browser: bool = True,
                as_root: bool | None = None) -> list[str]:
    """The command line that starts JupyterLab on ``notebook``, its folder as the server's root.

    A given ``port`` is used or the start fails (no silent move to another port); ``as_root``
    defaults to whether this process runs as root (Jupyter refuses root without ``--allow-root``).
    """
    command = [sys.executable, "-m", "jupyter", "lab", str(notebook),
               f"--ServerApp.root_dir={notebook.parent}", "--ServerApp.ip=127.0.0.1"]
    if port is not None:
        command += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not open_browser:
        command.append("--ServerApp.open_browser=False")
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root:
        command.append("--allow-root")
    return command


def list_servers() -> list[ServerInfo]:
    """Info of the Jupyter servers running on this machine for this user ([] if none or unknown)."""
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return []
    try:
        return list(list_running_servers())
    except OSError:
        return []


def running_server_url(notebook: Path, servers: Iterable[ServerInfo], port: int | None = None) -> str | None:
    """URL of ``notebook`` on the first server whose root folder holds it (and that listens on
    ``port`` when one is given), with the server's token; None when no server fits."""
    for server in servers:
        root, url = server.get("root_dir") or server.get("notebook_dir"), server.get("url")
        if not root or not url or (port is not None and server.get("port") != port):
            continue
        try:
            relative = notebook.resolve().relative_to(Path(root).resolve())
        except ValueError:
            continue
        address = f"{str(url).rstrip('/')}/lab/tree/{quote(relative.as_posix())}"
        token = server.get("token")
        return f"{address}?token={quote(str(token))}" if token else address
    return None


def run_command(command: list[str]) -> int:
    """Run ``command`` until it exits and return its status. Ctrl+C reaches the child too
    (same process group): JupyterLab decides when to stop, and this waits for it."""
    process = subprocess.Popen(command)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


# ----------------------------------------------------------------------------- argument types
def _object_count(text: str) -> int:
    value = _integer(text, "--objects")
    if not 1 <= value <= MAX_OBJECTS:
        raise argparse.ArgumentTypeError(f"--objects must be between 1 and {MAX_OBJECTS}, got {value}")
    return value


def _port(text: str) -> int:
    value = _integer(text, "--port")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be between 1 and 65535, got {value}")
    return value


def _integer(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{option} takes a whole number, got {text!r}") from None
