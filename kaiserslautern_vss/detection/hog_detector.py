"""Model-less people detection with OpenCV's HOG + linear SVM: the fallback when no ONNX model
is available. Much weaker than a neural detector (misses small, sitting and occluded people)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from kaiserslautern_vss.camera.imaging import as_bgr
from kaiserslautern_vss.detection.grade import DetectorGrade
from kaiserslautern_vss.detection.types import Detections


class HogSettingsError(ValueError):
    """A HOG detector setting is out of range."""


@dataclass(frozen=True)
class HogSettings:
    """``hit_threshold`` is the minimum SVM margin; ``scale_step`` the image pyramid factor."""

    hit_threshold: float = 0.0
    win_stride: int = 8
    scale_step: float = 1.05

    def __post_init__(self) -> None:
        if self.win_stride < 1:
            raise HogSettingsError(f'win_stride must be >= 1 pixel, got {self.win_stride}')
        if self.scale_step <= 1.0:
            raise HogSettingsError(f'scale_step must be > 1, got {self.scale_step}')


class HogPeopleDetector:
    """Finds upright people at least about 100 pixels tall; labels are always 'person'.

    Scores are the SVM margin squashed by a logistic function into (0, 1): ordered like
    confidences but not calibrated probabilities. Not privacy-grade: masking must not rely on it alone.
    """

    grade = DetectorGrade.FALLBACK

    def __init__(self, settings: HogSettings = HogSettings()) -> None:
        self._settings = settings
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    @property
    def supports_dynamic_batch(self) -> bool:
        return False  # detect_batch runs image by image

    def detect(self, image_bgr: np.ndarray) -> Detections:
        stride = (self._settings.win_stride, self._settings.win_stride)
        rects, margins = self._hog.detectMultiScale(
            as_bgr(image_bgr), hitThreshold=self._settings.hit_threshold, winStride=stride,
            padding=(8, 8), scale=self._settings.scale_step)
        if len(rects) == 0:
            return Detections.empty()
        rects = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
        boxes = np.concatenate((rects[:, :2], rects[:, :2] + rects[:, 2:]), axis=1)
        height, width = image_bgr.shape[:2]
        boxes = np.clip(boxes, 0, np.array([width, height, width, height], np.float32))
        scores = 1.0 / (1.0 + np.exp(-np.asarray(margins, dtype=np.float32).reshape(-1)))
        return Detections(boxes, scores, ('person',) * len(boxes))

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(image) for image in images]
