"""Parameters the camera_driver executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from kaiserslautern_vss.camera.source_types import RTSP_TRANSPORTS
from kaiserslautern_vss.parameters.spec import ParamSpec

PARAMETERS = (
    ParamSpec('camera_id', '', 'Camera id; frames go to /vss/<camera_id>/... of the vision pipeline',
              required=True),
    ParamSpec('url', '', 'Source: a video file path, file://, rtsp://, http(s)://, v4l2://, dir://, '
              'testpattern:// (credentials via password_env/password_file, never inline)', required=True),
    ParamSpec('frame_id', '', 'TF frame of the camera; empty: <camera_id>_optical_frame'),
    ParamSpec('realtime', True, 'Video files: publish at the file frame rate (false: as fast as possible)'),
    ParamSpec('loop', False, 'Video files: restart at the end instead of finishing'),
    ParamSpec('max_rate_hz', 0.0, 'Upper bound on the publish rate, 0 = source rate', minimum=0.0, maximum=240.0),
    ParamSpec('max_width', 0, 'Published images are scaled down to at most this width, 0 = native',
              minimum=0, maximum=16384),
    ParamSpec('max_height', 0, 'Published images are scaled down to at most this height, 0 = native',
              minimum=0, maximum=16384),
    ParamSpec('camera_info_url', '', 'Calibration YAML (camera_calibration format); empty: uncalibrated'),
    ParamSpec('username', '', 'Camera login name (the password never goes into the URL)'),
    ParamSpec('password_env', '', 'Environment variable holding the camera password'),
    ParamSpec('password_file', '', 'File holding the camera password (readable by the driver only)'),
    ParamSpec('rtsp_transport', 'tcp', 'RTSP transport', choices=RTSP_TRANSPORTS),
    ParamSpec('tls_ca_file', '', 'https/rtsps: verify the camera certificate against this site CA file (PEM); '
              'empty and no tls_fingerprint: the system CAs'),
    ParamSpec('tls_fingerprint', '', 'https/rtsps: accept exactly the camera certificate with this SHA-256 '
              'fingerprint (AB:CD:... or hex), e.g. its self-signed one'),
    ParamSpec('allow_basic_over_plain', False, 'Answer a Basic authentication challenge over unencrypted '
              'http/rtsp (the password travels in clear); refused by default'),
    ParamSpec('auth_max_attempts', 3, 'Logins the camera rejected that are retried within auth_window_s '
              '(cameras lock users out after a few)', minimum=1, maximum=100),
    ParamSpec('auth_window_s', 900.0, 'Window for auth_max_attempts', minimum=0.0, maximum=86400.0),
    ParamSpec('clock_offset_warn_s', 2.0, 'Diagnostics WARN when the camera clock is further than this from '
              'the host clock', minimum=0.1, maximum=86400.0),
    ParamSpec('snapshot_rate_hz', 0.0, 'HTTP: poll JPEG snapshots at this rate instead of reading an MJPEG '
              'stream, 0 = stream', minimum=0.0, maximum=60.0),
    ParamSpec('open_timeout_s', 10.0, 'Network cameras: connect timeout', minimum=0.5, maximum=120.0),
    ParamSpec('read_timeout_s', 5.0, 'Network cameras: timeout of one blocking read', minimum=0.5, maximum=120.0),
    ParamSpec('stall_timeout_s', 5.0, 'No frame for this long counts as a failure: reconnect',
              minimum=0.5, maximum=300.0),
    ParamSpec('backoff_initial_s', 0.5, 'First wait before reopening a failed source (doubles per failure)',
              minimum=0.05, maximum=60.0),
    ParamSpec('backoff_max_s', 30.0, 'Longest wait between reopening attempts', minimum=0.05, maximum=600.0),
    ParamSpec('privacy_zones', [], 'Polygons filled black before publishing, one string per zone: '
              '"x1,y1 x2,y2 x3,y3 ..." in pixels of privacy_zones_width x privacy_zones_height'),
    ParamSpec('privacy_zones_width', 0, 'Image width the privacy_zones points refer to (the camera\'s native '
              'size); required with privacy_zones', minimum=0, maximum=16384),
    ParamSpec('privacy_zones_height', 0, 'Image height the privacy_zones points refer to; required with '
              'privacy_zones', minimum=0, maximum=16384),
    ParamSpec('publish_raw', False, 'Commissioning only: also publish the unmasked frames on '
              '/vss/<camera_id>/image_raw, readable by any local process (logged and WARN in diagnostics '
              'while on)'),
)
