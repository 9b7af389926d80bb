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


def test_no_file_edits_sys_path_and_nothing_imports_a_tool():
    """The project is installed (``-e .``): packages import by name, tools are thin scripts on top."""
    tools = {p.stem for p in (ROOT / "tools").glob("*.py")}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".git", ".venv", "work_dirs", "glas", "tests"}:
            continue
        text = path.read_text()
        assert "sys.path" not in text, f"{rel} edits sys.path"
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and words[1].split(".")[0] in tools:
                raise AssertionError(f"{rel} imports the tool {words[1]}: move the code into a package")
