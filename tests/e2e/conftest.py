"""Fixtures for the browser tests (see ``lab_harness.py``): a small real video, a JupyterLab server
on 127.0.0.1 and headless Chromium.

Outside CI the tests are skipped when Chromium, Playwright or the built front end is missing; with
``CI=true`` a missing piece fails the run instead, so CI cannot pass without running them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
ARTIFACTS = _HERE / "artifacts"


def _load_harness() -> Any:
    # Loaded by path so it works under every pytest import mode and from the benchmark script.
    spec = importlib.util.spec_from_file_location("manet_lab_harness", _HERE / "lab_harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = harness.missing_requirements()
    if missing:
        message = "browser tests need " + ", ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "console.log").unlink(missing_ok=True)
    root = tmp_path_factory.mktemp("lab")
    video = harness.write_video(root / "shapes.mp4")
    (root / "annotate.ipynb").write_text(harness.notebook_json(video))
    (root / "annotate_nb7.ipynb").write_text(harness.notebook_json(video))
    (root / "tools.ipynb").write_text(harness.notebook_json(video))
    try:
        with harness.jupyter_lab(root, {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}) as server:
            yield server
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        if (root / "server.log").exists():
            shutil.copy(root / "server.log", ARTIFACTS / "server.log")


@pytest.fixture(scope="session")
def browser(jupyter_server: Any) -> Iterator[Any]:
    with harness.chromium() as chromium:
        yield chromium


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """A fresh browser page; its console and page errors are kept on ``page.console_log``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.console_log = console
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        with (ARTIFACTS / "console.log").open("a") as log:
            log.write("\n".join(console) + "\n")
        context.close()


@pytest.fixture
def open_notebook(new_page: Any) -> Callable[[str], Any]:
    """``open_notebook(url)`` opens a notebook, runs its cells and returns a ``NotebookPage``."""
    return lambda url: harness.NotebookPage(new_page).open(url)


@pytest.fixture(scope="session")
def lab() -> Any:
    """The harness module (``lab_harness.py``), for tests that write and open their own notebooks."""
    return harness
