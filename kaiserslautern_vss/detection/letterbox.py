"""Letterbox resizing: fit an image into a model's fixed input without distorting it."""

from __future__ import annotations

import cv2
import numpy as np

from kaiserslautern_vss.camera.imaging import ImageFormatError, as_bgr


class LetterboxError(ImageFormatError):
    """The image or the target size cannot be letterboxed."""


def letterbox(image_bgr: np.ndarray, size: tuple[int, int], pad_value: int = 114,
              out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio into the top-left of a ``size`` = (width, height) canvas.

    Returns the 1x3xHxW float32 BGR 0-255 tensor (the rest filled with ``pad_value``) and the
    scale factor: model-input pixels = source pixels * scale. Grey and BGRA images are converted
    to BGR first. ``out``, when given, is a (3, H, W) or (1, 3, H, W) float32 array written in
    place (e.g. one slot of a batch tensor) and returned as the tensor.
    """
    width, height = size
    if width <= 0 or height <= 0:
        raise LetterboxError(f'letterbox size must be positive (width, height), got {size}')
    if not 0 <= pad_value <= 255:
        raise LetterboxError(f'pad_value must be in 0..255, got {pad_value}')
    bgr = as_bgr(image_bgr)
    source_height, source_width = bgr.shape[:2]
    if source_height == 0 or source_width == 0:
        raise LetterboxError(f'cannot letterbox an empty image of shape {image_bgr.shape}')
    scale = min(width / source_width, height / source_height)
    resized_width = min(width, max(1, round(source_width * scale)))
    resized_height = min(height, max(1, round(source_height * scale)))

    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    # Resize straight into the canvas' top-left view: no intermediate image, no copy.
    cv2.resize(bgr, (resized_width, resized_height), dst=canvas[:resized_height, :resized_width],
               interpolation=cv2.INTER_LINEAR)

    if out is None:
        out = np.empty((1, 3, height, width), dtype=np.float32)
    elif out.shape not in ((3, height, width), (1, 3, height, width)) or out.dtype != np.float32:
        raise LetterboxError(f'out must be float32 of shape (3, {height}, {width}) or '
                             f'(1, 3, {height}, {width}), got {out.dtype} {out.shape}')
    np.copyto(out.reshape(3, height, width), canvas.transpose(2, 0, 1))
    return out, scale
