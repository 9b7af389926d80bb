from MSG.losses.msg_variation import MSGVariationLoss, border_anchor, variation_loss

__all__ = ["MSGVariationLoss", "border_anchor", "variation_loss"]
