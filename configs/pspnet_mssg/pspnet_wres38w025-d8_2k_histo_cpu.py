# MSSG at CPU scale (2 cores, about half an hour in bf16): the same PSPNet-WRes38 layout at a quarter
# of the width (backbone outputs 1024 ch), trained from scratch (no pretrained weights are reachable
# here), BN, 8 patches per step, 2k iterations; Omission starts at 10% of the schedule as in the
# faithful config (1k of 10k). Used for the CPU ablation:
#   python tools/train.py configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py
_base_ = ["./pspnet_wres38-d8_10k_histo.py"]
norm_cfg = dict(type="BN", requires_grad=True)
max_iters = 2000
model = dict(
    backbone=dict(width_mult=0.25, norm_cfg=norm_cfg, init_cfg=None),
    decode_head=dict(in_channels=1024, channels=128, embed_dim=64, norm_cfg=norm_cfg,
                     omission=dict(start_iter=200)),
    auxiliary_head=dict(in_channels=256, channels=64, norm_cfg=norm_cfg),
    # channels-last weights and inputs: oneDNN's fast layout for bf16 convolutions (bench/msg_step.py)
    channels_last=True,
    # bf16 inference where the CPU/GPU runs it natively (fp32 elsewhere); logits are fp32;
    # 8 slide windows per forward pass.
    test_cfg=dict(precision="bf16", window_batch=8),
)
# bf16 mixed-precision training (MSG/engine/optim_wrapper.py): ~2x faster per step on an AMX CPU.
optim_wrapper = dict(type="BF16OptimWrapper")
train_dataloader = dict(batch_size=8, num_workers=2)
val_dataloader = dict(num_workers=1)
test_dataloader = val_dataloader
env_cfg = dict(dist_cfg=dict(backend="gloo"))
param_scheduler = [dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=500, max_keep_ckpts=2),
)
