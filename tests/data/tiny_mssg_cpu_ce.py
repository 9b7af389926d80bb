# The tiny test config with plain CE on the proposals (the "ce" ablation variant).
_base_ = ["./tiny_mssg_cpu.py"]
model = dict(decode_head=dict(variation=None, omission=None))
