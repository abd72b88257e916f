"""How well a masked frame hides people, measured against its raw frame (for tests, benchmarks, reports).

Independent of how the masks were chosen: it compares pixels, and takes the heads from the
person boxes with its own, tight geometry rather than the generous masking regions.
"""

from __future__ import annotations

import numpy as np

from .regions import as_boxes, check_image, clip_boxes, head_regions

# Where the head of an upright person is for certain: the top seventh of the box, the middle
# half of its width (a head is about a seventh of body height and a third of shoulder width).
HEAD_CORE_HEIGHT = 1 / 7
HEAD_CORE_WIDTH = 0.5
# Pixelation leaves a pixel unchanged only where it happens to equal its block's mean; a head
# with fewer changed pixels than this was not masked.
MASKED_CHANGED_SHARE = 0.6


def head_cores(person_boxes: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The tight head box of each upright person box, clipped to the image."""
    boxes = as_boxes(person_boxes)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    centres = (boxes[:, 0] + boxes[:, 2]) / 2
    cores = np.stack([centres - widths * HEAD_CORE_WIDTH / 2, boxes[:, 1],
                      centres + widths * HEAD_CORE_WIDTH / 2, boxes[:, 1] + heights * HEAD_CORE_HEIGHT], axis=1)
    return clip_boxes(cores, image_shape)


def changed_shares(raw: np.ndarray, masked: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per box, the share of its pixels that differ between ``raw`` and ``masked`` (NaN if empty)."""
    changed = _changed(raw, masked)
    shares = []
    for x1, y1, x2, y2 in np.round(clip_boxes(boxes, raw.shape)).astype(int):
        region = changed[y1:y2, x1:x2]
        shares.append(region.mean() if region.size else np.nan)
    return np.array(shares, np.float64)


def heads_masked(raw: np.ndarray, masked: np.ndarray, person_boxes: np.ndarray) -> tuple[int, int]:
    """``(masked heads, heads)`` for the persons in ``person_boxes``."""
    shares = changed_shares(raw, masked, head_cores(person_boxes, raw.shape))
    shares = shares[~np.isnan(shares)]
    return int((shares >= MASKED_CHANGED_SHARE).sum()), len(shares)


def untouched_share(raw: np.ndarray, masked: np.ndarray, person_boxes: np.ndarray) -> float:
    """Share of the pixels away from every person (box and head region) left exactly as they were."""
    away = np.ones(raw.shape[:2], bool)
    boxes = as_boxes(person_boxes)
    for x1, y1, x2, y2 in np.round(np.vstack([clip_boxes(boxes, raw.shape),
                                              head_regions(boxes, raw.shape)])).astype(int):
        away[y1:y2 + 1, x1:x2 + 1] = False
    return float((~_changed(raw, masked))[away].mean()) if away.any() else 1.0


def _changed(raw: np.ndarray, masked: np.ndarray) -> np.ndarray:
    check_image(raw)
    check_image(masked)
    if raw.shape != masked.shape:
        raise ValueError(f'raw and masked images differ in shape: {raw.shape} vs {masked.shape}')
    return (raw != masked).any(axis=2)
