from MSG.decode_heads.msg_omission import MSGOmission, refine_proposal
from MSG.decode_heads.msg_psp_head import MSGPSPHead

__all__ = ["MSGOmission", "MSGPSPHead", "refine_proposal"]
