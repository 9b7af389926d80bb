# mmseg 1.x runtime defaults, plus the MSG registrations.
custom_imports = dict(imports=["MSG"], allow_failed_imports=False)
default_scope = "mmseg"
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="nccl"),
)
vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="SegLocalVisualizer", vis_backends=vis_backends, name="visualizer")
log_processor = dict(by_epoch=False)
log_level = "INFO"
load_from = None
resume = False
# One seed for every run, so that "same seed" means the same data order and initialisation.
randomness = dict(seed=0)
tta_model = dict(type="SegTTAModel")
