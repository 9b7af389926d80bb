from MSG.engine.hooks import MSGIterHook

__all__ = ["MSGIterHook"]
