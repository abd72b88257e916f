"""vss-export: copy an incident out of the recordings for an authorised user, decrypted.

    vss-export recordings/20261126T153012Z_cam01_... --to /media/usb/case123 \
        --by "PHK Meier" --why "Az. 123/26" --verify-key /etc/kaiserslautern_vss/signing_key.pem.pub \
        [--encryption-key /etc/kaiserslautern_vss/recordings.key] [--audit-log ... --audit-key ...]

The incident is verified against its signed manifest first and refused if anything was
altered; skipping that takes ``--no-verify`` and is written to the audit log as such.
Only regular files inside the incident folder are read, never through a symbolic link
(a link or special file planted in the incident is refused, even with ``--no-verify``).
The export is created 0700 (folders) / 0600 (files) and appended to the keyed audit log
(who, when, what, why, where to); an export that cannot be audited is removed again.
Exit 0 done, 1 refused (altered or unsafe), 2 bad arguments/key.

:func:`export_incident` is the same without argparse (for the operator console).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kaiserslautern_vss.events.audit import AuditError, AuditLog, default_audit_log
from kaiserslautern_vss.events.encryption import ENCRYPTED_SUFFIX, EncryptionError, decrypt_file
from kaiserslautern_vss.events.file_modes import PRIVATE, FileModeError, read_regular
from kaiserslautern_vss.events.integrity import (EVIDENCE_FILE, EVIDENCE_SIGNATURE_FILE, MANIFEST_FILE,
                                                 SIGNATURE_FILE, IntegrityError, folder_entries, load_public_key,
                                                 verify_incident)
from kaiserslautern_vss.parameters.event_manager import DEFAULT_AUDIT_KEY_FILE


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-export', description=__doc__.split('\n\n')[0])
    parser.add_argument('incident', type=Path)
    parser.add_argument('--to', required=True, type=Path, help='destination folder (must not exist)')
    parser.add_argument('--by', required=True, help='who exports (name, badge number)')
    parser.add_argument('--why', required=True, help='legal basis / case number')
    parser.add_argument('--verify-key', type=Path, help='Ed25519 public key: altered incidents are refused')
    parser.add_argument('--no-verify', action='store_true',
                        help='export without verification (written to the audit log as such)')
    parser.add_argument('--encryption-key', type=Path, help='AES-256 key file (encrypted recordings)')
    parser.add_argument('--audit-log', type=Path, help='default: audit.log beside the recordings folder')
    parser.add_argument('--audit-key', type=Path, default=Path(DEFAULT_AUDIT_KEY_FILE).expanduser())
    args = parser.parse_args(argv)
    if args.verify_key is None and not args.no_verify:
        parser.error('--verify-key is required (or --no-verify, which is audited)')
    try:
        key = load_public_key(args.verify_key) if args.verify_key is not None else None
        aes = read_regular(args.encryption_key) if args.encryption_key is not None else None
        audit = AuditLog(args.audit_log or default_audit_log(args.incident.parent), args.audit_key)
    except (IntegrityError, FileModeError, OSError) as error:
        print(f'vss-export: {error}', file=sys.stderr)
        return 2
    try:
        result = export_incident(args.incident, args.to, actor=args.by, reason=args.why, audit=audit,
                                 verify_key=key, encryption_key=aes, skip_verification=args.no_verify)
    except ExportError as error:
        print(f'vss-export: {error}', file=sys.stderr)
        return 1
    print(f'exported {args.incident} to {result.destination}'
          + ('' if result.verified else ' WITHOUT verification (audited)'))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
