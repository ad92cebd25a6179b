#!/usr/bin/env bash
# Check a GPU against the CPU (both presets, 8 rounds of the sample clip); arguments go to benchmarks/gpu_check.py.
set -euo pipefail; cd "$(dirname "$0")/.."; source scripts/python_env.sh; exec "$(manet_python)" benchmarks/gpu_check.py "$@"
