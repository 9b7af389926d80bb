"""The synthetic H&E generator used by the README's main job and the tests."""
from __future__ import annotations

import cv2
import numpy as np

from common.synthetic import make_synthetic_image
from tests.tooling import load_tool

make_synthetic_glas = load_tool("make_synthetic_glas")


def test_deterministic_and_consistent(tmp_path):
    a = make_synthetic_image(np.random.default_rng(3), 120, 160)
    b = make_synthetic_image(np.random.default_rng(3), 120, 160)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    image, gland, ring = a
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    assert ring.any() and not (ring & ~gland).any()  # rings are part of the glands
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(float)
    lumen = gland & ~ring
    # H&E-like ordering: nuclei rings darkest, lumen palest, stroma in between
    assert gray[ring].mean() < gray[~gland].mean() < gray[lumen].mean()


def test_cli_writes_images_and_masks(tmp_path, capsys):
    assert make_synthetic_glas.main([str(tmp_path), "--num", "2", "--height", "64", "--width", "80"]) == 0
    for sub in ("images", "masks", "rings"):
        assert sorted(p.name for p in (tmp_path / sub).iterdir()) == ["synthetic_1.png", "synthetic_2.png"]
    mask = cv2.imread(str(tmp_path / "masks" / "synthetic_1.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) == {0, 255}
