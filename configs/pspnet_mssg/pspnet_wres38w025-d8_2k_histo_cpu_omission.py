# Ablation: MSG for Omission only (its refined proposal uses the embeddings, which are then trained
# by nothing but the shared features: the embedding branch gets no loss of its own).
_base_ = ["./pspnet_wres38w025-d8_2k_histo_cpu.py"]
model = dict(decode_head=dict(variation=None))
