"""The code base stays ruff-clean (rules in pyproject.toml)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff not installed (it is in requirements.txt)")
    proc = subprocess.run([ruff, "check", "--output-format", "concise", str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_two_paths_differ_only_in_case():
    """A checkout on a case-insensitive file system (macOS, Windows) would keep only one of them."""
    seen: dict[str, Path] = {}
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".git", ".venv", "work_dirs", "glas"} or "__pycache__" in rel.parts:
            continue
        key = str(rel).lower()
        assert key not in seen, f"{rel} and {seen[key]} differ only in case"
        seen[key] = rel
