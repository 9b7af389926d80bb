#!/usr/bin/env bash
# Segment many slides with NPROC processes (torchrun); rank r takes slides r, r+NPROC, ...
# On CUDA, one process per GPU; on CPU, the cores are split between the processes.
#   bash tools/dist_predict_wsi.sh CHECKPOINT SLIDES OUT NPROC [more predict_wsi.py flags, e.g. --tta]
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 CHECKPOINT SLIDES OUT NPROC [predict_wsi.py flags...]" >&2
    exit 2
fi
CHECKPOINT=$1
SLIDES=$2
OUT=$3
NPROC=$4
shift 4
PORT=${PORT:-29512}
HERE=$(cd "$(dirname "$0")" && pwd)
exec torchrun --nnodes=1 --nproc_per_node="$NPROC" --master_addr=127.0.0.1 --master_port="$PORT" \
    "$HERE/predict_wsi.py" "$CHECKPOINT" "$SLIDES" --out "$OUT" "$@"
