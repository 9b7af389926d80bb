from MSG.losses.msg_omission import MSGOmission, refine_proposal
from MSG.losses.msg_variation import MSGVariationLoss, border_anchor, variation_loss

__all__ = ["MSGOmission", "MSGVariationLoss", "border_anchor", "refine_proposal", "variation_loss"]
