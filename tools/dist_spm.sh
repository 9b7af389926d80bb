#!/usr/bin/env bash
# Mine SPM proposals with NPROC processes (torchrun); rank r takes images r, r+NPROC, ...
# On CUDA, one process per GPU; on CPU, the cores are split between the processes.
#   bash tools/dist_spm.sh IMAGES OUT NPROC [more SPM.py flags, e.g. --skip_existing]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 IMAGES OUT NPROC [SPM.py flags...]" >&2
    exit 2
fi
IMAGES=$1
OUT=$2
NPROC=$3
shift 3
PORT=${PORT:-29511}
HERE=$(cd "$(dirname "$0")" && pwd)
exec torchrun --nnodes=1 --nproc_per_node="$NPROC" --master_addr=127.0.0.1 --master_port="$PORT" \
    "$HERE/spm.py" --train_image_path "$IMAGES" --output_root "$OUT" "$@"
