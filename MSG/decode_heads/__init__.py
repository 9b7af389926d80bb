from MSG.decode_heads.msg_psp_head import MSGPSPHead

__all__ = ["MSGPSPHead"]
