# The half-resolution 128^2 recipe started from the self-supervised backbone (no label anywhere):
#   python tools/pretrain.py configs/selfsup/vicregl_wres38w025_glas-half.py
_base_ = ["./pspnet_wres38w025-d8_histo-half128_cpu.py"]
model = dict(backbone=dict(init_cfg=dict(_delete_=True, type="Pretrained",
                                         checkpoint="work_dirs/selfsup_wres38w025_glas-half/backbone.pth")))
