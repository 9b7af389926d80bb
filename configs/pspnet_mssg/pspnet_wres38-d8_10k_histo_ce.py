# Ablation at the faithful scale: plain CE on the SPM proposals (no MSG for Variation, no MSG for Omission).
_base_ = ["./pspnet_wres38-d8_10k_histo.py"]
model = dict(decode_head=dict(variation=None, omission=None))
