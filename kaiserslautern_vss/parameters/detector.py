"""Parameters the detector executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kaiserslautern_vss.detection.layouts import ModelLayout
from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.spec import ParamSpec
from kaiserslautern_vss.paths import resolve_model_path

if TYPE_CHECKING:
    from kaiserslautern_vss.detection.onnx_detector import DetectorSettings
    from kaiserslautern_vss.detection.scheduler import SchedulerSettings

PARAMETERS = (
    CAMERAS,
    ParamSpec('model_path', '', 'ONNX detector; empty: search VSS_MODEL_DIR and ../shared/models, '
              'then fall back to OpenCV HOG people detection (poor, logged loudly)'),
    ParamSpec('class_names_path', '', 'Class names file, one per line; empty: COCO'),
    ParamSpec('layout', 'auto', 'Output layout of the model; auto: recognised from its output shapes',
              choices=('auto', *(layout.value for layout in ModelLayout))),
    ParamSpec('providers', ['CPUExecutionProvider'], 'ONNX Runtime execution providers in preference '
              'order (TensorrtExecutionProvider, CUDAExecutionProvider, OpenVINOExecutionProvider, '
              'CPUExecutionProvider); unavailable ones are skipped with a warning'),
    ParamSpec('sessions', 0, 'Parallel inference sessions shared by all cameras; '
              '0: one per intra_op_threads usable cores, at most one per camera', minimum=0, maximum=64),
    ParamSpec('intra_op_threads', 0, 'ONNX Runtime intra-op threads per session; 0: usable cores per camera, '
              'at least 1 (many cameras on few cores: single-thread sessions, nothing spins)',
              minimum=0, maximum=64),
    ParamSpec('batch_size', 4, 'Most cameras inferred together when the model has a dynamic batch '
              'dimension (fixed-batch models run one frame at a time)', minimum=1, maximum=32),
    ParamSpec('score_threshold', 0.35, 'Minimum confidence', minimum=0.0, maximum=1.0),
    ParamSpec('class_thresholds', [], "Per-class minimum confidence overriding score_threshold, "
              "as 'class:score' entries, e.g. ['person:0.4', 'suitcase:0.3']"),
    ParamSpec('nms_iou', 0.45, 'IoU above which overlapping boxes of one class are suppressed',
              minimum=0.0, maximum=1.0),
    ParamSpec('class_allowlist', ['person', 'bicycle', 'car', 'motorcycle', 'bus', 'truck', 'backpack',
                                  'handbag', 'suitcase'], 'Classes published; others are dropped'),
    ParamSpec('allow_hog_fallback', True, 'Use OpenCV HOG people detection when no ONNX model is found'),
    ParamSpec('require_privacy_grade_model', False, 'Refuse to start without a real detection model '
              '(site configurations): the HOG fallback is not privacy-grade. When false and no model is '
              'found, privacy masks conservatively (everything that moved, HOG persons, faces)'),
    ParamSpec('tracking', True, 'Give detections persistent track ids (Detection2D.id)'),
    ParamSpec('motion_gating', True, 'Skip inference on frames without motion (their last detections '
              'are republished) unless a refresh is due or recently moving objects are tracked'),
    ParamSpec('forced_refresh_s', 5.0, 'Motion gating: infer at least this often regardless of motion',
              minimum=0.1, maximum=600.0),
    ParamSpec('motion_hold_s', 1.0, 'Motion gating: keep inferring this long after the last motion '
              'while objects are tracked', minimum=0.0, maximum=60.0),
    ParamSpec('behaviour', True, 'Estimate poses of tracked persons and score the behaviour cues (assault, '
              'person_down, fleeing, vehicle_tampering) on the frame in memory; published on '
              '/vss/<cam>/behaviour and /vss/<cam>/skeletons. Needs tracking'),
    ParamSpec('pose_model_path', '', 'MoveNet SinglePose Lightning ONNX; empty: pose/movenet_lightning.onnx from '
              'VSS_MODEL_DIR, ../shared/models or ~/.local/share/kaiserslautern_vss/models '
              '(scripts/get_pose_model.sh). Without it only person_down and fleeing are scored, said on '
              '/diagnostics and /vss/events'),
    ParamSpec('pose_crops_per_frame', 4, 'Most person crops per camera frame that get a pose (chosen by cheap '
              'box and track cues); each costs about 8 ms of one core', minimum=1, maximum=32),
    ParamSpec('require_pose_model', False, 'Refuse to start without the pose model (site configurations: '
              'assault and vehicle_tampering need it)'),
)


def detector_settings(values: Mapping[str, Any]) -> DetectorSettings:
    """Detector settings from validated parameter values (detector node and vss-anonymize alike);
    raises DetectorSettingsError for malformed class_thresholds."""
    # Imported here: the catalogue is read by bringup tools that should not load onnxruntime.
    from kaiserslautern_vss.detection.cpu_budget import intra_op_threads_for
    from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, parse_class_thresholds
    return DetectorSettings(
        model_path=resolve_model_path(values['model_path']),
        class_names_path=values['class_names_path'],
        layout=values['layout'],
        providers=tuple(values['providers']),
        intra_op_threads=values['intra_op_threads'] or intra_op_threads_for(len(values['cameras'])),
        score_threshold=values['score_threshold'],
        nms_iou=values['nms_iou'],
        class_allowlist=tuple(values['class_allowlist']),
        class_thresholds=parse_class_thresholds(values['class_thresholds']))


def scheduler_settings(values: Mapping[str, Any]) -> SchedulerSettings:
    """Batching, motion gating and tracking from validated parameter values (the vision pipeline
    and vss-incidents alike)."""
    from kaiserslautern_vss.detection.motion import MotionGateSettings
    from kaiserslautern_vss.detection.scheduler import SchedulerSettings
    return SchedulerSettings(
        batch_size=values['batch_size'], motion_gating=values['motion_gating'],
        motion=MotionGateSettings(forced_refresh_s=values['forced_refresh_s']),
        motion_hold_s=values['motion_hold_s'], tracking=values['tracking'])
