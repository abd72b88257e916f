"""Parameters the detector executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.spec import ParamSpec

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
