# Self-supervised pretraining of the CPU-scale WideRes38 (quarter width) on the unlabeled GlaS train
# images at half resolution (the resolution of the half-resolution segmentation recipe): VICRegL's
# global + dense VICReg on two views of each crop, with histology augmentations (MSG/selfsup/).
#   python tools/pretrain.py configs/selfsup/vicregl_wres38w025_glas-half.py [--resume]
# writes work_dirs/selfsup_wres38w025_glas-half/backbone.pth, which the segmentation configs load with
#   model.backbone.init_cfg=dict(type="Pretrained", checkpoint=".../backbone.pth")
norm_cfg = dict(type="BN", requires_grad=True)
# dropout off: it would only add noise to the invariance term; the weights are the same either way
backbone = dict(type="WideRes38", width_mult=0.25, out_indices=(3,), norm_cfg=norm_cfg, dropout=(0.0, 0.0))
in_channels = 1024  # 4096 * width_mult
data = dict(image_dir="glas/train/images", scale=0.5)
# 128^2 views of 15-50% of a half-resolution image (0.6x-1.0x of the half-resolution scale), flips and
# quarter turns, mild H&E stain jitter, colour jitter and blur. Chosen by the label-free signal (the
# loss after 100 iterations, docs/results.md): stronger settings (8% crops, stain shifts of 0.05, which
# equal the stains themselves in rgb2hed units, blur up to 2 px) left the loss flat at ~22.
views = dict(size=128, area=(0.15, 0.5), aspect=(3 / 4, 4 / 3), stain_sigma=0.05, stain_shift=0.005,
             color_jitter=0.1, color_prob=0.8, blur_prob=0.2, blur_sigma=(0.1, 1.0))
# Dense term only: the global VICReg term estimates a 1024 x 1024 covariance from 16 pooled vectors
# per batch, which a CPU batch cannot support (it kept the loss at its starting value); the dense term
# has 16 x 49 matched points per batch.
method = dict(global_dims=(1024, 1024), local_dims=(512, 256), grid=7, global_weight=0.0,
              vicreg=dict(inv=25.0, var=25.0, cov=1.0))
optim = dict(lr=1e-3, weight_decay=1e-4)  # AdamW
# 1,000 iterations: 25 minutes in bf16 on a 2-core Zen 4, about 2 hours in fp32 on an AVX2-only CPU; there
# --cfg-options schedule.iters=400 fits the hour at 0.6 points on the train masks (docs/results.md)
schedule = dict(iters=1000, batch_size=16, warmup_iters=50, log_interval=20, checkpoint_interval=100)
seed = 0
channels_last = True
# the segmentation data preprocessor's normalisation (RGB, 0-255)
mean = [123.675, 116.28, 103.53]
std = [58.395, 57.12, 57.375]
work_dir = "work_dirs/selfsup_wres38w025_glas-half"
