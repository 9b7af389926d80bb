from MSG.backbones.wide_res38 import WideRes38

__all__ = ["WideRes38"]
