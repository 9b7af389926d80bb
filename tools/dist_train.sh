#!/usr/bin/env bash
# bash tools/dist_train.sh CONFIG GPUS WORK_DIR [tools/train.py flags, e.g. --resume]
# One process per GPU (NCCL, SyncBN); without CUDA, GPUS CPU processes (Gloo, BN).
set -euo pipefail
if [ $# -lt 3 ]; then echo "usage: $0 CONFIG GPUS WORK_DIR [train.py flags]" >&2; exit 2; fi
CONFIG=$1
GPUS=$2
WORK_DIR=$3
shift 3
PORT=${PORT:-29500}
HERE=$(cd "$(dirname "$0")" && pwd)
exec torchrun --nnodes=1 --nproc_per_node="$GPUS" --master_addr=127.0.0.1 --master_port="$PORT" \
    "$HERE/train.py" "$CONFIG" --work-dir "$WORK_DIR" --launcher pytorch "$@"
