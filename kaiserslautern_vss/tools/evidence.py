"""vss-evidence: mark incidents as evidence (kept beyond retention and quota) or release them.

    vss-evidence mark recordings/20261126T153012Z_cam01_... --by "PHK Meier" --why "Az. 123/26"
    vss-evidence release recordings/20261126T153012Z_cam01_... --by "PHK Meier" --why "case closed"
    vss-evidence list recordings/

A mark is signed with the recordings' signing key (``vss-verify`` checks it) and only
sealed incidents can be marked. Every mark and release is appended to the keyed audit
log (--audit-log, default: audit.log beside the recordings folder; --audit-key).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from kaiserslautern_vss.parameters.event_manager import DEFAULT_AUDIT_KEY_FILE, DEFAULT_SIGNING_KEY_FILE
from kaiserslautern_vss.recordings.audit import AuditError, AuditLog, default_audit_log
from kaiserslautern_vss.recordings.file_modes import FileModeError
from kaiserslautern_vss.recordings.integrity import (IntegrityError, is_sealed, load_or_create_signing_key,
                                                     mark_evidence, release_evidence)
from kaiserslautern_vss.recordings.retention import scan_incidents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-evidence', description=__doc__.split('\n\n')[0])
    parser.add_argument('action', choices=('mark', 'release', 'list'))
    parser.add_argument('path', type=Path, help='incident folder (mark/release) or recordings folder (list)')
    parser.add_argument('--by', default='', help='who (name, badge number)')
    parser.add_argument('--why', default='', help='why (case number, request)')
    parser.add_argument('--signing-key', type=Path, default=Path(DEFAULT_SIGNING_KEY_FILE).expanduser())
    parser.add_argument('--audit-log', type=Path)
    parser.add_argument('--audit-key', type=Path, default=Path(DEFAULT_AUDIT_KEY_FILE).expanduser())
    args = parser.parse_args(argv)
    if args.action == 'list':
        for incident in scan_incidents(args.path):
            marks = ('EVIDENCE ' if incident.evidence else ' ' * 9) + ('sealed  ' if is_sealed(incident.path) else 'UNSEALED')
            print(f'{marks} {incident.started.isoformat()} {incident.size_bytes / 1e6:8.1f} MB {incident.path.name}')
        return 0
    if not args.by.strip() or not args.why.strip():
        print('vss-evidence: --by and --why are required (they go into the audit log)', file=sys.stderr)
        return 2
    try:
        audit = AuditLog(args.audit_log or default_audit_log(args.path.parent), args.audit_key)
        if args.action == 'mark':
            if not args.signing_key.is_file():
                raise IntegrityError(f'signing key {args.signing_key} not found (give --signing-key)')
            key, _ = load_or_create_signing_key(args.signing_key)
            mark_evidence(args.path, key, args.by, args.why, datetime.now(timezone.utc))
        elif not release_evidence(args.path):
            print(f'vss-evidence: {args.path} is not marked as evidence', file=sys.stderr)
            return 1
        audit.append(args.by, f'evidence {args.action}', args.path.resolve().name, args.why)
    except (OSError, IntegrityError, FileModeError, AuditError) as error:
        print(f'vss-evidence: {error}', file=sys.stderr)
        return 2
    print(f'{args.action}: {args.path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
