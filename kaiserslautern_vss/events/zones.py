"""Image-space zones (polygons in pixels) and where detected people stand in them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kaiserslautern_vss.geometry import PolygonError, as_polygon


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
            polygon = as_polygon(self.polygon)
        except PolygonError as error:
            raise ZoneConfigError(f'zone {self.name!r}: {error}') from None
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


def foot_points(boxes: np.ndarray) -> np.ndarray:
    """Bottom-centre of ``x1, y1, x2, y2`` boxes, ``(N, 2)``: where a person stands."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack(((boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3]), axis=1)
