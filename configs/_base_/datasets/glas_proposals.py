# Train: 256x256 patches of the GlaS train images and their SPM proposal maps
#        (tools/crop_img_and_gt.py, stride 192), values 0 bg / 1 border / 2 interior / 255 pad.
# Val/test: whole GlaS testA images with GT masks, slide inference, pooled mIoU.
# No ground truth is read for training.
crop_size = (256, 256)
# µm per pixel of the images the test pipeline takes (GlaS: 20x, 0.62 µm/px); the whole-slide tool
# resamples slides to it.
image_mpp = 0.62
train_data_root = "glas/patches"
test_data_root = "glas/testA"
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=(1024, 256), ratio_range=(0.75, 3.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadBinaryAnnotations"),
    dict(type="PackSegInputs"),
]
# The OEEM/MSSG test protocol: every image at the eight ratios of the training scale that
# RandomResize above draws from (0.75x-3x), each also flipped horizontally; SegTTAModel averages the
# 16 softmax maps at the original size. Applied to whole images (slide inference), which matches
# OEEM's 256/192 patch path (see README, "Evaluation protocol"). Used by `tools/test.py --tta`,
# `tools/predict.py --tta` and `tools/ablation.py --tta`; plain testing stays at 1x.
img_ratios = [0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0]
tta_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(
        type="TestTimeAug",
        transforms=[
            [dict(type="Resize", scale_factor=r, keep_ratio=True) for r in img_ratios],
            [dict(type="RandomFlip", prob=0.0, direction="horizontal"),
             dict(type="RandomFlip", prob=1.0, direction="horizontal")],
            [dict(type="LoadBinaryAnnotations")],
            [dict(type="PackSegInputs")],
        ],
    ),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(type="GlaSProposalDataset", data_root=train_data_root,
                 data_prefix=dict(img_path="images", seg_map_path="proposals"), pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type="GlaSDataset", data_root=test_data_root,
                 data_prefix=dict(img_path="images", seg_map_path="masks"), pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type="IoUMetric", iou_metrics=["mIoU", "mDice"])
test_evaluator = val_evaluator
