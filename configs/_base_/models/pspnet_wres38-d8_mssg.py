# PSPNet with a WideRes38 backbone (output stride 8) and the MSG head/losses.
norm_cfg = dict(type="SyncBN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(256, 256),
)
model = dict(
    type="MSSGEncoderDecoder",
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type="WideRes38",
        width_mult=1.0,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        dropout=(0.3, 0.5),
        init_cfg=dict(type="Pretrained", checkpoint="weights/res38d.pth"),
    ),
    decode_head=dict(
        type="MSGPSPHead",
        in_channels=4096,
        in_index=3,
        channels=512,
        pool_scales=(1, 2, 3, 6),
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        embed_dim=128,
        # mean over non-ignored pixels (255 = crop padding), as CE(prediction, R) is defined
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True),
        # MSG for Variation: lambda_V * L_V, margin m
        variation=dict(type="MSGVariationLoss", margin=0.5, loss_weight=1.0),
        # MSG for Omission: refined proposal R replaces P from start_iter on
        omission=dict(type="MSGOmission", delta=0.0, band=16, start_iter=1000),
    ),
    auxiliary_head=dict(
        type="FCNHead",
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4, avg_non_ignore=True),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="slide", crop_size=(320, 320), stride=(256, 256)),
)
