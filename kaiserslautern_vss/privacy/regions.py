"""Box geometry for masking (where heads are, growing and clipping boxes) and array checks."""

from __future__ import annotations

import numpy as np

from .errors import PrivacyInputError

# A standing or walking person is 2.5-4 times as tall as wide; the head sits in the top seventh.
# Masking the top 30 % leaves a wide margin for bent heads, hats and loose boxes.
STANDING_ASPECT = 2.0
STANDING_HEAD_FRACTION = 0.30
# Boxes cut off by the bottom edge of the image belong to people close to the camera whose
# visible part is mostly upper body: the head takes a larger share of the box.
CROPPED_HEAD_FRACTION = 0.45
# Heads stick out of loose person boxes at the top and sides (hair, a head turned sideways).
HEAD_MARGIN_ABOVE = 0.05
HEAD_MARGIN_SIDES = 0.10


def as_boxes(boxes: np.ndarray) -> np.ndarray:
    """``boxes`` as a float32 (N, 4) array of ``x1, y1, x2, y2``, or :class:`PrivacyInputError`."""
    array = np.asarray(boxes, dtype=np.float32)
    if array.size == 0:
        return np.zeros((0, 4), np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise PrivacyInputError(f'boxes must have shape (N, 4) as x1, y1, x2, y2, got {array.shape}')
    if not np.isfinite(array).all():
        raise PrivacyInputError('boxes must be finite, got NaN or infinity')
    return array


def image_size(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(height, width)`` from a numpy image shape, or :class:`PrivacyInputError`."""
    if len(image_shape) < 2 or image_shape[0] <= 0 or image_shape[1] <= 0:
        raise PrivacyInputError(f'image_shape must start with a positive height and width, got {image_shape}')
    return int(image_shape[0]), int(image_shape[1])


def clip_boxes(boxes: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """``boxes`` limited to the image; boxes entirely outside collapse to zero area."""
    height, width = image_size(image_shape)
    clipped = as_boxes(boxes).copy()
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, width)
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, height)
    return clipped


def expand_boxes(boxes: np.ndarray, factor: float | np.ndarray,
                 image_shape: tuple[int, ...] | None) -> np.ndarray:
    """``boxes`` scaled about their centres by ``factor`` (one value or one per box).

    Clipped to the image unless ``image_shape`` is None (for boxes kept across frames
    before the next image is known).
    """
    array = as_boxes(boxes)
    factors = np.broadcast_to(np.asarray(factor, dtype=np.float32), (len(array),))
    if (factors <= 0).any():
        raise PrivacyInputError(f'expansion factor must be positive, got {factor}')
    centres = (array[:, :2] + array[:, 2:]) / 2
    half_sizes = (array[:, 2:] - array[:, :2]) / 2 * factors[:, None]
    expanded = np.hstack([centres - half_sizes, centres + half_sizes]).astype(np.float32)
    return expanded if image_shape is None else clip_boxes(expanded, image_shape)


def head_regions(person_boxes: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The part of each person box that may show a head, generously, clipped to the image.

    Tall boxes (standing, walking) get their top 30 %; squatter boxes (sitting, seen from
    above, partly occluded, cut off by the image border) get a share growing with how
    squat they are, up to the whole box. Every region is widened to beyond the box sides
    and raised above its top.
    """
    height, width = image_size(image_shape)
    boxes = as_boxes(person_boxes)
    box_widths = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    box_heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    aspects = box_heights / box_widths
    head_fractions = STANDING_HEAD_FRACTION * STANDING_ASPECT / np.maximum(aspects, 1e-3)
    cut_off_below = boxes[:, 3] >= height - 1
    head_fractions = np.where(cut_off_below, np.maximum(head_fractions, CROPPED_HEAD_FRACTION), head_fractions)
    head_fractions = np.clip(head_fractions, STANDING_HEAD_FRACTION, 1.0)
    regions = np.stack([
        boxes[:, 0] - HEAD_MARGIN_SIDES * box_widths,
        boxes[:, 1] - HEAD_MARGIN_ABOVE * box_heights,
        boxes[:, 2] + HEAD_MARGIN_SIDES * box_widths,
        boxes[:, 1] + head_fractions * box_heights,
    ], axis=1)
    return clip_boxes(regions, (height, width))


def check_image(image_bgr: np.ndarray) -> None:
    """Raises :class:`PrivacyInputError` unless ``image_bgr`` is a non-empty HxWx3 uint8 array."""
    if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 \
            or image_bgr.shape[2] != 3 or image_bgr.shape[0] == 0 or image_bgr.shape[1] == 0:
        raise PrivacyInputError('image must be a non-empty HxWx3 uint8 BGR array, got '
                                f'{getattr(image_bgr, "dtype", type(image_bgr).__name__)} '
                                f'{getattr(image_bgr, "shape", "")}')
