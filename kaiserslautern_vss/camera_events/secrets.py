"""Per-camera IP Notify secrets: one file per camera, ``<secrets_dir>/<camera_id>.secret``."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path

from kaiserslautern_vss.camera_events.receiver import ReceiverConfigError


def load_secrets(cameras: Iterable[str], secrets_dir: Path) -> dict[str, bytes]:
    """camera id -> secret (surrounding whitespace dropped); errors name the file, never the secret.

    A file others may read is refused: whoever reads it can start recordings on that camera.
    """
    secrets = {}
    for camera_id in cameras:
        path = Path(secrets_dir) / f'{camera_id}.secret'
        try:
            mode = path.stat().st_mode
            secret = path.read_bytes().strip()
        except OSError as error:
            raise ReceiverConfigError(f'IP Notify secret of camera {camera_id}: {path} cannot be read: '
                                      f'{error.strerror}') from None
        if mode & stat.S_IROTH:
            raise ReceiverConfigError(f'IP Notify secret {path} is readable by everyone: chmod 600 it')
        secrets[camera_id] = secret
    return secrets
