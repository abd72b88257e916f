"""Parameters the detector executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.spec import ParamSpec
from kaiserslautern_vss.paths import resolve_model_path

if TYPE_CHECKING:
    from kaiserslautern_vss.detection.onnx_detector import DetectorSettings

PARAMETERS = (
    CAMERAS,
    ParamSpec('model_path', '', 'ONNX detector; empty: search VSS_MODEL_DIR and ../shared/models, '
              'then fall back to OpenCV HOG people detection (poor, logged loudly)'),
    ParamSpec('class_names_path', '', 'Class names file, one per line; empty: COCO'),
    ParamSpec('providers', ['CPUExecutionProvider'], 'ONNX Runtime execution providers in preference order'),
    ParamSpec('intra_op_threads', 1, 'ONNX Runtime intra-op threads per session', minimum=1, maximum=64),
    ParamSpec('score_threshold', 0.35, 'Minimum confidence', minimum=0.0, maximum=1.0),
    ParamSpec('nms_iou', 0.45, 'IoU above which overlapping boxes of one class are suppressed',
              minimum=0.0, maximum=1.0),
    ParamSpec('class_allowlist', ['person', 'bicycle', 'car', 'motorcycle', 'bus', 'truck', 'backpack',
                                  'handbag', 'suitcase'], 'Classes published; others are dropped'),
    ParamSpec('allow_hog_fallback', True, 'Use OpenCV HOG people detection when no ONNX model is found'),
)


def detector_settings(values: Mapping[str, Any]) -> DetectorSettings:
    """Detector settings from validated parameter values (detector node and vss-anonymize alike)."""
    # Imported here: the catalogue is read by bringup tools that should not load onnxruntime.
    from kaiserslautern_vss.detection.onnx_detector import DetectorSettings
    return DetectorSettings(
        model_path=resolve_model_path(values['model_path']),
        class_names_path=values['class_names_path'],
        providers=tuple(values['providers']),
        intra_op_threads=values['intra_op_threads'],
        score_threshold=values['score_threshold'],
        nms_iou=values['nms_iou'],
        class_allowlist=tuple(values['class_allowlist']))
