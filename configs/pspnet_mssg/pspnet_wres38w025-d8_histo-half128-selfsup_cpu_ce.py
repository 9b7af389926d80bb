# Ablation: plain CE on the SPM proposals, from the self-supervised backbone.
_base_ = ["./pspnet_wres38w025-d8_histo-half128-selfsup_cpu.py"]
model = dict(decode_head=dict(variation=None, omission=None))
