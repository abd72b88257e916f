"""Class-aware non-maximum suppression."""

from __future__ import annotations

import cv2
import numpy as np


class NmsError(ValueError):
    """Inconsistent or invalid NMS inputs."""


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                    iou_threshold: float, max_detections: int) -> np.ndarray:
    """Indices of the boxes kept, best score first, at most ``max_detections``.

    A box suppresses only boxes of its own class whose IoU with it exceeds ``iou_threshold``.
    ``boxes`` are (N, 4) x1, y1, x2, y2 with non-negative coordinates (clip them first):
    OpenCV separates classes by shifting each class' boxes beyond the largest coordinate.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    class_ids = np.asarray(class_ids, dtype=np.int32).reshape(-1)
    if not len(boxes) == len(scores) == len(class_ids):
        raise NmsError(f'NMS inputs disagree in length: boxes={len(boxes)}, scores={len(scores)}, '
                       f'class_ids={len(class_ids)}')
    if not 0.0 < iou_threshold <= 1.0:
        raise NmsError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
    if max_detections < 1:
        raise NmsError(f'max_detections must be at least 1, got {max_detections}')
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    if boxes[:, :2].min() < 0:
        raise NmsError('NMS boxes must have non-negative coordinates; clip them to the image first')
    xywh = np.concatenate((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]), axis=1)
    # score_threshold below every score: thresholds are applied by the caller, per class.
    keep = cv2.dnn.NMSBoxesBatched(xywh, scores, class_ids, float(scores.min()) - 1.0,
                                   float(iou_threshold))
    return np.asarray(keep, dtype=np.int64).reshape(-1)[:max_detections]


def pairwise_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x1, y1, x2, y2 boxes; 0 where both are empty."""
    a = np.asarray(boxes_a, dtype=np.float32).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, dtype=np.float32).reshape(1, -1, 4)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)
