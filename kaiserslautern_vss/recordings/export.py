"""Copying an incident out of the recordings for an authorised user, decrypted.

The incident is verified against its signed manifest first and refused if anything was
altered; skipping that must be asked for and is written to the audit log as such.
Only regular files inside the incident folder are read, never through a symbolic link
(a link or special file planted in the incident is refused, even unverified).
Every file is read once, checked against its signed hash, and those same bytes are
written (a file swapped after the check is never exported). The export is created 0700
(folders) / 0600 (files) after its entry (who, when, what, why, where to) is durable in
the keyed audit log: an export that cannot be audited is not made. Refusals are audited
with their reason (:func:`audit_refusal`).
Used by ``vss-export`` (tools/export.py) and the operator console.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kaiserslautern_vss.recordings.audit import AuditError, AuditLog
from kaiserslautern_vss.recordings.encryption import ENCRYPTED_SUFFIX, EncryptionError, decrypt_bytes
from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModeError, read_regular
from kaiserslautern_vss.recordings.integrity import (MANIFEST_FILE, SIGNATURE_FILE, UNSIGNED_FILES, IntegrityError,
                                                     incident_files, read_signed_files, verify_incident)


class ExportError(RuntimeError):
    """The export was refused or failed; nothing was left behind."""


class ExportRefused(ExportError):
    """Refused before anything was written (altered or unsafe incident, missing who/why/key);
    the message names only files inside the incident."""


class ExportFailed(ExportError):
    """Failed after its audit entry (disk, video); the export was removed again."""


@dataclass(frozen=True)
class ExportResult:
    destination: Path
    files: int
    verified: bool
    decrypted: bool


@dataclass(frozen=True)
class ExportPlan:
    """What an export writes, read once from the incident and checked: ``contents`` are the
    bytes whose hashes matched the signed manifest (decrypted after the check), so what is
    written, and any video made from them, is what was verified."""

    contents: dict[str, bytes]  # plain relative name -> bytes
    bag: str | None  # plain name of the bag (``<incident>.mcap``)
    signed_bag_sha256: str | None  # the bag's hash in the signed manifest (of the .enc file if encrypted)
    verified: bool
    decrypted: bool


def plan_export(incident: Path, *, verify_key: Ed25519PublicKey | None, encryption_key: bytes | None = None,
                skip_verification: bool = False) -> ExportPlan:
    """Check the incident and read what would be exported; ExportRefused says why it is refused.

    Refuses a linked folder and links or special files in it (even unverified), and any
    difference from what was signed. Nothing is written.
    """
    if verify_key is None and not skip_verification:
        raise ExportRefused('verification is mandatory: give the public key (or explicitly skip it)')
    incident = Path(incident)
    manifest = None
    try:
        files = incident_files(incident)
        if skip_verification:
            contents = {name: read_regular(path) for name, path in files.items()
                        if name not in UNSIGNED_FILES or name in (MANIFEST_FILE, SIGNATURE_FILE)}
        else:
            findings = verify_incident(incident, verify_key)
            if findings:
                raise ExportRefused(f'refused, {incident.name} was altered: ' + '; '.join(str(f) for f in findings))
            manifest, contents = read_signed_files(incident, verify_key)
    except (IntegrityError, FileModeError, OSError) as error:
        raise ExportRefused(str(error)) from error
    encrypted = any(name.endswith(ENCRYPTED_SUFFIX) for name in contents)
    if encrypted and encryption_key is None:
        raise ExportRefused('the incident is encrypted; give the encryption key')
    sealed_bags = sorted(name for name in contents if name.endswith(('.mcap', f'.mcap{ENCRYPTED_SUFFIX}')))
    plain = {}
    try:
        for name, data in contents.items():
            if encrypted and name in (MANIFEST_FILE, SIGNATURE_FILE):
                continue  # it signs the encrypted files, which are not exported
            if name.endswith(ENCRYPTED_SUFFIX):
                name = name[:-len(ENCRYPTED_SUFFIX)]
                data = decrypt_bytes(data, encryption_key, name)
            plain[name] = data
    except EncryptionError as error:
        raise ExportRefused(str(error)) from error
    return ExportPlan(plain, sealed_bags[0].removesuffix(ENCRYPTED_SUFFIX) if sealed_bags else None,
                      manifest['files'][sealed_bags[0]]['sha256'] if manifest and sealed_bags else None,
                      not skip_verification, encrypted)


def export_incident(incident: Path, destination: Path, *, actor: str, reason: str, audit: AuditLog,
                    verify_key: Ed25519PublicKey | None, encryption_key: bytes | None = None,
                    skip_verification: bool = False,
                    finish: Callable[[Path, ExportPlan], None] | None = None) -> ExportResult:
    """Check and read (:func:`plan_export`), write the audit entry, then write the export from
    the bytes checked; ``finish(destination, plan)`` adds to it before it counts as done.

    The audit entry is durable before anything is written: if it cannot be written, nothing
    is exported. A failure after it removes the export again and is audited too (best
    effort). Raises ExportRefused (for the caller to audit, :func:`audit_refusal`), AuditError
    (nothing written), ExportFailed.
    """
    if not actor.strip() or not reason.strip():
        raise ExportRefused('an export needs who and why (they go into the audit log)')
    if destination.exists() or destination.is_symlink():
        raise ExportRefused(f'{destination.name} already exists')
    plan = plan_export(incident, verify_key=verify_key, encryption_key=encryption_key,
                       skip_verification=skip_verification)
    name = Path(incident).name
    audit.record(actor, 'export' if plan.verified else 'export-unverified', name,
                 f'{reason} -> {destination.resolve()}')
    try:
        PRIVATE.folder(destination)
        for relative, data in plan.contents.items():
            target = destination / relative
            PRIVATE.folder(target.parent)
            PRIVATE.write(target, data)
        if finish is not None:
            finish(destination, plan)
    except Exception as error:
        shutil.rmtree(destination, ignore_errors=True)
        with contextlib.suppress(AuditError):
            audit.record(actor, 'export failed', name, f'{reason}: {error}')
        raise ExportFailed(f'export failed, nothing left behind: {error}') from error
    return ExportResult(destination, len(list(destination.rglob('*'))), plan.verified, plan.decrypted)


def audit_refusal(audit: AuditLog, actor: str, incident: Path, reason: str, refusal: Exception) -> None:
    """Write a refused export to the audit log; AuditError when the log cannot be written."""
    audit.record(actor.strip() or '-', 'export refused', Path(incident).name, f'{reason.strip() or "-"}: {refusal}')
