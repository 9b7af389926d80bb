"""Shared fixtures. Real-data tests need ../shared (present on the dev machine and in CI, not
on a user's machine); they skip with the reason shown when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Before any test module imports mmseg: install the mmcv.ops stand-in (if needed) and register MSG.
import MSG  # noqa: F401

# isort: split
from mmseg.utils import register_all_modules

ROOT = Path(__file__).resolve().parents[1]
register_all_modules(init_default_scope=True)


@pytest.fixture(autouse=True, scope="session")
def _private_choice_cache(tmp_path_factory) -> None:
    """Per-machine speed choices (common.hardware.timed_choice) go to a temp folder, not the user's cache."""
    os.environ.setdefault("MSSG_CACHE_DIR", str(tmp_path_factory.mktemp("mssg_cache")))

SHARED = Path(os.environ.get("MSSG_SHARED", ROOT.parent / "shared"))
GLAS = SHARED / "data" / "glas"
REFERENCE = SHARED / "data" / "reference" / "mssg_authors_spm"


@pytest.fixture
def glas_root() -> Path:
    if not (GLAS / "train" / "images").is_dir():
        pytest.skip(f"real GlaS data not found at {GLAS} (set MSSG_SHARED to the shared/ folder)")
    return GLAS


@pytest.fixture
def reference_root() -> Path:
    if not REFERENCE.is_dir() or not (GLAS / "train" / "masks").is_dir():
        pytest.skip(f"authors' reference SPM output not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
