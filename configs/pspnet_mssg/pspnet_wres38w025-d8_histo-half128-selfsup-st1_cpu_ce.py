# Ablation: plain CE in the self-training round (on proposals refined by the plain-CE first model).
_base_ = ["./pspnet_wres38w025-d8_histo-half128-selfsup-st1_cpu.py"]
model = dict(decode_head=dict(variation=None, omission=None))
