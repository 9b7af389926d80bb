# MSSG at CPU scale (2 cores, about half an hour in bf16): the same PSPNet-WRes38 layout at a quarter
# of the width (backbone outputs 1024 ch), trained from scratch (no pretrained weights are reachable
# here), BN, 8 patches per step, 2k iterations; Omission starts at 10% of the schedule as in the
# faithful config (1k of 10k). Used for the CPU ablation:
#   python tools/train.py configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py
_base_ = [
    "../_base_/models/pspnet_wres38-d8_mssg.py",
    "../_base_/datasets/glas_proposals.py",
    "../_base_/default_runtime.py",
    "../_base_/schedules/schedule_2k.py",
]
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    backbone=dict(width_mult=0.25, norm_cfg=norm_cfg, init_cfg=None),
    decode_head=dict(in_channels=1024, channels=128, embed_dim=64, norm_cfg=norm_cfg,
                     omission=dict(start_iter=200)),
    auxiliary_head=dict(in_channels=256, channels=64, norm_cfg=norm_cfg),
    # channels-last weights and inputs: oneDNN's fast layout for bf16 convolutions (bench/msg_step.py)
    channels_last=True,
    # bf16 inference where the CPU/GPU runs it natively and faster (fp32 elsewhere); logits are fp32;
    # 8 slide windows per forward pass.
    test_cfg=dict(precision="bf16", window_batch=8),
)
# bf16 mixed-precision training (MSG/engine/optim_wrapper.py): 2.1-2.3x faster per step than fp32 on a
# 2-core AMD Zen 4 (AVX512-BF16, no AMX); fp32 where bf16 is emulated or measured slower (bench/msg_step.py).
optim_wrapper = dict(type="BF16OptimWrapper")
train_dataloader = dict(batch_size=8, num_workers=2)
val_dataloader = dict(num_workers=1)
test_dataloader = val_dataloader
env_cfg = dict(dist_cfg=dict(backend="gloo"))
# A lighter test protocol for 2 CPU cores: ratios 1.25 and 2 of the training scale, each with flip
# (11.1 1x passes instead of the full protocol's 55.4, 20%). Chosen without labels by
#   python bench/tta_protocol.py choose CONFIG CHECKPOINT ../shared/data/glas/train/images --num 4
# (rule fixed beforehand: among ratio sets costing <= 1/4 of the full protocol, the one whose
# predictions agree most with the full protocol's on train images: 97.6%). The full protocol:
#   python tools/test.py CONFIG CKPT --tta-ratios 0.75 1 1.25 1.5 1.75 2 2.5 3
tta_ratios = [1.25, 2.0]
