"""Motion around people that their own boxes do not explain: flailing limbs, kicks, a body
thrown, people tangled so that the detector loses them.

A walking person's motion lies inside the boxes they had now and a moment ago; what changes
in the ring around a group of people, outside every person's and vehicle's box (now and
``MOTION_LAG_S`` ago), is motion no box accounts for. It is measured on a small greyscale copy
of the frame, always against the frame about ``MOTION_LAG_S`` earlier (so the measure does not
depend on the frame rate), and normalised by the group's own box area (so it does not depend
on the camera distance). Cheap enough for every frame: one resize and one difference.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np

#: rows of the greyscale copy motion is measured on
ANALYSIS_HEIGHT = 120
#: the frame a motion is measured against is about this much older
MOTION_LAG_S = 0.2
#: grey-level change that counts as motion (well above sensor noise and compression)
CHANGE_LEVEL = 25
#: the ring around a person: this many body heights to each side, half of it above and a
#: fifth of it below (the feet)
SURROUND_HEIGHTS = 0.5
#: a box this close to the left or right image edge (share of the width) is cut by it
EDGE_SHARE = 0.01
#: more of the frame than this changed: a light, the camera, not people
FRAME_CHANGE_SHARE = 0.3
_KEEP_S = 1.0


def _slices(box: np.ndarray, scale: float, shape: tuple[int, ...], surround: float) -> tuple[slice, slice]:
    x1, y1, x2, y2 = (float(v) * scale for v in box)
    reach = surround * (y2 - y1)
    top, bottom = max(0, int(y1 - reach / 2)), min(shape[0], int(np.ceil(y2 + reach / 5)) + 1)
    left, right = max(0, int(x1 - reach)), min(shape[1], int(np.ceil(x2 + reach)) + 1)
    return slice(top, bottom), slice(left, right)


class UnexplainedMotion:
    """One camera's recent small frames and the boxes seen on them. Call :meth:`update` once
    per frame, then :meth:`share` for any group of people on that frame."""

    def __init__(self) -> None:
        self._frames: deque[tuple[float, np.ndarray, np.ndarray]] = deque()
        self._free: np.ndarray | None = None
        self._scale = 1.0

    def update(self, image_bgr: np.ndarray, stamp_s: float, boxes: np.ndarray) -> None:
        """``boxes``: every person's and vehicle's box on this frame (image pixels)."""
        scale = ANALYSIS_HEIGHT / image_bgr.shape[0]
        width = max(1, round(image_bgr.shape[1] * scale))
        small = cv2.resize(image_bgr, (width, ANALYSIS_HEIGHT), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        while self._frames and self._frames[0][0] < stamp_s - _KEEP_S:
            self._frames.popleft()
        earlier = [frame for frame in self._frames if frame[0] <= stamp_s - MOTION_LAG_S * 0.75]
        self._free = None
        if earlier and earlier[-1][1].shape == grey.shape:
            _, before, boxes_before = earlier[-1]
            free = cv2.absdiff(grey, before) > CHANGE_LEVEL
            for box in np.concatenate((boxes, boxes_before)):
                free[_slices(box, scale, free.shape, 0.0)] = False
            # a frame changing nearly everywhere (light switched, the camera moved or refocused)
            # says nothing about people
            self._free = free if np.count_nonzero(free) <= FRAME_CHANGE_SHARE * free.size else None
        self._frames.append((stamp_s, grey, boxes))
        self._scale = scale

    def at_side_edge(self, box: np.ndarray) -> bool:
        """The box touches the left or right image edge: a person cut by the frame moves outside
        their visible box."""
        if self._free is None:
            return False
        width = self._free.shape[1] / self._scale
        return bool(box[0] <= EDGE_SHARE * width or box[2] >= (1 - EDGE_SHARE) * width)

    def share(self, boxes: Sequence[np.ndarray]) -> float:
        """Changed pixels in the ring around ``boxes`` (one group of people) that no box of now or
        a moment ago explains, per pixel of the group's own box area; 0 on a first frame."""
        if self._free is None or not len(boxes):
            return 0.0
        ring = np.zeros_like(self._free)
        area = 0.0
        for box in boxes:
            ring[_slices(box, self._scale, ring.shape, SURROUND_HEIGHTS)] = True
            area += float((box[2] - box[0]) * (box[3] - box[1])) * self._scale ** 2
        return float(np.count_nonzero(self._free & ring)) / max(area, 1.0)
