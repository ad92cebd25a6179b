#!/usr/bin/env bash
# Rerun the commands of manet/weights/MODEL_CARD.md ("How it was trained") end to end into a fresh
# folder, then print the sha256 of the weights it made and their dev-split scores (`manet eval` on
# splits/dev.txt, 8 rounds).
#
#   bash scripts/reproduce_weights.sh [--out DIR] [--dry-run]
#
#   --out DIR    where everything is written (default: a new folder under ${TMPDIR:-/tmp}); it must not
#                exist yet or be empty, and may not be inside runs/ (the committed runs stay as they are)
#   --dry-run    print the commands (one a line, after "+ ") and exit without running anything
#
# Data (the same settings as the tests; relative paths are taken from the repository root):
#   MANET_DAVIS_ROOT        DAVIS-2016 training folder (JPEGImages/, Annotations/), default
#                           ../shared/data/davis2016-240p beside the repository
#   MANET_DAVIS_480P_ROOT   the dev videos at full resolution for the scores, default
#                           ../shared/data/davis2016-480p-dev; when absent the dev videos of the
#                           training folder are scored (at its resolution)
# The projection and the backbone's last 13 blocks are trained with one thread, as documented: about
# 35 min on 2 CPU cores, then about 10 min of evaluation. CPU training is not bit-reproducible (see the model card).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)

OUT=""
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "reproduce_weights: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# A setting's folder: relative paths from the repository root, unset -> the shared default.
data_folder() {
  local value="$1" default_name="$2"
  if [ -z "$value" ]; then
    echo "$(dirname "$REPO")/shared/data/$default_name"
  elif [ "${value#/}" != "$value" ]; then
    echo "$value"
  else
    echo "$REPO/$value"
  fi
}

DATA=$(data_folder "${MANET_DAVIS_ROOT:-}" davis2016-240p)
DEV=$(data_folder "${MANET_DAVIS_480P_ROOT:-}" davis2016-480p-dev)
[ -d "$DEV/JPEGImages" ] || DEV="$DATA"
[ -n "$OUT" ] || OUT="${TMPDIR:-/tmp}/manet-reproduce-$(date -u +%Y%m%d-%H%M%S)"
case "$OUT" in /*) ;; *) OUT="$REPO/$OUT" ;; esac

if [ "$DRY_RUN" = 0 ]; then
  if [ ! -d "$DATA/JPEGImages" ]; then
    echo "reproduce_weights: no DAVIS-2016 training data at $DATA (no JPEGImages/ there): set MANET_DAVIS_ROOT" \
         "to the folder (JPEGImages/ + Annotations/ of DAVIS-2016 at 427x240), or put it at ../shared/data/" >&2
    exit 2
  fi
  # The folder as it will be once made (its parent resolved), so runs/../runs/x is caught too.
  resolved="$(cd "$(dirname "$OUT")" 2>/dev/null && pwd)/$(basename "$OUT")"
  case "$resolved/" in
    "$REPO/runs/"*) echo "reproduce_weights: --out $OUT is inside runs/: choose a folder outside it" >&2; exit 2 ;;
  esac
  if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    echo "reproduce_weights: $OUT is not empty: give a new --out folder (nothing is written over)" >&2
    exit 2
  fi
  mkdir -p "$OUT/eval"
  # The project's environment first on PATH, so `python` and `manet` are the project's.
  [ -x "$REPO/.venv/bin/python" ] && PATH="$REPO/.venv/bin:$PATH"
fi

# Print a command; run it unless this is a dry run (stdout and stderr into LOG when given).
run() {
  local log=""
  if [ "$1" = "--log" ]; then log="$2"; shift 2; fi
  echo "+ $*"
  [ "$DRY_RUN" = 1 ] && return 0
  if [ -n "$log" ]; then "$@" >"$log" 2>&1; else "$@"; fi
}

run python -m manet.train.projection --data "$DATA" --split splits/train-fit.txt --dim 128 \
  --out "$OUT/proj128-init.safetensors"
run --log "$OUT/projection.log" manet train projection --preset lite --data "$DATA" --split splits/train-fit.txt \
  --out "$OUT/match128-tuned13" --init "$OUT/proj128-init.safetensors" --steps 1200 --keep-every 200 \
  --scribble-reference-probability 0.8 --backbone-blocks 13 --threads 1
run python -m manet.train.export --base "$OUT/match128-tuned13/last.safetensors" --out "$OUT/manet_lite.safetensors"
run manet eval "$DEV" --weights "$OUT/manet_lite.safetensors" --sequences-file splits/dev.txt --rounds 8 \
  --report "$OUT/eval/dev.json" --no-progress
[ "$DRY_RUN" = 1 ] && exit 0

echo
echo "reproduced weights: $(python -m manet.provenance digest "$OUT/manet_lite.safetensors")"
echo "shipped weights:    $(python -m manet.provenance digest manet/weights/manet_lite.safetensors)"
python -m manet.provenance compare "$OUT/manet_lite.safetensors" manet/weights/manet_lite.safetensors
python - "$OUT/eval/dev.json" <<'EOF'
import json
import sys

summary = json.load(open(sys.argv[1], encoding="utf-8"))["summary"]
rounds = summary["per_round"]
print(f"dev split: J r1 {rounds[0]['jaccard']:.3f}  J r8 {rounds[-1]['jaccard']:.3f}  F r8 {rounds[-1]['boundary']:.3f}  "
      f"AUC {summary['auc']:.3f}  J@{summary['threshold_seconds']:g}s {summary['jaccard_at_threshold']:.3f}")
EOF
echo "report: $OUT/eval/dev.json (compare with the model card's scores)"
