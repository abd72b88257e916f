"""Parameters the camera_events executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.spec import ParamSpec

PARAMETERS = (
    CAMERAS,
    ParamSpec('bind_address', '127.0.0.1', 'Address the IP Notify receiver listens on: the camera network '
              'interface\'s own address (0.0.0.0 / :: are refused)', required=True),
    ParamSpec('port', 8090, 'TCP port of the IP Notify receiver (the cameras\' IP Notify destination port)',
              minimum=1, maximum=65535),
    ParamSpec('secrets_dir', '/etc/vss/ipnotify', 'Folder with one secret per camera, <camera_id>.secret (at '
              'least 16 bytes, not world-readable); cameras send it as IP Notify HTTP authentication '
              '<camera_id>:<secret> or as ?token=<secret>', required=True),
    ParamSpec('max_body_bytes', 4096, 'Larger request bodies are refused (413)', minimum=0, maximum=1_048_576),
    ParamSpec('rate_per_s', 2.0, 'Requests per second one sender may make on average (more: 429)',
              minimum=0.01, maximum=1000.0),
    ParamSpec('burst', 10, 'Requests one sender may make at once before the rate applies', minimum=1, maximum=1000),
    ParamSpec('max_connections', 32, 'Connections served at once; more are closed at once', minimum=1, maximum=1024),
    ParamSpec('max_connections_per_sender', 4, 'Connections served at once from one address (slow clients on one '
              'address cannot keep the cameras out); more are closed at once', minimum=1, maximum=1024),
    ParamSpec('request_timeout_s', 5.0, 'A request (headers and body) not complete this long after connecting is '
              'dropped, however slowly its bytes trickle in',
              minimum=0.5, maximum=60.0),
    ParamSpec('replay_window_s', 30.0, 'The same camera event with the same parameters is accepted once within '
              'this time (409 after); a request whose ts parameter (Unix seconds) is further off is refused',
              minimum=1.0, maximum=3600.0),
)
