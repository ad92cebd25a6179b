#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run the gates and the whole suite.
# Arguments go to pytest (e.g. -k session, or test files). The gates (ruff, mypy at Python 3.10, the
# TypeScript checker) all run even when one fails, so one run shows every finding; the script then fails
# if any did.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
bash scripts/setup.sh --dev
source scripts/python_env.sh
python=$(manet_python)
failed=()
echo "== ruff (pyproject.toml [tool.ruff])"
"$python" -m ruff check . || failed+=(ruff)
echo "== mypy manet manet_widget (pyproject.toml [tool.mypy], python_version 3.10)"
"$python" -m mypy || failed+=(mypy)
echo "== TypeScript: typecheck and unit tests"
npm run --silent typecheck || failed+=(tsc)
npm test --silent
echo "== pytest"
# No path arguments: pyproject.toml's testpaths (tests/); paths given run only those.
"$python" -m pytest -q "$@"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "gates failed: ${failed[*]} (see their output above)" >&2
  exit 1
fi
