"""Load a command-line tool (``tools/NAME.py``) as a module, so tests can call its
``main(argv)``; tools are scripts, not part of the installed packages."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_tool(name: str, folder: str = "tools") -> ModuleType:
    key = f"_tool_{folder}_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module
