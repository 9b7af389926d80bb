# A tiny MSSG config for tests: the CPU config at 1/16 width, 4 iterations, no workers.
_base_ = ["../../configs/pspnet_mssg/pspnet_wres38w025-d8_2k_histo_cpu.py"]
max_iters = 4
crop_size = (64, 64)
model = dict(
    # oneDNN's fp32 channels-last convolution backward crashes (SIGSEGV) at this 1/16 width; the CPU
    # config's own width is tested with channels-last in tests/test_precision_tta.py.
    channels_last=False,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(width_mult=0.0625),
    decode_head=dict(in_channels=256, channels=16, embed_dim=8, omission=dict(start_iter=2)),
    auxiliary_head=dict(in_channels=64, channels=16),
    test_cfg=dict(mode="slide", crop_size=(80, 80), stride=(64, 64)),
)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
param_scheduler = [dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=3))
randomness = dict(seed=0)
