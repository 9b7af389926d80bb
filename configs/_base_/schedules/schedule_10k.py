# SGD lr 0.005, momentum 0.9, weight decay 5e-4; poly (power 0.9) to 1e-4 over 10k iterations.
optimizer = dict(type="SGD", lr=0.005, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type="OptimWrapper", optimizer=optimizer, clip_grad=None)
param_scheduler = [dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=10000, by_epoch=False)]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=10000, val_interval=1000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type="ParamSchedulerHook"),
    # No save_best: an unsupervised method must not pick its checkpoint by test labels. In-training
    # validation only logs curves; reported numbers come from the final checkpoint.
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=1000, max_keep_ckpts=3),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="SegVisualizationHook"),
)
