"""A real JupyterLab on 127.0.0.1 plus headless Chromium, for the browser tests and the latency
benchmark: write a test video, start the server, open a notebook, run code in its kernel, and reach
the annotator's view (``element.manetView``) from Python.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``) and the ``playwright`` Python package;
Playwright is only the driver here (no browser download).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TINY_MODEL = "manet.load_model(weights=None, config=manet.ModelConfig.tiny())"


def missing_requirements() -> list[str]:
    """What the browser tests lack on this machine (empty when they can run)."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install playwright)")
    if not (REPO / "manet_widget" / "static" / "widget.js").exists():
        missing.append("the built front end (npm ci && npm run build)")
    return missing


def disc_centre(t: int, frames: int, width: int = 480) -> tuple[float, float]:
    """Centre of the red disc of :func:`write_video` in frame ``t``: (100 + 10 t, 135) at 480x270
    for up to 31 frames; longer videos move it slower so it stays in the frame."""
    scale = width / 480
    step = min(10.0, 300.0 / max(1, frames - 1))
    return (100 + step * t) * scale, 135 * scale


def write_video(path: Path, size: tuple[int, int] = (270, 480), frames: int = 20) -> Path:
    """An mp4 of ``frames`` frames of ``size = (H, W)``: a red disc (radius 40 at 480x270, centre
    :func:`disc_centre`) moving right and a green square moving down over a colour gradient."""
    height, width = size
    scale = width / 480
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (width, height))
    ys, xs = np.mgrid[0:height, 0:width]
    background = np.stack([40 + xs * 64 // width, 50 + ys * 48 // height, 70 + (xs + ys) * 40 // (width + height)],
                          -1).astype(np.uint8)
    for t in range(frames):
        frame = background.copy()
        x, y = disc_centre(t, frames, width)
        centre = (int(x), int(y))
        cv2.circle(frame, centre, int(40 * scale), (40, 40, 220), -1)  # BGR: red
        top = int((30 + 6 * t) * scale)
        cv2.rectangle(frame, (int(330 * scale), top), (int(400 * scale), top + int(60 * scale)), (60, 200, 60), -1)
        writer.write(frame)
    writer.release()
    if not path.exists() or path.stat().st_size == 0:
        raise RuntimeError("OpenCV could not write the test video")
    return path


def notebook_json(video: Path, model: str = TINY_MODEL, source: str | None = None) -> str:
    """A one-cell notebook that shows an annotator on ``video`` with the model built by ``model``
    (or runs ``source`` instead, which must leave the widget in ``annotator`` and display it)."""
    if source is None:
        source = (
            "import torch\nimport manet\nfrom manet_widget import Annotator\n"
            "torch.manual_seed(0)\n"
            f"model = {model}\n"
            f"annotator = Annotator.from_video({str(video)!r}, model=model)\nannotator"
        )
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "annotate", "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    })


@dataclass
class JupyterServer:
    base_url: str
    token: str
    root: Path
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_settings(folder: Path) -> None:
    """Render every cell (windowing off: cells off screen still render) and fetch no news."""
    settings = {
        ("notebook-extension", "tracker"): {"windowingMode": "none"},
        ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
    }
    for (package, plugin), values in settings.items():
        path = folder / "@jupyterlab" / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextlib.contextmanager
def jupyter_lab(root: Path, kernel_env: dict[str, str] | None = None) -> Iterator[JupyterServer]:
    """Run ``jupyter lab`` (which also serves Notebook 7 pages) on 127.0.0.1 in ``root``; stops it on exit."""
    settings = root / ".settings"
    _write_settings(settings)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTER_CONFIG_DIR": str(root / ".config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "IPYTHONDIR": str(root / ".ipython"),
           **(kernel_env or {})}
    command = [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / '.workspaces'}",
               "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True"]
    log_path = root / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            server = JupyterServer(f"http://127.0.0.1:{port}", token, root, log_path)
            _wait_until_up(server, process)
            yield server
        finally:
            _stop(process)


