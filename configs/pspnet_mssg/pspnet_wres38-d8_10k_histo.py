# MSSG, faithful setting: PSPNet-WRes38 (ImageNet res38d weights), 8 patches/GPU x 4 GPUs, 10k iterations.
#   bash tools/dist_train.sh configs/pspnet_mssg/pspnet_wres38-d8_10k_histo.py 4 work_dirs/mssg_glas
_base_ = [
    "../_base_/models/pspnet_wres38-d8_mssg.py",
    "../_base_/datasets/glas_proposals.py",
    "../_base_/default_runtime.py",
    "../_base_/schedules/schedule_10k.py",
]
