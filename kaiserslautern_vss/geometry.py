"""Polygons in image pixels, checked once for every kind of zone (rule zones, privacy zones)."""

from __future__ import annotations

import re

import numpy as np
import shapely

_VALIDITY_REASON = re.compile(r'^(?P<kind>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)\]$')
#: shapely's validity reasons for an outline that crosses itself (edges) or touches itself (a vertex)
_SHAPE_PROBLEMS = {'Self-intersection': 'self-intersects', 'Ring Self-intersection': 'touches itself'}


class PolygonError(ValueError):
    """Points that do not make a usable polygon; the message says why."""


def as_polygon(points: object) -> np.ndarray:
    """``points`` as a ``(K, 2)`` float64 array of ``x, y``; raises PolygonError unless they are
    at least 3 finite points, not all on one line, whose outline neither crosses nor touches itself."""
    try:
        polygon = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise PolygonError(f'polygon is not numeric: {error}') from None
    if polygon.ndim != 2 or polygon.shape[1] != 2:
        raise PolygonError(f'polygon must have shape (K, 2), got {polygon.shape}')
    if len(polygon) < 3:
        raise PolygonError(f'polygon needs at least 3 points, got {len(polygon)}')
    if not np.isfinite(polygon).all():
        raise PolygonError('polygon has non-finite coordinates')
    if np.linalg.matrix_rank(polygon - polygon[0]) < 2:
        raise PolygonError('polygon is degenerate (all points on one line)')
    problem = _shape_problem(polygon)
    if problem:
        raise PolygonError(problem)
    return polygon


def _shape_problem(polygon: np.ndarray) -> str:
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
