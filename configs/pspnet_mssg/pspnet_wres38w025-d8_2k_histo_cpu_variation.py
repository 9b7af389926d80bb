# Ablation: CE on the proposals + MSG for Variation only.
_base_ = ["./pspnet_wres38w025-d8_2k_histo_cpu.py"]
model = dict(decode_head=dict(omission=None))
