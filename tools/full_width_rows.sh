#!/usr/bin/env bash
# The rows closest to the paper's, on one GPU: the faithful full-width PSPNet-WRes38
# (configs/pspnet_mssg/pspnet_wres38-d8_10k_histo.py) trained on SPM's default proposals of the GlaS
# train images, from scratch and from a full-width self-supervised start (configs/selfsup/
# vicregl_wres38_glas.py), CE and MSSG; final checkpoints scored on testA with the config's protocol
# (0.75-3x + flip) and `--fill-holes 15000` beside every row. No label is read before the scoring.
#
#   bash tools/full_width_rows.sh GLAS WORK_ROOT
#
# GLAS holds train/images, testA/images and testA/masks. Stages, each skipped when its output exists
# (so a stopped run continues where it stopped):
#   1. SPM on the train images (NPROC_SPM processes), 2. 256^2 patches, 3. on the one GPU at once:
#   CE and MSSG from scratch, and the self-supervised pretraining, after which CE and MSSG from the
#   pretrained backbone start, 4. WORK_ROOT/rows.csv: one row per (start, variant).
# Environment: ITERS (10000, the paper's), PRETRAIN_ITERS (the config's 2000), NPROC_SPM (4),
# SEED (0), PRECISION (bf16: MSG's BF16OptimWrapper, bf16 where the device runs it natively; fp32:
# the config's own wrapper), EXTRA_OPTIONS (more --cfg-options for every training, e.g. a smaller batch),
# PRETRAIN_OPTIONS (more --cfg-options for the pretraining), CONFIG and PRETRAIN_CONFIG (another
# segmentation config with its _ce variant, and the pretraining config of its backbone), SPM_OPTIONS
# (more tools/spm.py flags, e.g. --batch_images 4 on a GPU), PYTHON (python3), PROTOCOL (tools/ablation.py's
# prediction flags, default --tta: the config's 0.75-3x + flip).
# Time on one GPU, from the measured 0.040 s full-width bf16 step (bench/msg_step.py): 10k
# iterations are about 7 minutes per training alone; choose ITERS and PRETRAIN_ITERS for the time you
# have (up to four trainings share the GPU).
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 GLAS WORK_ROOT" >&2
    exit 2
fi
GLAS=$1
WORK=$2
ITERS=${ITERS:-10000}
PRETRAIN_ITERS=${PRETRAIN_ITERS:-2000}
NPROC_SPM=${NPROC_SPM:-4}
SEED=${SEED:-0}
PY=${PYTHON:-python3}
read -r -a EXTRA <<< "${EXTRA_OPTIONS:-}"
case ${PRECISION:-bf16} in
    bf16) EXTRA=(optim_wrapper.type=BF16OptimWrapper ${EXTRA[@]+"${EXTRA[@]}"}) ;;
    fp32) ;;
    *) echo "error: PRECISION=$PRECISION: use bf16 or fp32" >&2; exit 2 ;;
esac
read -r -a PRETRAIN_EXTRA <<< "${PRETRAIN_OPTIONS:-}"
read -r -a SPM_EXTRA <<< "${SPM_OPTIONS:-}"
read -r -a PROTOCOL_FLAGS <<< "${PROTOCOL:---tta}"
for d in "$GLAS/train/images" "$GLAS/testA/images" "$GLAS/testA/masks"; do
    [ -d "$d" ] || { echo "error: $d: no such folder (GLAS must hold train/images, testA/images, testA/masks)" >&2; exit 2; }
done
GLAS=$(cd "$GLAS" && pwd)
WORK=$(realpath -m "$WORK")
HERE=$(cd "$(dirname "$0")/.." && pwd)
cd "$HERE"
mkdir -p "$WORK"
CONFIG=${CONFIG:-configs/pspnet_mssg/pspnet_wres38-d8_10k_histo.py}
PRETRAIN_CONFIG=${PRETRAIN_CONFIG:-configs/selfsup/vicregl_wres38_glas.py}
SPM_MAPS=$WORK/spm_train/cluster_5_nConv_3/gland_proposal
PATCHES=$WORK/patches
BACKBONE=$WORK/selfsup/backbone.pth
log() { echo "[$(date +%H:%M:%S)] $*"; }

