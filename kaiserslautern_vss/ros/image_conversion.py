"""sensor_msgs Image/CompressedImage <-> numpy, validated.

Uses cv_bridge where it is importable (a ROS distro), numpy otherwise. Both paths share
the same validation, so a malformed message gives the same clear error on every machine.
Hot paths subscribe to image_raw serialized (``raw=True``) and use :func:`image_from_cdr`:
rosbags deserializes a 1.3 MB frame into a numpy view about ten times faster than rclpy
builds its Python message.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from kaiserslautern_vss.ros.typestore import vss_typestore

try:  # site hardware: the distro's cv_bridge
    from cv_bridge import CvBridge
    _BRIDGE: CvBridge | None = CvBridge()
except ImportError:  # PyPI wheels ship no cv_bridge
    _BRIDGE = None

# encoding -> (channels, numpy dtype, cv2 conversion to BGR or None)
_ENCODINGS: dict[str, tuple[int, type, int | None]] = {
    'bgr8': (3, np.uint8, None),
    'rgb8': (3, np.uint8, cv2.COLOR_RGB2BGR),
    'bgra8': (4, np.uint8, cv2.COLOR_BGRA2BGR),
    'rgba8': (4, np.uint8, cv2.COLOR_RGBA2BGR),
    'mono8': (1, np.uint8, cv2.COLOR_GRAY2BGR),
    '8UC1': (1, np.uint8, cv2.COLOR_GRAY2BGR),
    '8UC3': (3, np.uint8, None),
}


class ImageConversionError(ValueError):
    """A message that cannot be an image of its declared shape and encoding."""


def validate_image(msg: Image) -> tuple[int, type]:
    """Check encoding and height/width/step/data consistency; returns (channels, dtype)."""
    if msg.encoding not in _ENCODINGS:
        raise ImageConversionError(
            f'unsupported encoding {msg.encoding!r}; supported: {", ".join(sorted(_ENCODINGS))}')
    channels, dtype, _ = _ENCODINGS[msg.encoding]
    row_bytes = msg.width * channels * np.dtype(dtype).itemsize
    if msg.height == 0 or msg.width == 0:
        raise ImageConversionError(f'empty image: {msg.width}x{msg.height}')
    if msg.step < row_bytes:
        raise ImageConversionError(
            f'step {msg.step} is smaller than width*channels = {row_bytes} for {msg.encoding}')
    if len(msg.data) != msg.step * msg.height:
        raise ImageConversionError(
            f'data length {len(msg.data)} != step*height = {msg.step}*{msg.height} = '
            f'{msg.step * msg.height}')
    return channels, dtype


@dataclass(frozen=True)
class RawImage:
    """A deserialized image_raw frame: its header and BGR pixels."""
    header: Header
    image: np.ndarray


def image_from_cdr(data: bytes) -> RawImage:
    """A serialized sensor_msgs/Image (from a ``raw=True`` subscription) as header + BGR."""
    try:
        msg = vss_typestore().deserialize_cdr(data, 'sensor_msgs/msg/Image')
    except Exception as error:  # noqa: BLE001 - rosbags raises assorted errors on truncated CDR
        raise ImageConversionError(f'cannot deserialize {len(data)} bytes as sensor_msgs/Image: {error!r}') \
            from error
    header = Header(stamp=Time(sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec),
                    frame_id=msg.header.frame_id)
    return RawImage(header, _numpy_to_bgr(msg))


def image_to_bgr(msg: Image) -> np.ndarray:
    """An HxWx3 uint8 BGR array from any supported encoding (a view where possible)."""
    if _BRIDGE is not None:
        validate_image(msg)
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding='bgr8')
    return _numpy_to_bgr(msg)


def _numpy_to_bgr(msg) -> np.ndarray:
    channels, dtype = validate_image(msg)
    row_bytes = msg.width * channels
    rows = np.frombuffer(msg.data, dtype=dtype).reshape(msg.height, msg.step)
    array = rows[:, :row_bytes].reshape(msg.height, msg.width, channels)
    conversion = _ENCODINGS[msg.encoding][2]
    return array if conversion is None else cv2.cvtColor(array, conversion)


def bgr_to_image(image: np.ndarray, header: Header) -> Image:
    """A bgr8 Image message (mono input is published as mono8)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ImageConversionError(f'expected uint8 HxW or HxWx3, got {image.dtype} {image.shape}')
    encoding = 'mono8' if image.ndim == 2 else 'bgr8'
    if image.ndim == 3 and image.shape[2] != 3:
        raise ImageConversionError(f'expected 3 channels, got {image.shape[2]}')
    if _BRIDGE is not None:
        msg = _BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(image), encoding=encoding)
        msg.header = header
        return msg
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding=encoding,
                is_bigendian=0)
    msg.step = image.shape[1] * (1 if image.ndim == 2 else 3)
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """Decode a JPEG/PNG CompressedImage to BGR; corrupt data raises ImageConversionError."""
    data = np.frombuffer(msg.data, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ImageConversionError(
            f'cannot decode {len(msg.data)} bytes of CompressedImage (format {msg.format!r})')
    return image


def bgr_to_compressed(image: np.ndarray, header: Header, quality: int = 85) -> CompressedImage:
    """JPEG-encode a BGR image; format string as image_transport writes it."""
    ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageConversionError(f'JPEG encoding failed for image of shape {image.shape}')
    return CompressedImage(header=header, format='bgr8; jpeg compressed bgr8', data=encoded.tobytes())
