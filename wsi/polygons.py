"""Gland polygons from mask blocks, merged across block seams, as QuPath-readable GeoJSON.

OpenCV traces each component through the centres of its boundary pixels; a 0.5 px mitred buffer moves
the outline onto the pixel edges, so a polygon's area is its pixel count and the polygons of two
blocks that share a seam touch along it, and one union makes a gland cut by the seam one polygon.
"""
from __future__ import annotations

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry


def _ring(contour: np.ndarray) -> np.ndarray:
    return contour.reshape(-1, 2).astype(np.float64)


def _component(points: np.ndarray) -> BaseGeometry:
    """The pixel-centre outline of one traced contour (a point or a line for 1-2 px wide pieces)."""
    if len(points) == 1:
        return Point(points[0])
    if len(points) == 2:
        return LineString(points)
    return Polygon(points)


def mask_polygons(mask: np.ndarray, x0: float = 0.0, y0: float = 0.0) -> list[Polygon]:
    """Pixel-edge polygons (holes kept) of the components of a bool ``mask`` whose top-left pixel is
    at ``(x0, y0)``; coordinates are pixel-edge coordinates (pixel ``(0, 0)`` spans ``[0, 1]^2``)."""
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    hierarchy = hierarchy[0]
    shapes = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:
            continue  # a hole; taken with its outer contour
        outer = _component(_ring(contour))
        holes = []
        child = hierarchy[i][2]
        while child != -1:
            points = _ring(contours[child])
            if len(points) >= 3:
                holes.append(points)
            child = hierarchy[child][0]
        if isinstance(outer, Polygon) and holes:
            outer = shapely.make_valid(Polygon(outer.exterior.coords, holes))
        elif isinstance(outer, Polygon):
            outer = shapely.make_valid(outer)
        shapes.append(outer.buffer(0.5, join_style="mitre", cap_style="square"))
    merged = shapely.unary_union(shapes) if shapes else Polygon()
    # pixel centres are at +0.5 in pixel-edge coordinates
    merged = shapely.affinity.translate(merged, x0 + 0.5, y0 + 0.5)
    return polygons_of(merged)


def polygons_of(geometry: BaseGeometry) -> list[Polygon]:
    """The non-empty polygons of a geometry (a union may return a collection)."""
    if geometry.is_empty:
        return []
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [g for part in getattr(geometry, "geoms", []) for g in polygons_of(part)]


def merge_polygons(polygons: list[Polygon]) -> list[Polygon]:
    """One polygon per gland: the union of block polygons, valid, sorted top to bottom then left to right."""
    if not polygons:
        return []
    merged = polygons_of(shapely.make_valid(shapely.unary_union(polygons)))
    return sorted(merged, key=lambda p: (p.bounds[1], p.bounds[0]))


def geojson(polygons: list[Polygon], scale: float, classification: str = "Gland",
            object_type: str = "annotation") -> dict:
    """A FeatureCollection of ``polygons`` scaled by ``scale`` (to level-0 px), with the properties
    QuPath's *File > Import objects* reads (``objectType``, ``classification``)."""
    features = []
    for polygon in polygons:
        scaled = shapely.affinity.scale(polygon, scale, scale, origin=(0, 0))
        features.append({
            "type": "Feature",
            "geometry": shapely.geometry.mapping(scaled),
            "properties": {"objectType": object_type,
                           "classification": {"name": classification, "color": [0, 200, 0]}},
        })
    return {"type": "FeatureCollection", "features": features}
