from MSG.engine.hooks import MSGIterHook
from MSG.engine.optim_wrapper import BF16OptimWrapper

__all__ = ["BF16OptimWrapper", "MSGIterHook"]
