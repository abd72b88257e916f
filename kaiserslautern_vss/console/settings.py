"""The console's validated settings, built from the operator_console parameters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaiserslautern_vss.console.login_guard import LoginPolicy
from kaiserslautern_vss.recordings.audit import default_audit_log


@dataclass(frozen=True)
class ConsoleSettings:
    cameras: tuple[str, ...]
    record_root: Path
    bind_address: str
    port: int
    users_file: Path
    tls_cert_file: Path
    tls_key_file: Path
    tls_self_signed: bool
    signing_key_file: Path
    encryption_key_file: Path | None
    export_root: Path
    audit_log: Path
    audit_key_file: Path
    idle_timeout_s: float
    login_policy: LoginPolicy
    live_refresh_hz: float

    @classmethod
    def from_parameters(cls, values: dict[str, Any]) -> ConsoleSettings:
        """From validated parameter values (kaiserslautern_vss.parameters.operator_console)."""
        def path(name: str) -> Path:
            return Path(values[name]).expanduser().resolve()

        record_root = path('record_root')
        return cls(
            cameras=tuple(values['cameras']), record_root=record_root,
            bind_address=values['bind_address'], port=values['port'],
            users_file=path('users_file'), tls_cert_file=path('tls_cert_file'), tls_key_file=path('tls_key_file'),
            tls_self_signed=values['tls_self_signed'], signing_key_file=path('signing_key_file'),
            encryption_key_file=path('encryption_key_file') if values['encryption_key_file'] else None,
            export_root=path('export_root'),
            # the same audit log vss-evidence and vss-export write by default (beside the recordings)
            audit_log=path('audit_log_file') if values['audit_log_file'] else default_audit_log(record_root),
            audit_key_file=path('audit_key_file'),
            idle_timeout_s=values['idle_timeout_min'] * 60.0,
            login_policy=LoginPolicy(values['max_failed_logins'], values['lockout_min'] * 60.0,
                                     values['login_attempts_per_minute']),
            live_refresh_hz=values['live_refresh_hz'])
