"""Letterboxing into model input and class-aware NMS, checked against exact expectations."""

import cv2
import numpy as np
import pytest

from kaiserslautern_vss.camera.imaging import ImageFormatError
from kaiserslautern_vss.detection.letterbox import letterbox
from kaiserslautern_vss.detection.nms import NmsError, class_aware_nms, pairwise_iou


def _gradient_image(height: int, width: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack(((rows * 7) % 256, (cols * 3) % 256, (rows + cols) % 256), axis=-1).astype(np.uint8)


def test_landscape_image_is_scaled_into_top_left_and_padded_below():
    image = _gradient_image(576, 768)
    tensor, scale = letterbox(image, (416, 416))
    assert tensor.shape == (1, 3, 416, 416) and tensor.dtype == np.float32
    assert scale == pytest.approx(416 / 768)
    expected = cv2.resize(image, (416, 312), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(tensor[0, :, :312, :], expected.transpose(2, 0, 1).astype(np.float32))
    assert (tensor[0, :, 312:, :] == 114).all()


def test_portrait_image_is_padded_on_the_right_with_the_pad_value():
    image = np.full((200, 100, 3), (10, 20, 30), dtype=np.uint8)
    tensor, scale = letterbox(image, (64, 32), pad_value=0)
    assert scale == pytest.approx(32 / 200)
    assert (tensor[0, :, :, 16:] == 0).all()
    # Channel order stays BGR: channel 0 is blue.
    assert tensor[0, :, :, :16].reshape(3, -1).mean(axis=1).tolist() == [10, 20, 30]


def test_grey_and_bgra_images_are_converted_to_bgr():
    grey = np.full((40, 40), 90, dtype=np.uint8)
    bgra = np.dstack((np.full((40, 40, 3), 50, np.uint8), np.zeros((40, 40), np.uint8)))
    assert (letterbox(grey, (20, 20))[0] == 90).all()
    assert (letterbox(grey[..., None], (20, 20))[0] == 90).all()
    assert (letterbox(bgra, (20, 20))[0] == 50).all()


def test_letterbox_writes_into_a_given_batch_slot():
    batch = np.zeros((2, 3, 32, 32), dtype=np.float32)
    result, _ = letterbox(np.full((16, 16, 3), 7, np.uint8), (32, 32), out=batch[1])
    assert np.shares_memory(result, batch)
    assert (batch[1] == 7).all() and (batch[0] == 0).all()


@pytest.mark.parametrize(('image', 'size', 'message'), [
    (np.zeros((10, 10, 3), np.float32), (32, 32), 'expected a uint8 image, got dtype float32'),
    (np.zeros((10, 10, 2), np.uint8), (32, 32), r'expected a grey, BGR or BGRA image, got shape \(10, 10, 2\)'),
    (np.zeros((0, 10, 3), np.uint8), (32, 32), 'cannot letterbox an empty image'),
    (np.zeros((10, 10, 3), np.uint8), (0, 32), r'letterbox size must be positive \(width, height\), got \(0, 32\)'),
    ([[1, 2]], (32, 32), 'expected a numpy image, got list'),
])
def test_invalid_letterbox_inputs_are_rejected(image, size, message):
    with pytest.raises(ImageFormatError, match=message):  # LetterboxError is one
        letterbox(image, size)


def test_pairwise_iou_of_known_boxes():
    iou = pairwise_iou(np.array([[0, 0, 10, 10], [0, 0, 0, 0]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10]]))
    np.testing.assert_allclose(iou, [[50 / 150, 1.0], [0.0, 0.0]])


def _greedy_nms_oracle(boxes, scores, class_ids, iou_threshold):
    """The textbook definition, one box at a time."""
    kept = []
    for index in np.argsort(-scores, kind='stable'):
        if all(class_ids[k] != class_ids[index]
               or pairwise_iou(boxes[k], boxes[index])[0, 0] <= iou_threshold for k in kept):
            kept.append(index)
    return kept


def test_class_aware_nms_matches_the_greedy_definition_on_random_boxes():
    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 300, size=(400, 2))
    boxes = np.concatenate((corners, corners + rng.uniform(10, 80, size=(400, 2))), axis=1)
    scores = rng.permutation(np.linspace(0.05, 0.99, 400)).astype(np.float32)
    class_ids = rng.integers(0, 3, size=400)
    kept = class_aware_nms(boxes, scores, class_ids, iou_threshold=0.45, max_detections=1000)
    assert kept.tolist() == _greedy_nms_oracle(boxes, scores, class_ids, 0.45)


def test_overlapping_boxes_of_different_classes_both_survive_and_max_detections_caps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.95, 0.5], np.float32)
    class_ids = np.array([0, 0, 1, 0])
    assert class_aware_nms(boxes, scores, class_ids, 0.5, 10).tolist() == [2, 0, 3]
    assert class_aware_nms(boxes, scores, class_ids, 0.5, 2).tolist() == [2, 0]
    assert class_aware_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5, 10).tolist() == []


@pytest.mark.parametrize(('kwargs', 'message'), [
    (dict(boxes=np.zeros((2, 4)), scores=np.zeros(1), class_ids=np.zeros(2)),
     'NMS inputs disagree in length: boxes=2, scores=1, class_ids=2'),
    (dict(boxes=np.array([[-1, 0, 5, 5]]), scores=np.ones(1), class_ids=np.zeros(1)),
     'NMS boxes must have non-negative coordinates'),
    (dict(boxes=np.zeros((1, 4)), scores=np.ones(1), class_ids=np.zeros(1), iou_threshold=0.0),
     r'iou_threshold must be in \(0, 1\], got 0.0'),
    (dict(boxes=np.zeros((1, 4)), scores=np.ones(1), class_ids=np.zeros(1), max_detections=0),
     'max_detections must be at least 1, got 0'),
])
def test_invalid_nms_inputs_are_rejected(kwargs, message):
    arguments = dict(iou_threshold=0.5, max_detections=10) | kwargs
    with pytest.raises(NmsError, match=message):
        class_aware_nms(**arguments)
