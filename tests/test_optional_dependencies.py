"""scipy, scikit-image and matplotlib are the ``eval`` extra: the core runs without them, and the
features that need them say how to install them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from manet.optional import EVAL_INSTALL, MissingDependencyError, require

ROOT = Path(__file__).resolve().parents[1]
EXTRA = ("scipy", "skimage", "matplotlib")


def test_the_core_and_its_packages_import_and_segment_without_the_extra() -> None:
    # None in sys.modules makes any import of these packages (and their submodules) fail.
    code = textwrap.dedent(f"""
        import sys
        sys.modules.update({{name: None for name in {EXTRA!r}}})
        import numpy as np
        import manet, manet.eval, manet.simulate, manet.train, manet.io, manet.eval.report
        from manet.simulate.robot import robot_scribbles
        frames = np.zeros((3, 32, 32, 3), np.uint8)
        frames[:, 8:20, 8:20] = 255
        session = manet.Session(manet.load_model("tiny", weights=None), frames)
        session.interact([manet.Scribble(1, [[10, 10], [18, 18]]), manet.Scribble(0, [[2, 2], [30, 2]])], frame=0)
        assert len(list(session.propagate())) == 2
        gt = np.zeros((32, 32), np.uint8)
        gt[8:20, 8:20] = 1
        try:
            robot_scribbles(gt, np.zeros_like(gt), [1], np.random.default_rng(0))
        except manet.ManetError as error:
            print(error)
        else:
            raise SystemExit("the robot drew without scikit-image")
        loaded = [name for name in {EXTRA!r} if sys.modules.get(name) is not None]
        assert not loaded, loaded
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scikit-image" in result.stdout and EVAL_INSTALL in result.stdout


@pytest.mark.parametrize("module", ["skimage.morphology", "scipy.sparse.csgraph"])
def test_the_robot_names_the_install_command(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    from manet.simulate.robot import robot_scribbles

    monkeypatch.setitem(sys.modules, module, None)
    gt = np.zeros((20, 20), np.uint8)
    gt[4:16, 4:16] = 1
    with pytest.raises(MissingDependencyError, match=r'pip install "manet-jupyter\[eval\]"'):
        robot_scribbles(gt, np.zeros_like(gt), [1], np.random.default_rng(0))


def test_evaluation_and_training_fail_before_they_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from data_synthetic import make_synthetic_davis

    from manet.config import ModelConfig, SessionConfig
    from manet.eval.evaluate import EvalSettings, ModelSpec, evaluate
    from manet.io.davis import find_sequences
    from manet.train.loop import TrainConfig, Trainer

    root = make_synthetic_davis(tmp_path / "davis", sequences=1, frames=3)
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.morphology", None)
    with pytest.raises(MissingDependencyError, match="evaluation .*scikit-image"):
        evaluate(ModelSpec(tiny_random=True), find_sequences(root), SessionConfig(), EvalSettings(rounds=1))
    with pytest.raises(MissingDependencyError, match="training .*scikit-image"):
        Trainer(TrainConfig(steps=1, crop=32, batch_size=1), root, None, tmp_path / "run", ModelConfig.tiny())


def test_plots_need_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    from manet.eval.report import plot_figure

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match=r"plotting an evaluation needs matplotlib.*manet-jupyter\[eval\]"):
        plot_figure(None)  # type: ignore[arg-type]


def test_require_returns_the_module() -> None:
    assert require("json", "a test").dumps([1]) == "[1]"
