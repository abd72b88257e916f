"""sensor_msgs Image/CompressedImage <-> numpy: encodings, and clear errors for bad messages."""

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from kaiserslautern_vss.ros.image_conversion import (ImageConversionError, bgr_to_compressed, bgr_to_image,
                                                     compressed_to_bgr, image_from_cdr, image_to_bgr)

RNG = np.random.default_rng(7)
BGR = RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _message(array: np.ndarray, encoding: str, step_padding: int = 0) -> Image:
    height, width = array.shape[:2]
    rows = array.reshape(height, -1)
    padded = np.zeros((height, rows.shape[1] + step_padding), np.uint8)
    padded[:, :rows.shape[1]] = rows
    return Image(height=height, width=width, encoding=encoding, step=padded.shape[1], data=padded.tobytes())


def test_bgr8_round_trip_keeps_header_and_pixels():
    header = Header(frame_id='cam01_optical_frame')
    msg = bgr_to_image(BGR, header)
    assert (msg.encoding, msg.step, msg.header.frame_id) == ('bgr8', 64 * 3, 'cam01_optical_frame')
    np.testing.assert_array_equal(image_to_bgr(msg), BGR)


@pytest.mark.parametrize('encoding, source', [
    ('rgb8', cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB)),
    ('bgra8', cv2.cvtColor(BGR, cv2.COLOR_BGR2BGRA)),
    ('rgba8', cv2.cvtColor(BGR, cv2.COLOR_BGR2RGBA)),
])
def test_colour_encodings_convert_to_bgr(encoding, source):
    np.testing.assert_array_equal(image_to_bgr(_message(source, encoding)), BGR)


def test_mono8_with_row_padding():
    gray = cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)
    converted = image_to_bgr(_message(gray, 'mono8', step_padding=16))
    assert converted.shape == (48, 64, 3)
    np.testing.assert_array_equal(converted[..., 0], gray)


def test_jpeg_round_trip_is_close():
    smooth = cv2.GaussianBlur(BGR, (0, 0), 3)
    msg = bgr_to_compressed(smooth, Header(), quality=95)
    assert msg.format.endswith('jpeg compressed bgr8')
    decoded = compressed_to_bgr(msg)
    assert decoded.shape == smooth.shape
    assert np.abs(decoded.astype(int) - smooth).mean() < 3


@pytest.mark.parametrize('mutate, message', [
    (lambda m: setattr(m, 'data', m.data[:-1]), 'data length'),
    (lambda m: setattr(m, 'step', 10), 'step 10 is smaller'),
    (lambda m: setattr(m, 'height', 49), 'data length'),
    (lambda m: setattr(m, 'encoding', 'yuv422_yuy2'), 'unsupported encoding'),
    (lambda m: setattr(m, 'width', 0), 'empty image'),
])
def test_inconsistent_images_are_rejected_clearly(mutate, message):
    msg = _message(BGR, 'bgr8')
    mutate(msg)
    with pytest.raises(ImageConversionError, match=message):
        image_to_bgr(msg)


def test_corrupt_jpeg_is_rejected_clearly():
    with pytest.raises(ImageConversionError, match='cannot decode 5 bytes'):
        compressed_to_bgr(CompressedImage(format='jpeg', data=b'\xff\xd8bad'))


def test_serialized_image_deserializes_to_header_and_pixels():
    from rclpy.serialization import serialize_message
    header = Header(frame_id='cam01_optical_frame')
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 42
    frame = image_from_cdr(serialize_message(bgr_to_image(BGR, header)))
    assert frame.header == header
    np.testing.assert_array_equal(frame.image, BGR)


def test_serialized_rgb_and_padded_mono_convert_like_messages():
    from rclpy.serialization import serialize_message
    for msg in (_message(cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB), 'rgb8'),
                _message(cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY), 'mono8', step_padding=16)):
        np.testing.assert_array_equal(image_from_cdr(serialize_message(msg)).image, image_to_bgr(msg))


def test_truncated_or_inconsistent_serialized_images_are_rejected_clearly():
    from rclpy.serialization import serialize_message
    data = serialize_message(_message(BGR, 'bgr8'))
    with pytest.raises(ImageConversionError, match='cannot deserialize 60 bytes'):
        image_from_cdr(data[:60])
    inconsistent = _message(BGR, 'bgr8')
    inconsistent.height = 40
    with pytest.raises(ImageConversionError, match='data length'):
        image_from_cdr(serialize_message(inconsistent))
