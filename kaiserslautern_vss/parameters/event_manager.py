"""Parameters the event_manager executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.spec import ParamSpec

PARAMETERS = (
    CAMERAS,
    ParamSpec('rules_file', '', 'Incident rules YAML (relative paths: to the config directory)', required=True),
    ParamSpec('record_root', 'recordings', 'Directory receiving one rosbag2 folder per incident'),
    ParamSpec('pre_event_s', 5.0, 'Seconds kept in RAM and written before the trigger', minimum=0.0, maximum=120.0),
    ParamSpec('post_event_s', 5.0, 'Seconds recorded after the incident ends', minimum=0.0, maximum=600.0),
    ParamSpec('buffer_max_mb', 64, 'RAM bound of each camera\'s pre-event buffer', minimum=1, maximum=4096),
    ParamSpec('end_hold_s', 2.0, 'An incident ends after its condition was false this long',
              minimum=0.0, maximum=600.0),
)
