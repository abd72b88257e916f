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

The export itself is :func:`kaiserslautern_vss.recordings.export.export_incident`, which the
operator console uses too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaiserslautern_vss.parameters.event_manager import DEFAULT_AUDIT_KEY_FILE
from kaiserslautern_vss.recordings.audit import AuditLog, default_audit_log
from kaiserslautern_vss.recordings.export import ExportError, export_incident
from kaiserslautern_vss.recordings.file_modes import FileModeError, read_regular
from kaiserslautern_vss.recordings.integrity import IntegrityError, load_public_key


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
