"""Parameters the operator_console executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.event_manager import DEFAULT_AUDIT_KEY_FILE, DEFAULT_SIGNING_KEY_FILE
from kaiserslautern_vss.parameters.spec import ParamSpec

PARAMETERS = (
    CAMERAS,
    ParamSpec('record_root', 'recordings', 'Incident folders shown in the console (the event manager\'s record_root)'),
    ParamSpec('bind_address', '127.0.0.1', 'The one address the HTTPS server listens on (the operator network\'s)'),
    ParamSpec('port', 8443, 'HTTPS port', minimum=1, maximum=65535),
    ParamSpec('users_file', '~/.config/kaiserslautern_vss/console_users.json',
              'Named users, argon2 hashes and TOTP secrets (managed with vss-users, mode 0600)'),
    ParamSpec('tls_cert_file', '~/.config/kaiserslautern_vss/console_cert.pem', 'TLS certificate (PEM)'),
    ParamSpec('tls_key_file', '~/.config/kaiserslautern_vss/console_key.pem', 'TLS private key (PEM, mode 0600)'),
    ParamSpec('tls_self_signed', False, 'Create a self-signed certificate if none exists (commissioning only)'),
    ParamSpec('signing_key_file', DEFAULT_SIGNING_KEY_FILE,
              'The recordings\' Ed25519 key (the event manager\'s): checks incidents, signs evidence marks'),
    ParamSpec('encryption_key_file', '',
              'AES key to show encrypted incidents (decrypted in memory only); empty: they cannot be shown'),
    ParamSpec('export_root', '~/vss_exports', 'Folder receiving police exports (one folder per case and incident)'),
    ParamSpec('audit_log_file', '', 'Keyed audit log; empty: audit.log beside record_root (as the event manager)'),
    ParamSpec('audit_key_file', DEFAULT_AUDIT_KEY_FILE, 'Key of the audit log chain (created on first use, mode 0600)'),
    ParamSpec('idle_timeout_min', 15.0, 'Minutes without user activity after which a session ends',
              minimum=1.0, maximum=720.0),
    ParamSpec('max_failed_logins', 5, 'Failed logins in a row that lock an account', minimum=1, maximum=100),
    ParamSpec('lockout_min', 15.0, 'Minutes an account stays locked', minimum=1.0, maximum=1440.0),
    ParamSpec('login_attempts_per_minute', 10, 'Login attempts allowed per client address and minute',
              minimum=1, maximum=1000),
    ParamSpec('live_refresh_hz', 2.0, 'How often browsers refresh the camera grid', minimum=0.2, maximum=10.0),
    ParamSpec('request_timeout_s', 10.0, 'A connection whose TLS handshake and request (headers and body) are not '
              'complete this long after it opened is closed, however slowly its bytes trickle in',
              minimum=1.0, maximum=120.0),
    ParamSpec('max_connections', 128, 'Connections served at once; more are closed at once', minimum=1, maximum=4096),
    ParamSpec('max_connections_per_client', 32, 'Connections served at once from one client address (a browser uses '
              'about 6 plus its alert stream); more are closed at once', minimum=1, maximum=4096),
    ParamSpec('max_streams_per_session', 4, 'Live alert streams one login session may hold open at once (tabs)',
              minimum=1, maximum=64),
)
