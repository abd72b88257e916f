"""Whether a detector is good enough to decide what privacy masks: a declared property.

Kept free of onnxruntime so that the bringup can check a configuration before any process starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from kaiserslautern_vss.paths import DEFAULT_MODEL_FILE, model_search_dirs, resolve_model_path


class DetectorGrade(str, Enum):
    """``MODEL``: a trained neural detector (privacy-grade). ``FALLBACK``: OpenCV HOG, which misses
    small, sitting and occluded people, so masking must not rely on it alone."""

    MODEL = 'model'
    FALLBACK = 'fallback'

    @property
    def privacy_grade(self) -> bool:
        return self is DetectorGrade.MODEL


#: schema of the detector's start-up message on /vss/events (incident events have their own)
DETECTOR_INFO_SCHEMA = 'kaiserslautern_vss/detector_info/v1'


def required_model_problem(configured_model_path: str, required: bool) -> str | None:
    """Why a configuration requiring a privacy-grade model would be refused, or None (checked
    before start: the model is searched for as the detector will, not loaded)."""
    if not required:
        return None
    resolved = resolve_model_path(configured_model_path)
    if not resolved:
        return privacy_grade_model_required_message(f'model_path is empty and no {DEFAULT_MODEL_FILE} was found')
    if not Path(resolved).exists():
        return privacy_grade_model_required_message(f"model_path '{resolved}' does not exist")
    return None


def privacy_grade_model_required_message(reason: str) -> str:
    """The refusal when a privacy-grade model is required: what is missing, what to install, where."""
    places = ', '.join(str(directory) for directory in model_search_dirs())
    return (f'require_privacy_grade_model is set but there is no privacy-grade detection model '
            f'({reason}); the HOG fallback would leave people recognisable. Install a YOLO ONNX export '
            f'as {DEFAULT_MODEL_FILE} in one of: {places} (or point VSS_MODEL_DIR or the detector\'s '
            f'model_path at it)')


def detector_info_json(node: str, description: str, grade: DetectorGrade, cameras: Sequence[str]) -> str:
    """The detector's start-up information for /vss/events: what runs and whether it is privacy-grade."""
    return json.dumps({'schema': DETECTOR_INFO_SCHEMA, 'node': node, 'detector': description,
                       'grade': grade.value, 'privacy_grade': grade.privacy_grade,
                       'cameras': list(cameras)}, sort_keys=True)
