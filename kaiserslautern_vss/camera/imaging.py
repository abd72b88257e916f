"""Image helpers shared by the sources and the detectors: BGR conversion, bounded output size,
cheap JPEG decoding."""

from __future__ import annotations

import cv2
import numpy as np

# cv2.imdecode can scale JPEGs by 1/2, 1/4, 1/8 inside the decoder (IDCT scaling): far cheaper
# than decoding at full size and resizing afterwards.
_REDUCED_JPEG_FLAGS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                       (2, cv2.IMREAD_REDUCED_COLOR_2))


class ImageFormatError(ValueError):
    """An image that is not 8-bit grey, BGR or BGRA."""


def fit_scale(width: int, height: int, max_width: int, max_height: int) -> float:
    """Scale factor (<= 1) that fits ``width x height`` into the bound; 0 means no bound."""
    scale = 1.0
    if max_width and width > max_width:
        scale = max_width / width
    if max_height and height > max_height:
        scale = min(scale, max_height / height)
    return scale


def fit_to_max_size(image: np.ndarray, max_width: int, max_height: int) -> np.ndarray:
    """``image`` scaled down (INTER_AREA, aspect kept) to fit the bound, or unchanged."""
    height, width = image.shape[:2]
    scale = fit_scale(width, height, max_width, max_height)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """The image as 3-channel uint8 BGR: grey (HxW, HxWx1) and BGRA are converted, the rest rejected."""
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f'expected a numpy image, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ImageFormatError(f'expected a uint8 image, got dtype {image.dtype}')
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ImageFormatError(f'expected a grey, BGR or BGRA image, got shape {image.shape}')


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF header without decoding, None if not found."""
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[pos + 7:pos + 9], 'big'), int.from_bytes(data[pos + 5:pos + 7], 'big')
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
    return None


def decode_jpeg(data: bytes, max_width: int = 0, max_height: int = 0) -> np.ndarray | None:
    """BGR image fitting the bound, decoded at the smallest sufficient JPEG scale; None if undecodable."""
    flag = cv2.IMREAD_COLOR
    size = jpeg_size(data) if (max_width or max_height) else None
    if size is not None:
        scale = fit_scale(size[0], size[1], max_width, max_height)
        flag = next((reduced for factor, reduced in _REDUCED_JPEG_FLAGS if scale <= 1.0 / factor), flag)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None:
        return None
    return fit_to_max_size(image, max_width, max_height)
