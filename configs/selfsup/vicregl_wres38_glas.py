# Self-supervised pretraining of the full-width WideRes38 (the faithful config's backbone) on the
# unlabeled GlaS train images at full resolution, for a GPU: the CPU recipe's method, views and loss
# (vicregl_wres38w025_glas-half.py, chosen there by the label-free signal) at the faithful scale.
#   python tools/pretrain.py configs/selfsup/vicregl_wres38_glas.py [--resume]
# writes work_dirs/selfsup_wres38_glas/backbone.pth; the faithful config starts from it instead of
# ImageNet with
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/selfsup_wres38_glas/backbone.pth
_base_ = ["./vicregl_wres38w025_glas-half.py"]
backbone = dict(width_mult=1.0)
in_channels = 4096  # 4096 * width_mult
data = dict(scale=1.0)
# 256^2 views of 15-50% of a full-resolution image: 0.57-1.04x of the full-resolution scale, the
# range the CPU recipe's 128^2 views cover at half resolution, and the faithful config's crop size.
views = dict(size=256)
# 32 x 7^2 matched points per batch for the dense term; the global term stays off, as on the CPU (a
# 4096-channel covariance needs far more than 32 pooled vectors per batch).
schedule = dict(iters=2000, batch_size=32, warmup_iters=100, log_interval=50, checkpoint_interval=200)
work_dir = "work_dirs/selfsup_wres38_glas"
