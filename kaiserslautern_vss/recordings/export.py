"""Copying an incident out of the recordings for an authorised user, decrypted.

The incident is verified against its signed manifest first and refused if anything was
altered; skipping that must be asked for and is written to the audit log as such.
Only regular files inside the incident folder are read, never through a symbolic link
(a link or special file planted in the incident is refused, even unverified).
The export is created 0700 (folders) / 0600 (files) and appended to the keyed audit log
(who, when, what, why, where to); an export that cannot be audited is removed again.
Used by ``vss-export`` (tools/export.py) and the operator console.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kaiserslautern_vss.recordings.audit import AuditError, AuditLog
from kaiserslautern_vss.recordings.encryption import ENCRYPTED_SUFFIX, EncryptionError, decrypt_file
from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModeError, read_regular
from kaiserslautern_vss.recordings.integrity import (EVIDENCE_FILE, EVIDENCE_SIGNATURE_FILE, MANIFEST_FILE,
                                                     SIGNATURE_FILE, folder_entries, verify_incident)


class ExportError(RuntimeError):
    """The export was refused (altered or unsafe incident) or failed; nothing was left behind."""


@dataclass(frozen=True)
class ExportResult:
    destination: Path
    files: int
    verified: bool
    decrypted: bool


def _plan(incident: Path) -> dict[str, Path]:
    """Regular files to export by relative name; refuses links and special files."""
    if incident.is_symlink() or not incident.is_dir():
        raise ExportError(f'{incident} is not an incident folder (links are not followed)')
    files, others = folder_entries(incident)
    if others:
        found = ', '.join(f'{kind} {name}' for name, kind in sorted(others.items()))
        raise ExportError(f'refused, {incident} holds {found}')
    return {name: path for name, path in files.items() if name not in (EVIDENCE_FILE, EVIDENCE_SIGNATURE_FILE)}


def export_incident(incident: Path, destination: Path, *, actor: str, reason: str, audit: AuditLog,
                    verify_key: Ed25519PublicKey | None, encryption_key: bytes | None = None,
                    skip_verification: bool = False) -> ExportResult:
    """Verify (unless ``skip_verification``, which is audited), copy/decrypt, audit.

    ``verify_key`` is required unless ``skip_verification``. Raises ExportError.
    """
    if not actor.strip() or not reason.strip():
        raise ExportError('an export needs who and why (they go into the audit log)')
    if destination.exists() or destination.is_symlink():
        raise ExportError(f'{destination} already exists')
    if verify_key is None and not skip_verification:
        raise ExportError('verification is mandatory: give the public key (or explicitly skip it)')
    incident = Path(incident)
    files = _plan(incident)
    if not skip_verification:
        findings = verify_incident(incident, verify_key)
        if findings:
            raise ExportError(f'refused, {incident} was altered: ' + '; '.join(str(f) for f in findings))
    encrypted = any(name.endswith(ENCRYPTED_SUFFIX) for name in files)
    if encrypted and encryption_key is None:
        raise ExportError('the incident is encrypted; give the encryption key')
    try:
        PRIVATE.folder(destination)
        for name, path in files.items():
            if encrypted and name in (MANIFEST_FILE, SIGNATURE_FILE):
                continue  # it signs the encrypted files, which are not exported
            sealed = name.endswith(ENCRYPTED_SUFFIX)
            plain_name = name[:-len(ENCRYPTED_SUFFIX)] if sealed else name
            data = decrypt_file(path, encryption_key, plain_name) if sealed else read_regular(path)
            target = destination / plain_name
            PRIVATE.folder(target.parent)
            PRIVATE.write(target, data)
        action = 'export' if not skip_verification else 'export-unverified'
        audit.append(actor, action, incident.resolve().name, f'{reason} -> {destination.resolve()}')
    except (EncryptionError, OSError, FileModeError, AuditError) as error:
        shutil.rmtree(destination, ignore_errors=True)
        raise ExportError(str(error)) from error
    return ExportResult(destination, len(list(destination.rglob('*'))), not skip_verification, encrypted)
