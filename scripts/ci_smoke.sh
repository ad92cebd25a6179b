#!/usr/bin/env bash
# Smoke suite (tests/smoke: import, one session round on a synthetic video, widget assets) on the installed
# wheel, under the oldest and the newest supported Python found on this machine, so the range that
# pyproject.toml claims is tested.
#
#   bash scripts/ci_smoke.sh [PYTHON ...]    # default: Python 3.10 and 3.13 (on PATH or under pyenv)
#
# Each Python gets a virtual environment cached in ${MANET_CI_CACHE:-~/.cache/manet-ci}/smoke-pyX.Y.Z, with
# the names of the wheel's requirements it was made for: a warm run reinstalls the wheel and lets pip add any
# new requirement (seconds); a dropped requirement makes the environment again. A cold run installs
# torch from PyPI, whose Linux wheels for these Pythons are CUDA builds (they run on CPU): measured here
# 2 to 10 minutes (idle or busy machine) and 5.4 GB on disk per Python. An install that outlasts MANET_SMOKE_INSTALL_TIMEOUT seconds (default
# 1500) is reported as SKIPPED, not failed (a slow download says nothing about the code); a failing install or
# smoke test fails the script. MANET_SMOKE_COLD=skip runs only the Pythons whose environment is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python_env.sh
python=$(manet_python)
cache="${MANET_CI_CACHE:-$HOME/.cache/manet-ci}"
torch_pin="torch==2.13.0"  # has wheels for CPython 3.10 to 3.13
install_timeout="${MANET_SMOKE_INSTALL_TIMEOUT:-1500}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

find_python() {  # a python$1 on PATH that runs (a pyenv shim may not), else pyenv's newest $1.x, or nothing
  local minor="$1" candidate
  for candidate in "$(command -v "python$minor" || true)" \
      "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$minor".*/bin/"python$minor" 2>/dev/null | sort -V | tail -n 1)"; do
    if [ -n "$candidate" ] && "$candidate" -c 'pass' >/dev/null 2>&1; then
      echo "$candidate"
      return
    fi
  done
}

pythons=("$@")
if [ "${#pythons[@]}" = 0 ]; then
  for minor in 3.10 3.13; do
    found=$(find_python "$minor")
    if [ -n "$found" ]; then
      pythons+=("$found")
    else
      echo "SKIPPED smoke on Python $minor: no python$minor on PATH or under pyenv (install it to run this step)"
    fi
  done
fi

echo "== building the wheel"
"$python" -m build --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/manet_jupyter-*.whl)
names=$("$python" -c 'import re, sys, zipfile
archive = zipfile.ZipFile(sys.argv[1])
[metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
lines = [line for line in archive.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
print("\n".join(sorted({re.match(r"Requires-Dist:\s*([A-Za-z0-9_.-]+)", line)[1].lower() for line in lines})))' "$wheel")
mkdir -p "$work/smoke" "$cache"
cp tests/smoke/*.py "$work/smoke/"

failed=()
for interpreter in "${pythons[@]}"; do
  version=$("$interpreter" -c 'import platform; print(platform.python_version())')
  env_dir="$cache/smoke-py$version"
  pip=("$env_dir/bin/python" -m pip install -q --disable-pip-version-check)
  started=$(date +%s)
  # A cached environment is kept while the wheel requires nothing less than when it was made (pip then
  # adds what is new in seconds); a dropped requirement would linger and could hide a missing one.
  dropped=""
  if [ -f "$env_dir/.ready" ]; then
    dropped=$(LC_ALL=C comm -23 "$env_dir/.requirements" <(echo "$names") | tr '\n' ' ')
    if [ -n "$dropped" ]; then
      echo "== Python $version: the wheel no longer requires ${dropped}: making its environment again"
      rm -rf "$env_dir"
    fi
  fi
  if [ ! -f "$env_dir/.ready" ]; then
    if [ "${MANET_SMOKE_COLD:-}" = skip ]; then
      echo "SKIPPED smoke on Python $version: no cached environment and MANET_SMOKE_COLD=skip" \
           "(a cold install downloads about 3 GB of CUDA torch)"
      continue
    fi
    echo "== Python $version: creating $env_dir (cold: torch from PyPI, a few GB)"
    rm -rf "$env_dir"
    "$interpreter" -m venv "$env_dir"
    status=0
    timeout "$install_timeout" "${pip[@]}" "$torch_pin" || status=$?
    if [ "$status" = 124 ]; then
      rm -rf "$env_dir"
      echo "SKIPPED smoke on Python $version: installing $torch_pin took over ${install_timeout}s"
      continue
    fi
  else
    status=0
    # Same version number, new contents: replace the package itself, then let pip add new requirements.
    "${pip[@]}" --no-deps --force-reinstall "$wheel" || status=$?
  fi
  [ "$status" = 0 ] && { timeout "$install_timeout" "${pip[@]}" "$torch_pin" "$wheel[widget]" pytest || status=$?; }
  if [ "$status" = 124 ]; then
    rm -rf "$env_dir"
    echo "SKIPPED smoke on Python $version: installing the wheel's requirements took over ${install_timeout}s"
    continue
  elif [ "$status" != 0 ]; then
    rm -rf "$env_dir"
    echo "FAILED smoke on Python $version: installing the wheel and its requirements failed (exit $status)"
    failed+=("$version")
    continue
  fi
  echo "$names" > "$env_dir/.requirements"
  touch "$env_dir/.ready"
  echo "   environment ready in $(( $(date +%s) - started ))s, $(du -sh "$env_dir" | cut -f1) on disk"
  echo "== Python $version: smoke suite on the installed wheel"
  # -I: neither the working folder nor PYTHONPATH on sys.path; run outside the repository.
  if (cd "$work/smoke" && MANET_SMOKE_INSTALLED=1 OMP_WAIT_POLICY=PASSIVE \
      "$env_dir/bin/python" -I -m pytest -q -p no:cacheprovider --rootdir "$work/smoke" .); then
    echo "   Python $version smoke passed ($(( $(date +%s) - started ))s in all)"
  else
    failed+=("$version")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "smoke failed on Python ${failed[*]}" >&2
  exit 1
fi