def _wait_until_up(server: JupyterServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url("/api/status"), timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer within 90 s:\n{server.log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and the kernels it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


KERNEL_EXEC = """async (code) => {
  const widget = window.jupyterapp.shell.currentWidget;
  const kernel = widget.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = "", err = "";
  future.onIOPub = (msg) => {
    if (msg.header.msg_type === "stream") out += msg.content.text;
    if (msg.header.msg_type === "error") err += msg.content.ename + ": " + msg.content.evalue;
  };
  await future.done;
  return { out, err };
}"""

VIEW = "document.querySelector('.manet-annotator').manetView"


class NotebookPage:
    """One notebook open in JupyterLab or Notebook 7 (a Playwright page), with its cells run."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def open(self, url: str, timeout: float = 120_000,
             ready: str = "v.stats.framesReceived > 0 && v.get('status') === 'idle'") -> NotebookPage:
        """Open the notebook, run its cells and wait until the view satisfies ``ready`` (default:
        a frame shown and the kernel idle, i.e. the embedding warm-up done)."""
        page = self.page
        page.goto(url)
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=timeout)
        page.evaluate("""async () => {
            const w = window.jupyterapp.shell.currentWidget;
            await w.context.ready; await w.sessionContext.ready;
            while (!w.sessionContext.session || !w.sessionContext.session.kernel) {
              await new Promise((r) => w.sessionContext.kernelChanged.connect(r));
            }
        }""")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(".manet-annotator", timeout=timeout)
        self.wait(ready, timeout=timeout)
        return self

    def run_python(self, code: str) -> str:
        """Run ``code`` in the notebook's kernel; returns its stdout, raises on an exception."""
        result = self.page.evaluate(KERNEL_EXEC, code)
        if result["err"]:
            raise AssertionError(f"kernel error: {result['err']}\nwhile running:\n{code}")
        return str(result["out"])

    def view(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page with ``v`` bound to the annotator's view."""
        return self.page.evaluate(f"() => {{ const v = {VIEW}; return {expression}; }}")

    def wait(self, condition: str, timeout: float = 60_000) -> None:
        self.page.wait_for_function(f"() => {{ const v = {VIEW}; return !!v && ({condition}); }}", timeout=timeout)

    def screen_point(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of image pixel (x, y) on the annotator canvas."""
        sx, sy, left, top = self.view(
            f"(() => {{ const r = v.ui.canvas.getBoundingClientRect(); const p = v.view.toScreen({x}, {y});"
            " return [p[0], p[1], r.left, r.top]; })()")
        return left + sx, top + sy

    def scribble(self, points: list[tuple[float, float]], button: str = "left") -> None:
        """Drag the mouse through image-pixel ``points`` on the canvas."""
        self.page.locator(".manet-annotator canvas.manet-canvas").scroll_into_view_if_needed()
        mouse = self.page.mouse
        mouse.move(*self.screen_point(*points[0]))
        mouse.down(button=button)
        for x, y in points[1:]:
            mouse.move(*self.screen_point(x, y), steps=5)
        mouse.up(button=button)

    def click(self, x: float, y: float, button: str = "left") -> None:
        """Click at image pixel (x, y) on the canvas."""
        self.page.locator(".manet-annotator canvas.manet-canvas").scroll_into_view_if_needed()
        self.page.mouse.click(*self.screen_point(x, y), button=button)

    def drag(self, start: tuple[float, float], end: tuple[float, float], modifier: str | None = None) -> None:
        """Drag from image pixel ``start`` to ``end``, holding ``modifier`` (e.g. "Shift") if given."""
        self.page.locator(".manet-annotator canvas.manet-canvas").scroll_into_view_if_needed()
        if modifier is not None:
            self.page.keyboard.down(modifier)
        mouse = self.page.mouse
        mouse.move(*self.screen_point(*start))
        mouse.down()
        mouse.move(*self.screen_point(*end), steps=6)
        mouse.up()
        if modifier is not None:
            self.page.keyboard.up(modifier)

    def press(self, *keys: str) -> None:
        """Focus the annotator and press ``keys`` one after another."""
        self.view("v.ui.root.focus()")
        for key in keys:
            self.page.keyboard.press(key)

    def snapshot_canvas(self, name: str) -> None:
        self.page.evaluate(f"""() => {{ const v = {VIEW}; const c = v.ui.canvas;
            window[{name!r}] = c.getContext('2d').getImageData(0, 0, c.width, c.height).data.slice(); }}""")

    def changed_pixels(self, name: str) -> int:
        """Canvas pixels whose colour moved by more than 30 (sum over RGB) since ``snapshot_canvas(name)``."""
        return int(self.page.evaluate(f"""() => {{ const v = {VIEW}; const c = v.ui.canvas;
            const now = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const old = window[{name!r}];
            let n = 0; for (let i = 0; i < now.length; i += 4) {{
              const d = Math.abs(now[i] - old[i]) + Math.abs(now[i+1] - old[i+1]) + Math.abs(now[i+2] - old[i+2]);
              if (d > 30) n++; }}
            return n; }}"""))


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium from the Debian package, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
