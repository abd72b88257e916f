"""Parameters the camera_driver executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from kaiserslautern_vss.parameters.spec import ParamSpec

PARAMETERS = (
    ParamSpec('camera_id', '', 'Camera id; the node publishes /vss/<camera_id>/image_raw', required=True),
    ParamSpec('url', '', 'Source: a video file path, file://, rtsp://, http(s)://, v4l2://, dir://, '
              'testpattern:// (credentials via password_env/password_file, never inline)', required=True),
    ParamSpec('frame_id', '', 'TF frame of the camera; empty: <camera_id>_optical_frame'),
    ParamSpec('realtime', True, 'Video files: publish at the file frame rate (false: as fast as possible)'),
    ParamSpec('loop', False, 'Video files: restart at the end instead of finishing'),
    ParamSpec('max_rate_hz', 0.0, 'Upper bound on the publish rate, 0 = source rate', minimum=0.0, maximum=240.0),
    ParamSpec('camera_info_url', '', 'Calibration YAML (camera_calibration format); empty: uncalibrated'),
)
