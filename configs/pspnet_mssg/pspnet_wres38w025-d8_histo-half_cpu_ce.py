# Ablation: plain CE on the SPM proposals (no MSG for Variation, no MSG for Omission).
_base_ = ["./pspnet_wres38w025-d8_histo-half_cpu.py"]
model = dict(decode_head=dict(variation=None, omission=None))
