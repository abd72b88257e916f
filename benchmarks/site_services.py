"""The site config's services made local for a benchmark (bench_site, bench_bringup).

The site's event manager, operator console and IP-Notify receiver need the site's addresses,
keys and secrets; here they get loopback addresses, throwaway keys and secrets in a temp dir,
and no alert broker or webhook is contacted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.recordings.encryption import load_or_create_key
from kaiserslautern_vss.recordings.integrity import load_or_create_signing_key


def create_keys(tmp: Path) -> None:
    """The signing and recording keys, before the processes start (as on site: the console reads them at start)."""
    load_or_create_signing_key(tmp / 'signing_key.pem')
    load_or_create_key(tmp / 'recordings.key')


def local_service_values(spec: NodeSpec, tmp: Path) -> dict[str, Any]:
    """Parameter values that run ``spec``'s node on this host with what it needs in ``tmp``
    (empty for nodes that need nothing of the site)."""
    if spec.executable == 'event_manager':
        values = dict(signing_key_file=tmp / 'signing_key.pem', encryption_key_file=tmp / 'recordings.key',
                      audit_key_file=tmp / 'audit.key', outbox_path=tmp / 'outbox.sqlite', mqtt_host='',
                      webhook_url='')
    elif spec.executable == 'operator_console':  # loopback, self-signed, keys in tmp
        values = dict(bind_address='127.0.0.1', port=18443, tls_self_signed=True, tls_cert_file=tmp / 'cert.pem',
                      tls_key_file=tmp / 'console_key.pem', users_file=tmp / 'console_users.json',
                      signing_key_file=tmp / 'signing_key.pem', encryption_key_file=tmp / 'recordings.key',
                      export_root=tmp / 'exports')
    elif spec.executable == 'camera_events':  # loopback, a throwaway IP Notify secret per camera in tmp
        (tmp / 'ipnotify').mkdir(mode=0o700, exist_ok=True)
        for camera in spec.parameters['cameras']:
            (tmp / 'ipnotify' / f'{camera}.secret').write_text(f'bench-secret-of-{camera}-0123456789')
            (tmp / 'ipnotify' / f'{camera}.secret').chmod(0o600)
        values = dict(bind_address='127.0.0.1', port=18090, secrets_dir=tmp / 'ipnotify')
    else:
        return {}
    return {name: str(value) if isinstance(value, Path) else value for name, value in values.items()
            if name in spec.parameters}
