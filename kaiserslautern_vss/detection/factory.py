"""Choosing the detector: the configured ONNX model, or the HOG fallback when none is there.

Every back end declares its :class:`DetectorGrade`; only a ``MODEL`` is privacy-grade.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from kaiserslautern_vss.detection.grade import DetectorGrade, privacy_grade_model_required_message
from kaiserslautern_vss.detection.hog_detector import HogPeopleDetector
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, ModelLoadError, OnnxDetector
from kaiserslautern_vss.detection.types import Detections

LOGGER = logging.getLogger('kaiserslautern_vss.detection')


class Detector(Protocol):
    """What the detector node needs from any detector back end."""

    @property
    def supports_dynamic_batch(self) -> bool: ...

    @property
    def grade(self) -> DetectorGrade: ...

    def detect(self, image_bgr: np.ndarray) -> Detections: ...

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]: ...


def create_detector(settings: DetectorSettings, allow_hog_fallback: bool = True,
                    require_privacy_grade: bool = False) -> tuple[Detector, str]:
    """The detector and a one-line description of it for logs and diagnostics.

    An existing model file is always loaded as ONNX: a broken file raises :class:`ModelLoadError`
    and never silently degrades to HOG. Only an empty or missing path falls back, when allowed and
    no privacy-grade detector is required.
    """
    path = Path(settings.model_path) if settings.model_path else None
    if path is not None and path.exists():
        detector = OnnxDetector(settings)
        width, height = detector.input_size
        return detector, (f'ONNX {path.name} ({detector.layout.value}, {width}x{height}, '
                          f'{", ".join(detector.providers)})')
    reason = (f"model_path '{settings.model_path}' does not exist" if path is not None
              else 'model_path is empty')
    if require_privacy_grade:
        raise ModelLoadError(privacy_grade_model_required_message(reason))
    if not allow_hog_fallback:
        raise ModelLoadError(f'no detection model: {reason}; set model_path to a YOLO ONNX export '
                             '(e.g. yolox_nano.onnx) or allow the HOG fallback')
    LOGGER.warning('!!! NO DETECTION MODEL (%s): falling back to the HOG people detector. Detection '
                   'quality is POOR: people only, misses small, sitting and occluded people, no '
                   'vehicles or bags; privacy masks conservatively (everything that moved). Set model_path '
                   'to a YOLO ONNX export (e.g. yolox_nano.onnx) to fix this. !!!', reason)
    return HogPeopleDetector(), f'HOG people detector (fallback: {reason})'


def create_detector_pool(settings: DetectorSettings, sessions: int, allow_hog_fallback: bool = True,
                         require_privacy_grade: bool = False) -> tuple[list[Detector], str]:
    """``sessions`` independent detectors of the same kind (one ONNX Runtime session each), so
    that many threads infer in parallel, and the description of the first (all share its grade)."""
    if sessions < 1:
        raise ValueError(f'sessions must be >= 1, got {sessions}')
    first, description = create_detector(settings, allow_hog_fallback, require_privacy_grade)
    rest = [OnnxDetector(settings) if isinstance(first, OnnxDetector) else HogPeopleDetector()
            for _ in range(sessions - 1)]
    return [first, *rest], f'{description} x {sessions} sessions'
