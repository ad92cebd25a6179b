#!/usr/bin/env bash
# Smoke suite (tests/smoke: import, one session round on a synthetic video, widget assets) on the installed
# wheel, under the oldest and the newest supported Python found on this machine, so the range that
# pyproject.toml claims is tested.
#
#   bash scripts/ci_smoke.sh [PYTHON ...]    # default: Python 3.10 and 3.13 (on PATH or under pyenv)
#
# Each Python gets a virtual environment cached in ${MANET_CI_CACHE:-~/.cache/manet-ci}, keyed by its version
# and a hash of the wheel's requirements: a warm run only reinstalls the wheel (seconds). A cold one installs
# torch from PyPI, whose Linux wheels for these Pythons are CUDA builds (they run on CPU): measured here
# about 2 minutes and 4.6 GB per Python. An install that outlasts MANET_SMOKE_INSTALL_TIMEOUT seconds (default
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
requirements=$("$python" -c 'import sys, zipfile
archive = zipfile.ZipFile(sys.argv[1])
[metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
print("\n".join(sorted(line for line in archive.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:"))))' "$wheel")
mkdir -p "$work/smoke" "$cache"
cp tests/smoke/*.py "$work/smoke/"

failed=()
for interpreter in "${pythons[@]}"; do
  version=$("$interpreter" -c 'import platform; print(platform.python_version())')
  key=$(printf '%s\n%s\n%s\n' "$requirements" "$torch_pin" "pytest" | sha256sum | cut -c1-12)
  env_dir="$cache/smoke-py$version-$key"
  started=$(date +%s)
  if [ ! -f "$env_dir/.ready" ]; then
    if [ "${MANET_SMOKE_COLD:-}" = skip ]; then
      echo "SKIPPED smoke on Python $version: no cached environment and MANET_SMOKE_COLD=skip" \
           "(a cold install downloads about 3 GB of CUDA torch)"
      continue
    fi
    echo "== Python $version: creating $env_dir (cold: torch from PyPI, a few GB)"
    rm -rf "$cache"/smoke-py"$version"-*  # environments for older requirements
    "$interpreter" -m venv "$env_dir"
    pip=("$env_dir/bin/python" -m pip install -q --disable-pip-version-check)
    status=0
    timeout "$install_timeout" "${pip[@]}" "$torch_pin" && \
      timeout "$install_timeout" "${pip[@]}" "$wheel[widget]" pytest || status=$?
    if [ "$status" = 124 ]; then
      rm -rf "$env_dir"
      echo "SKIPPED smoke on Python $version: installing torch and the requirements took over ${install_timeout}s"
      continue
    elif [ "$status" != 0 ]; then
      rm -rf "$env_dir"
      echo "FAILED smoke on Python $version: installing the wheel and its requirements failed (exit $status)"
      failed+=("$version")
      continue
    fi
    touch "$env_dir/.ready"
    echo "   installed in $(( $(date +%s) - started ))s, $(du -sh "$env_dir" | cut -f1) on disk"
  else
    "$env_dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
  fi
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
