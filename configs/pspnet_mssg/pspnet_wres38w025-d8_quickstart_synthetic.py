# MSG quick start on the synthetic sample (README, "MSG quick start"): the CPU config for 20
# iterations, trained on glas/synthetic_patches (SPM proposals cropped by tools/crop_img_and_gt.py)
# and tested on glas/synthetic. A smoke run of the whole pipeline, not a model.
_base_ = ["./pspnet_wres38w025-d8_2k_histo_cpu.py"]
max_iters = 20
work_dir = "work_dirs/mssg_synthetic"
model = dict(decode_head=dict(omission=dict(start_iter=10)))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root="glas/synthetic_patches"))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root="glas/synthetic"))
test_dataloader = val_dataloader
param_scheduler = [dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=max_iters))
