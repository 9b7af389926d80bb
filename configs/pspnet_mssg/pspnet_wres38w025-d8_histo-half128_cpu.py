# MSSG at CPU scale, half resolution, 128^2 crops: the tissue of a full-resolution 256^2 crop at a
# quarter of the cost per step (four times the steps in the same time). Same patches as the
# half-resolution 256^2 recipe (random 128^2 crops of them).
_base_ = ["./pspnet_wres38w025-d8_histo-half_cpu.py"]
crop_size = (128, 128)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=(1024, 256), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
# Test windows stay 320^2 (stride 256) at half resolution. Measured on the train masks (declared
# validation, CPU protocol): MSSG from scratch, 1,000 iterations: 128/96 0.5158, 192/144 0.5101, 320/256
# 0.5054 mIoU; from the self-supervised start (the recipe): 128/96 0.5251, 320/256 0.5278.
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
