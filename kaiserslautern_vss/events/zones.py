"""Image-space zones (polygons in pixels) and where detected people stand in them."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import shapely

_VALIDITY_REASON = re.compile(r'^(?P<kind>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)\]$')
#: shapely's validity reasons for an outline that crosses itself (edges) or touches itself (a vertex)
_SHAPE_PROBLEMS = {'Self-intersection': 'self-intersects', 'Ring Self-intersection': 'touches itself'}


class ZoneConfigError(ValueError):
    """A zone definition is unusable (too few points, non-finite, on one line, self-intersecting)."""


@dataclass(frozen=True)
class Zone:
    """A named polygon in one camera's image, vertices ``(K, 2)`` as ``x, y`` pixels."""

    name: str
    polygon: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ZoneConfigError(f'zone name must be a non-empty string, got {self.name!r}')
        try:
            polygon = np.asarray(self.polygon, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ZoneConfigError(f'zone {self.name!r}: polygon is not numeric: {error}') from None
        if polygon.ndim != 2 or polygon.shape[1] != 2:
            raise ZoneConfigError(
                f'zone {self.name!r}: polygon must have shape (K, 2), got {polygon.shape}')
        if len(polygon) < 3:
            raise ZoneConfigError(
                f'zone {self.name!r}: polygon needs at least 3 points, got {len(polygon)}')
        if not np.isfinite(polygon).all():
            raise ZoneConfigError(f'zone {self.name!r}: polygon has non-finite coordinates')
        if np.linalg.matrix_rank(polygon - polygon[0]) < 2:
            raise ZoneConfigError(f'zone {self.name!r}: polygon is degenerate (all points on one line)')
        problem = polygon_shape_problem(polygon)
        if problem:
            raise ZoneConfigError(f'zone {self.name!r}: {problem}')
        polygon.setflags(write=False)
        object.__setattr__(self, 'polygon', polygon)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask: which of the ``(N, 2)`` points lie inside (even-odd rule).

        Vectorised ray casting over all point/edge pairs at once; points exactly on an
        edge may fall either way, which does not matter at pixel resolution.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        x, y = points[:, 0:1], points[:, 1:2]                     # (N, 1)
        x1, y1 = self.polygon[:, 0], self.polygon[:, 1]            # (K,)
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        straddles = (y1 > y) != (y2 > y)                          # (N, K)
        with np.errstate(divide='ignore', invalid='ignore'):
            crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        crossings = straddles & (x < crossing_x)
        return np.count_nonzero(crossings, axis=1) % 2 == 1


def polygon_shape_problem(polygon: np.ndarray) -> str:
    """Why the ``(K, 2)`` polygon's outline is not simple ('' when it is): edges that cross or
    touch make inside/outside depend on the fill rule, so a zone would not cover what was drawn."""
    reason = shapely.is_valid_reason(shapely.Polygon(polygon))
    if reason == 'Valid Geometry':
        return ''
    match = _VALIDITY_REASON.match(reason)
    if match is None:
        return f'polygon is invalid: {reason}'
    where = f'({float(match["x"]):g}, {float(match["y"]):g})'
    verb = _SHAPE_PROBLEMS.get(match['kind'], f'is invalid: {match["kind"].lower()}')
    return f'polygon {verb} at {where} (list the points in order around the area)'


def foot_points(boxes: np.ndarray) -> np.ndarray:
    """Bottom-centre of ``x1, y1, x2, y2`` boxes, ``(N, 2)``: where a person stands."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack(((boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3]), axis=1)
