# MSSG at CPU scale, half resolution (GlaS is scanned at 20x; its glands stay 50-150 px wide at 0.5):
# images and proposals at 0.5 (tools/crop_img_and_gt.py --scale 0.5), 256^2 training crops that see
# four times the tissue of a full-resolution crop (a gland's lumen together with its ring), at the
# cost per step of the full-resolution CPU config. Testing resizes each image by 0.5 before the model
# and the prediction back to the image (mmseg resizes logits to the original shape).
#   python tools/crop_img_and_gt.py glas/train/images SPM_DIR/gland_proposal glas/patches_half --scale 0.5
#   python tools/train.py configs/pspnet_mssg/pspnet_wres38w025-d8_histo-half_cpu.py
_base_ = ["./pspnet_wres38w025-d8_2k_histo_cpu.py"]
test_scale = 0.5
crop_size = (256, 256)
# Training scales 0.75-1.5x of the half-resolution patch (0.375-0.75x of the scanned resolution):
# OEEM's 0.75-3x magnifies full-resolution patches, which at half resolution would undo the point of it.
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomResize", scale=(1024, 256), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
# Resize before the annotations are loaded, so the ground truth stays at the image's resolution.
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale_factor=test_scale, keep_ratio=True),
    dict(type="LoadBinaryAnnotations"),
    dict(type="PackSegInputs"),
]
# CPU protocol at half resolution: the base scale and the top of the training range (1 and 1.5 of the
# half-resolution image), each with flip; ratios are scale factors of the original image.
tta_ratios = [test_scale * 1.0, test_scale * 1.5]
train_dataloader = dict(dataset=dict(data_root="glas/patches_half", pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
