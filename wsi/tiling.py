"""The tile grid of a slide at the segmentation resolution and the blending of overlapping tiles.

Along each axis tiles of ``T`` px start every ``S = T - O`` px (``O`` the overlap); the last one is moved
back so that it ends at the slide's edge (as mmseg's sliding window does), so no tile reaches past the
slide and a slide smaller than a tile is one tile of its own size -- the very input whole-image
inference sees. Where tiles overlap, their gland probabilities are averaged with weights that ramp
linearly over ``O`` px towards each inner tile edge, so the stitched probability is continuous across
a seam and a gland cut by it comes out whole. Output blocks ``[p_j, p_{j+1})`` partition the slide and
each needs only the few tiles over it, so a slide is assembled block by block in bounded memory.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Axis:
    """Tile positions and blending weights along one axis of ``length`` px."""

    length: int
    tile: int
    overlap: int
    positions: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        stride = self.tile - self.overlap
        last = max(0, self.length - self.tile)
        count = -(-last // stride) + 1
        object.__setattr__(self, "positions", tuple(min(i * stride, last) for i in range(count)))

    @property
    def size(self) -> int:
        """The tile's extent along this axis (the slide's own when it is smaller than a tile)."""
        return min(self.tile, self.length)

    def weight(self, index: int) -> np.ndarray:
        """``(size,)`` weights of tile ``index``: 1 inside, ramping down over ``overlap`` px towards an edge
        that another tile continues (never towards the slide's edge)."""
        u = np.arange(self.size, dtype=np.float32) + 0.5
        ramp = float(max(self.overlap, 1))
        weight = np.ones(self.size, np.float32)
        if index > 0:
            weight = np.minimum(weight, u / ramp)
        if index < len(self.positions) - 1:
            weight = np.minimum(weight, (self.size - u) / ramp)
        return weight

    def block(self, index: int) -> tuple[int, int]:
        end = self.positions[index + 1] if index + 1 < len(self.positions) else self.length
        return self.positions[index], end

    def covering(self, start: int, end: int) -> list[int]:
        """Indices of the tiles that overlap ``[start, end)``."""
        return [i for i, p in enumerate(self.positions) if p < end and p + self.size > start]


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``tile`` px overlapping by at least ``overlap`` px over a ``width`` x ``height`` image."""

    width: int
    height: int
    tile: int
    overlap: int

    def __post_init__(self) -> None:
        if self.tile < 16:
            raise ValueError(f"tile must be at least 16 px, got {self.tile}")
        if not 0 <= 2 * self.overlap <= self.tile:
            raise ValueError(f"overlap must be between 0 and half the tile ({self.tile // 2}), got {self.overlap}")

    # computed once per grid (cached_property writes the instance dict, which a frozen dataclass allows)
    @cached_property
    def x(self) -> Axis:
        return Axis(self.width, self.tile, self.overlap)

    @cached_property
    def y(self) -> Axis:
        return Axis(self.height, self.tile, self.overlap)

    @property
    def rows(self) -> int:
        return len(self.y.positions)

    @property
    def cols(self) -> int:
        return len(self.x.positions)

    @property
    def tile_shape(self) -> tuple[int, int]:
        """``(height, width)`` of every tile."""
        return self.y.size, self.x.size

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """``(x, y)`` of tile ``(row, col)``'s top-left pixel."""
        return self.x.positions[col], self.y.positions[row]

    def tiles(self) -> Iterator[tuple[int, int]]:
        for row in range(self.rows):
            for col in range(self.cols):
                yield row, col

    def block(self, row: int, col: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of output block ``(row, col)``; the blocks partition the image."""
        x0, x1 = self.x.block(col)
        y0, y1 = self.y.block(row)
        return x0, y0, x1, y1

    def blend_block(self, row: int, col: int, tile_prob: Callable[[int, int], np.ndarray | None]) -> np.ndarray:
        """The blended gland probability ``(y1 - y0, x1 - x0)`` float32 of output block ``(row, col)``.

        ``tile_prob(r, c)`` is tile ``(r, c)``'s ``tile_shape`` probability, or None for a tile that was not
        segmented (no tissue): probability 0 there, with its weight.
        """
        x_axis, y_axis = self.x, self.y
        x0, y0, x1, y1 = self.block(row, col)
        total = np.zeros((y1 - y0, x1 - x0), np.float32)
        weights = np.zeros_like(total)
        for r in y_axis.covering(y0, y1):
            for c in x_axis.covering(x0, x1):
                tx, ty = self.origin(r, c)
                bx0, by0 = max(x0, tx), max(y0, ty)
                bx1, by1 = min(x1, tx + x_axis.size), min(y1, ty + y_axis.size)
                w = (y_axis.weight(r)[by0 - ty:by1 - ty, None] * x_axis.weight(c)[None, bx0 - tx:bx1 - tx])
                weights[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] += w
                prob = tile_prob(r, c)
                if prob is not None:
                    total[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] += prob[by0 - ty:by1 - ty, bx0 - tx:bx1 - tx] * w
        return total / weights
