"""What each node executable declares: the single source of parameter truth."""

from __future__ import annotations

from kaiserslautern_vss.parameters.spec import ParamSpec

CAMERAS = ParamSpec('cameras', ['cam01'], 'Camera ids this node serves; topics are /vss/<id>/...',
                    required=True)

CAMERA_DRIVER = (
    ParamSpec('camera_id', '', 'Camera id; the node publishes /vss/<camera_id>/image_raw', required=True),
    ParamSpec('url', '', 'Source: a video file path, file://, rtsp://, http(s)://, v4l2://, dir://, '
              'testpattern:// (credentials via password_env/password_file, never inline)', required=True),
    ParamSpec('frame_id', '', 'TF frame of the camera; empty: <camera_id>_optical_frame'),
    ParamSpec('realtime', True, 'Video files: publish at the file frame rate (false: as fast as possible)'),
    ParamSpec('loop', False, 'Video files: restart at the end instead of finishing'),
    ParamSpec('max_rate_hz', 0.0, 'Upper bound on the publish rate, 0 = source rate', minimum=0.0, maximum=240.0),
    ParamSpec('camera_info_url', '', 'Calibration YAML (camera_calibration format); empty: uncalibrated'),
)

DETECTOR = (
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

PRIVACY = (
    CAMERAS,
    ParamSpec('policy', 'heads', 'What is masked: heads of persons + faces, whole persons, or faces only',
              choices=('heads', 'persons', 'faces')),
    ParamSpec('method', 'pixelate', 'How it is masked', choices=('pixelate', 'blur', 'fill')),
    ParamSpec('face_detection', True, 'Run CenterFace in addition to the person detector'),
    ParamSpec('face_scale', 0.5, 'Scale of the whole-frame face detection pass', minimum=0.1, maximum=2.0),
    ParamSpec('hold_frames', 5, 'Frames a lost track stays masked', minimum=0, maximum=100),
    ParamSpec('detection_deadline_s', 0.5, 'Max wait for a frame\'s detections before failing closed',
              minimum=0.01, maximum=10.0),
    ParamSpec('on_deadline', 'mask_all', 'Frame without detections in time: publish fully masked or drop',
              choices=('mask_all', 'drop')),
    ParamSpec('jpeg_quality', 85, 'JPEG quality of image_anonymized/compressed', minimum=10, maximum=100),
)

EVENT_MANAGER = (
    CAMERAS,
    ParamSpec('rules_file', '', 'Incident rules YAML (relative paths: to the config directory)', required=True),
    ParamSpec('record_root', 'recordings', 'Directory receiving one rosbag2 folder per incident'),
    ParamSpec('pre_event_s', 5.0, 'Seconds kept in RAM and written before the trigger', minimum=0.0, maximum=120.0),
    ParamSpec('post_event_s', 5.0, 'Seconds recorded after the incident ends', minimum=0.0, maximum=600.0),
    ParamSpec('buffer_max_mb', 64, 'RAM bound of each camera\'s pre-event buffer', minimum=1, maximum=4096),
    ParamSpec('end_hold_s', 2.0, 'An incident ends after its condition was false this long',
              minimum=0.0, maximum=600.0),
)

NODE_PARAMETERS: dict[str, tuple[ParamSpec, ...]] = {
    'camera_driver': CAMERA_DRIVER,
    'detector': DETECTOR,
    'privacy': PRIVACY,
    'event_manager': EVENT_MANAGER,
}
