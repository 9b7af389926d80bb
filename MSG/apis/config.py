"""Reading configs for the tools: every way a config can fail is one ``InputError`` naming the file."""
from __future__ import annotations

import os

from mmengine.config import Config

from common.io import InputError


def load_config(path: str | os.PathLike, cfg_options: dict | None = None) -> Config:
    """``Config.fromfile(path)`` plus ``--cfg-options``.

    Raises:
        InputError: missing file, a syntax error (with its line), or any other failure to evaluate it
            (a missing ``_base_`` file, an unknown name).
    """
    path = str(path)
    if not os.path.isfile(path):
        raise InputError(path, "config file not found")
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        cause = err.__cause__ if isinstance(err.__cause__, SyntaxError) else err
        line = f"line {cause.lineno}: " if cause.lineno else ""
        raise InputError(path, f"config syntax error ({line}{cause.msg})") from None
    except Exception as err:  # mmengine raises many kinds (FileNotFoundError of a _base_, NameError, ...)
        first = (str(err).splitlines() or [""])[0]
        raise InputError(path, f"cannot read config ({err.__class__.__name__}: {first})") from None
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:
            raise InputError(path, f"cannot apply --cfg-options ({err.__class__.__name__}: {err})") from None
    return cfg
