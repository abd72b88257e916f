"""Irreversible masking of image regions: pixelation, blur or solid fill, in place."""

from __future__ import annotations

from enum import Enum

import cv2
import numpy as np

from .errors import PrivacyInputError
from .regions import check_image, clip_boxes

# Blocks across the longer side of a masked region. A head region keeps at most 6x6 colour
# samples, a face inside it fewer: far below the ~16x16 at which people recognise faces.
DEFAULT_STRENGTH = 6
# A frame that could not be masked properly keeps only its rough layout: 32 blocks across
# (24 px blocks on a 768 px wide frame), so even a face filling a sixth of it gets 5 blocks.
FULL_FRAME_BLOCKS = 32
FILL_COLOUR_BGR = (0, 0, 0)


class MaskMethod(str, Enum):
    PIXELATE = 'pixelate'
    BLUR = 'blur'
    FILL = 'fill'


def apply_masks(image_bgr: np.ndarray, boxes: np.ndarray, method: MaskMethod,
                strength: int = DEFAULT_STRENGTH) -> None:
    """Masks every box of ``image_bgr`` in place; pixels outside the boxes stay untouched.

    ``strength`` is how many blocks (pixelate) or samples (blur) remain across the longer
    side of each box, whatever its size, so big and small faces lose the same detail.
    Boxes are rounded outwards to whole pixels and clipped to the image.
    """
    check_image(image_bgr)
    method = MaskMethod(method)
    if strength < 1:
        raise PrivacyInputError(f'mask strength must be at least 1 block, got {strength}')
    clipped = clip_boxes(boxes, image_bgr.shape)
    corners = np.hstack([np.floor(clipped[:, :2]), np.ceil(clipped[:, 2:])]).astype(np.int32)
    for x1, y1, x2, y2 in corners:
        if x2 > x1 and y2 > y1:
            region = image_bgr[y1:y2, x1:x2]
            region[:] = _masked(region, method, strength)


def mask_everything(image_bgr: np.ndarray, method: MaskMethod) -> np.ndarray:
    """A copy of the whole frame masked so coarsely that nobody in it can be identified."""
    check_image(image_bgr)
    return _masked(image_bgr, MaskMethod(method), FULL_FRAME_BLOCKS)


def _masked(region: np.ndarray, method: MaskMethod, blocks: int) -> np.ndarray:
    """A masked copy of ``region`` with ``blocks`` blocks across its longer side."""
    if method is MaskMethod.FILL:
        return np.full_like(region, FILL_COLOUR_BGR)
    height, width = region.shape[:2]
    block_side = max(height, width) / blocks
    small_size = (max(1, round(width / block_side)), max(1, round(height / block_side)))
    # Averaging down to a few samples removes detail for good; a Gaussian blur alone can
    # be partly undone by deconvolution, so BLUR also goes through the small image.
    small = cv2.resize(region, small_size, interpolation=cv2.INTER_AREA)
    if method is MaskMethod.PIXELATE:
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)

