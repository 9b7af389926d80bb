# MSG quick start on the synthetic sample (README): the CPU config on 128^2 crops for 300 iterations,
# trained on work_dirs/mssg_synthetic/patches (SPM proposals cropped by tools/crop_img_and_gt.py) and
# tested on glas/synthetic. Long enough to segment the sample (gland Dice about 0.9 on its 3 images).
_base_ = ["./pspnet_wres38w025-d8_2k_histo_cpu.py"]
max_iters = 300
crop_size = (128, 128)
work_dir = "work_dirs/mssg_synthetic"
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=(1024, 256), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(omission=dict(start_iter=100)))
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root="work_dirs/mssg_synthetic/patches", pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root="glas/synthetic"))
test_dataloader = val_dataloader
param_scheduler = [dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=max_iters))
