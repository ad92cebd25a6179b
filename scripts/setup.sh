#!/usr/bin/env bash
# Install the package and what it needs. --dev adds test tools (and the browser for UI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1
# The CPU build of torch; asking for it by version keeps pip from pulling a CUDA build.
python3 -m pip install -q --disable-pip-version-check "torch==2.13.0"
if [ -f package.json ]; then
  command -v npm >/dev/null || { echo "npm is required to build the widget's JavaScript" >&2; exit 1; }
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build
fi
if [ "$dev" = 1 ]; then
  # Headless Chromium for the browser tests, from Debian (no browser downloads here).
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
  fi
  python3 -m pip install -q --disable-pip-version-check -e ".[widget,dev]"
else
  python3 -m pip install -q --disable-pip-version-check -e ".[widget]"
fi
