#!/usr/bin/env bash
# Install the package and what it needs into the project's environment: .venv, created here unless the
# python3 on PATH already runs in a virtual or conda environment (see scripts/python_env.sh).
# --dev adds the test tools (and the browser for UI tests). Running it again only redoes what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
source scripts/python_env.sh
python=$(manet_python --create)
pip=("$python" -m pip install -q --disable-pip-version-check)

# What was installed is recorded with a hash of pyproject.toml, so an unchanged setup is skipped
# (delete .venv/.manet-setup-* to install again anyway).
extras="widget"
[ "$dev" = 1 ] && extras="widget,dev"
marker="$("$python" -c 'import sys; print(sys.prefix)')/.manet-setup-${extras/,/-}"
wanted="$( (cat pyproject.toml; echo "$extras") | sha256sum | cut -d' ' -f1)"

# The widget's JavaScript bundle, rebuilt only when js/ changed (npm is needed then).
"$python" scripts/widget_bundle.py
if [ "$dev" = 1 ] && { [ ! -f node_modules/.package-lock.json ] || [ node_modules/.package-lock.json -ot package-lock.json ]; }; then
  # The TypeScript checker and unit tests need node_modules even when the bundle was fresh.
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "$dev" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  # Headless Chromium for the browser tests, from Debian (no browser downloads here).
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if [ "$(cat "$marker" 2>/dev/null)" != "$wanted" ]; then
  # torch by exact version: on this machine's Python 3.11 that is the CPU build from local disk, and
  # asking for it first keeps pip from pulling a (larger) CUDA build for `torch>=...` below.
  "${pip[@]}" "torch==2.13.0"
  "${pip[@]}" -e ".[$extras]"
  echo "$wanted" > "$marker"
fi