log "SPM on $GLAS/train/images ($NPROC_SPM processes)"
bash tools/dist_spm.sh "$GLAS/train/images" "$WORK/spm_train" "$NPROC_SPM" --skip_existing --no-compile \
    ${SPM_EXTRA[@]+"${SPM_EXTRA[@]}"} > "$WORK/spm_train.log" 2>&1
if [ ! -d "$PATCHES/images" ]; then
    log "patches"
    "$PY" tools/crop_img_and_gt.py "$GLAS/train/images" "$SPM_MAPS" "$PATCHES.tmp" > "$WORK/crop.log" 2>&1
    mv "$PATCHES.tmp" "$PATCHES"
fi

# one ablation.py per (start, variant), each in its own folder, so that two trainings share the GPU
rows() {  # START VARIANT INIT_OPTION...
    local start=$1 variant=$2
    shift 2
    "$PY" tools/ablation.py --config "$CONFIG" --variants "$variant" --iters "$ITERS" "${PROTOCOL_FLAGS[@]}" --fill-holes 15000 \
        --images "$GLAS/testA/images" --masks "$GLAS/testA/masks" --work-root "$WORK/$start-$variant" \
        --cfg-options "$@" "train_dataloader.dataset.data_root=$PATCHES" "randomness.seed=$SEED" \
        ${EXTRA[@]+"${EXTRA[@]}"} > "$WORK/$start-$variant.log" 2>&1
}

log "pretraining ($PRETRAIN_ITERS iterations) beside CE and MSSG from scratch ($ITERS iterations)"
pids=()
rows scratch ce model.backbone.init_cfg=None & pids+=($!)
rows scratch msg model.backbone.init_cfg=None & pids+=($!)
if [ ! -f "$BACKBONE" ]; then
    "$PY" tools/pretrain.py "$PRETRAIN_CONFIG" --work-dir "$WORK/selfsup" --resume \
        --cfg-options "schedule.iters=$PRETRAIN_ITERS" "data.image_dir=$GLAS/train/images" "seed=$SEED" \
        ${PRETRAIN_EXTRA[@]+"${PRETRAIN_EXTRA[@]}"} > "$WORK/pretrain.log" 2>&1 \
        || { echo "error: pretraining failed; see $WORK/pretrain.log" >&2; kill "${pids[@]}"; exit 1; }
fi
log "CE and MSSG from the self-supervised backbone (beside what is left of the scratch runs)"
# a whole new init_cfg (_delete_), whether the config's is ImageNet's or None
init=(model.backbone.init_cfg._delete_=True model.backbone.init_cfg.type=Pretrained
      "model.backbone.init_cfg.checkpoint=$BACKBONE")
rows selfsup ce "${init[@]}" & pids+=($!)
rows selfsup msg "${init[@]}" & pids+=($!)
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status -eq 0 ] || { echo "error: a training failed; see the logs in $WORK" >&2; exit 1; }

"$PY" - "$WORK" <<'EOF'
import sys
from pathlib import Path

from common.io import read_csv, write_csv

work = Path(sys.argv[1])
rows = [{"start": start, **r} for start in ("scratch", "selfsup") for variant in ("ce", "msg")
        for r in read_csv(work / f"{start}-{variant}" / "ablation.csv")]
write_csv(work / "rows.csv", rows, list(dict.fromkeys(k for r in rows for k in r)))
for r in rows:
    print(r["start"], r["variant"], "mIoU", r["mIoU"], "Dice", r["Dice"], "+fill", r.get("fill_mIoU"),
          "s/it", r["s_per_iter"])
EOF
log "done: $WORK/rows.csv"
