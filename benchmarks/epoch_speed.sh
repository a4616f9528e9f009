#!/usr/bin/env bash
# Seconds per training epoch: the code before issue 8 (commit e8eb528, UMT's defaults on raw
# features) and the current code, back to back on the same aligned file, same machine.
#   bash benchmarks/epoch_speed.sh data/aligned/youtube_highlights/aligned.h5 youtube_highlights 3
set -euo pipefail
cd "$(dirname "$0")/.."
ALIGNED=${1:-data/aligned/youtube_highlights/aligned.h5}
DATASET=${2:-youtube_highlights}
EPOCHS=${3:-3}
PY=${PYTHON:-.venv/bin/python}
OLD=$(mktemp -d)
git worktree add -q --detach "$OLD" e8eb528
trap 'git worktree remove --force "$OLD"' EXIT
"$PY" benchmarks/epoch_speed.py --repo "$OLD" --aligned "$ALIGNED" --dataset "$DATASET" --epochs "$EPOCHS" \
    --label "before issue 8 (e8eb528)"
"$PY" benchmarks/epoch_speed.py --repo . --aligned "$ALIGNED" --dataset "$DATASET" --epochs "$EPOCHS" --label "now"
