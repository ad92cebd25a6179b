"""scripts/python_env.sh: which interpreter setup.sh installs into and demo.sh/test.sh run with.

Each case runs the real shell function in a scratch folder, with stand-ins on PATH for what it must not
touch (apt-get, and ``id`` to play a non-root user)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "python_env.sh"
# The interpreter this environment was made from: a plain Python, not a venv (like a distribution's).
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable))
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def manet_python(folder: Path, bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("MANET_PYTHON", "VIRTUAL_ENV")}
    environment["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return subprocess.run(["bash", "-c", f'source "{SCRIPT}" && manet_python {" ".join(args)}'], cwd=folder,
                          env=environment, capture_output=True, text=True, timeout=300, check=False)


def tool(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def system_python(tmp_path: Path) -> Path:
    """A bin folder whose python3 is the plain base interpreter."""
    if Path(sys.prefix) == Path(sys.base_prefix):
        pytest.skip("the tests run in a plain Python, so there is no base interpreter distinct from a venv")
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "python3", f'exec "{BASE_PYTHON}" "$@"')
    return bin_dir


def test_a_python3_that_runs_in_a_venv_is_used_as_it_is(tmp_path: Path) -> None:
    if Path(sys.prefix) == Path(sys.base_prefix):
        pytest.skip("needs the tests to run in a virtual environment")
    result = manet_python(tmp_path, Path(sys.executable).parent, "--create")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == Path(sys.executable).parent / "python3"
    assert not (tmp_path / ".venv").exists()


def test_a_plain_python_gets_the_project_venv(tmp_path: Path, system_python: Path) -> None:
    result = manet_python(tmp_path, system_python)
    assert result.returncode == 1 and "run bash scripts/setup.sh first" in result.stderr
    result = manet_python(tmp_path, system_python, "--create")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / ".venv" / "bin" / "python")
    assert "creating the project environment .venv" in result.stderr
    created = subprocess.run([result.stdout.strip(), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                             capture_output=True, text=True, check=True)
    assert created.stdout.strip() == "True"
    again = manet_python(tmp_path, system_python, "--create")  # an existing environment is kept
    assert again.returncode == 0 and "creating" not in again.stderr


def test_missing_venv_module_is_installed_when_root(tmp_path: Path, system_python: Path) -> None:
    log = tmp_path / "apt.log"
    # A Debian-like python3 without ensurepip (until python3.X-venv is installed), apt-get recorded; its
    # `-m venv` only lays out bin/python (making a real one is the previous test's job, and slow).
    tool(system_python, "python3", f'case "$*" in *ensurepip*) [ -f "{log}" ] || exit 1;;\n'
                                   f'  "-m venv .venv") mkdir -p .venv/bin && ln -s "{BASE_PYTHON}" .venv/bin/python'
                                   f' && exit 0;; esac\nexec "{BASE_PYTHON}" "$@"')
    tool(system_python, "apt-get", f'echo "apt-get $*" >> "{log}"')
    tool(system_python, "id", "echo 0")
    result = manet_python(tmp_path, system_python, "--create")
    assert result.returncode == 0, result.stderr
    assert f"installing python{VERSION}-venv" in result.stderr
    assert log.read_text().splitlines()[-1] == f"apt-get install -y -qq python{VERSION}-venv"
    assert (tmp_path / ".venv" / "bin" / "python").exists()


def test_missing_venv_module_names_the_package_to_install(tmp_path: Path, system_python: Path) -> None:
    tool(system_python, "python3", f'case "$*" in *ensurepip*) exit 1;; esac\nexec "{BASE_PYTHON}" "$@"')
    tool(system_python, "apt-get", "echo should not run >&2; exit 3")
    tool(system_python, "id", "echo 1000")
    result = manet_python(tmp_path, system_python, "--create")
    assert result.returncode == 1
    assert f"sudo apt-get install python{VERSION}-venv" in result.stderr
    assert "should not run" not in result.stderr and not (tmp_path / ".venv").exists()


def test_too_old_python_is_refused_with_the_version(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    tool(bin_dir, "python3", 'case "$*" in *platform*) echo 3.9.18;; *) exit 1;; esac')
    result = manet_python(tmp_path, bin_dir, "--create")
    assert result.returncode == 1 and "Python 3.9.18" in result.stderr and "3.10 or newer" in result.stderr
