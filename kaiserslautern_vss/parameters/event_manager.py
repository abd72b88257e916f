"""Parameters the event_manager executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.spec import ParamSpec

# also the defaults of vss-evidence and vss-export
DEFAULT_SIGNING_KEY_FILE = '~/.config/kaiserslautern_vss/signing_key.pem'
DEFAULT_AUDIT_KEY_FILE = '~/.config/kaiserslautern_vss/audit.key'

PARAMETERS = (
    CAMERAS,
    ParamSpec('rules_file', '', 'Incident rules YAML (relative paths: to the config directory)', required=True),
    ParamSpec('record_root', 'recordings', 'Directory receiving one rosbag2 folder per incident'),
    ParamSpec('pre_event_s', 5.0, 'Seconds kept in RAM and written before the trigger', minimum=0.0, maximum=120.0),
    ParamSpec('post_event_s', 5.0, 'Seconds recorded after the incident ends', minimum=0.0, maximum=600.0),
    ParamSpec('buffer_max_mb', 64, 'RAM bound of each camera\'s pre-event buffer', minimum=1, maximum=4096),
    ParamSpec('end_hold_s', 2.0, 'An incident ends after its condition was false this long',
              minimum=0.0, maximum=600.0),
    ParamSpec('alarm_duration_s', 10.0, 'Length of an incident opened by /vss/<cam>/alarm or the trigger service',
              minimum=0.0, maximum=3600.0),
    # retention
    ParamSpec('retention_hours', 72.0, 'Incidents older than this are deleted unless marked as evidence',
              minimum=0.0, maximum=8760.0),
    ParamSpec('quota_mb', 0, 'Disk quota of all incidents together; oldest non-evidence go first (0 = none)',
              minimum=0, maximum=10_000_000),
    ParamSpec('min_free_mb', 200, 'Free space kept on the recordings disk: before and while writing, the oldest '
              'closed non-evidence incidents are deleted for it (never the newest closed one); a bag that gets '
              'no room is not started or is cut, announced on /vss/events, in diagnostics and as an alert',
              minimum=0, maximum=10_000_000),
    ParamSpec('retention_check_s', 60.0, 'Seconds between retention checks (also run at once on a disk error)',
              minimum=1.0, maximum=86400.0),
    # integrity, encryption, access
    ParamSpec('file_group', '', 'Group that may read recordings, keys, outbox and audit log (0750/0640); '
              'empty: the service user only (0700/0600)'),
    ParamSpec('audit_log_file', '', 'Keyed audit log (evidence marks, deletions, crash recoveries); '
              'empty: audit.log beside record_root'),
    ParamSpec('audit_key_file', DEFAULT_AUDIT_KEY_FILE,
              'HMAC key of the audit log (outside record_root; created on first use, mode 0600)'),
    ParamSpec('signing_key_file', DEFAULT_SIGNING_KEY_FILE,
              'Ed25519 key signing each incident manifest (outside record_root; created on first use, '
              'public key beside it as .pub)', required=True),
    ParamSpec('encryption', False, 'Encrypt incident files at rest (AES-256-GCM); vss-export decrypts'),
    ParamSpec('encryption_key_file', '~/.config/kaiserslautern_vss/recordings.key',
              'AES-256 key for encryption at rest (outside record_root; created on first use)'),
    # alerts
    ParamSpec('outbox_path', '~/.local/state/kaiserslautern_vss/alert_outbox.sqlite',
              'Persistent alert queue (undelivered alerts survive restarts)'),
    ParamSpec('snapshot_width', 320, 'Width in pixels of the anonymised snapshot in alerts (0 = no snapshot)',
              minimum=0, maximum=1920),
    ParamSpec('mqtt_host', '', 'MQTT broker for alerts; empty: no MQTT alerts'),
    ParamSpec('mqtt_port', 8883, 'MQTT broker port', minimum=1, maximum=65535),
    ParamSpec('mqtt_topic', 'vss/alerts', 'MQTT topic alerts are published on (QoS 1)'),
    ParamSpec('mqtt_tls', True, 'Use TLS to the broker'),
    ParamSpec('mqtt_ca_file', '', 'CA certificate(s) of the broker; empty: system CAs'),
    ParamSpec('mqtt_username', '', 'MQTT user; empty: anonymous'),
    ParamSpec('mqtt_password_file', '', 'File holding the MQTT password (never inline)'),
    ParamSpec('webhook_url', '', 'HTTPS URL receiving alerts as signed JSON POSTs; empty: no webhook'),
    ParamSpec('webhook_secret_file', '', 'File holding the HMAC-SHA256 secret for X-VSS-Signature'),
    ParamSpec('webhook_ca_file', '', 'CA certificate(s) of the webhook server; empty: system CAs'),
)
