"""vss-evidence: mark incidents as evidence (kept beyond retention and quota) or release them.

    vss-evidence mark recordings/20261126T153012Z_cam01_... --by "PHK Meier" --why "Az. 123/26"
    vss-evidence release recordings/20261126T153012Z_cam01_... --by "PHK Meier" --why "case closed"
    vss-evidence list recordings/

Every mark and release is appended to the hash-chained audit log (--audit-log,
default: audit.log beside the recordings folder).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from kaiserslautern_vss.events.audit import append_audit
from kaiserslautern_vss.events.retention import mark_evidence, scan_incidents, unmark_evidence


def default_audit_log(incident: Path) -> Path:
    """``audit.log`` beside the recordings folder holding ``incident``."""
    return Path(incident).resolve().parent.parent / 'audit.log'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-evidence', description=__doc__.split('\n\n')[0])
    parser.add_argument('action', choices=('mark', 'release', 'list'))
    parser.add_argument('path', type=Path, help='incident folder (mark/release) or recordings folder (list)')
    parser.add_argument('--by', default='', help='who (name, badge number)')
    parser.add_argument('--why', default='', help='why (case number, request)')
    parser.add_argument('--audit-log', type=Path)
    args = parser.parse_args(argv)
    if args.action == 'list':
        for incident in scan_incidents(args.path):
            print(f'{"EVIDENCE" if incident.evidence else "        "} {incident.started.isoformat()} '
                  f'{incident.size_bytes / 1e6:8.1f} MB {incident.path.name}')
        return 0
    if not args.by.strip() or not args.why.strip():
        print('vss-evidence: --by and --why are required (they go into the audit log)', file=sys.stderr)
        return 2
    now = datetime.now(timezone.utc)
    try:
        if args.action == 'mark':
            mark_evidence(args.path, args.by, args.why, now)
        elif not unmark_evidence(args.path):
            print(f'vss-evidence: {args.path} is not marked as evidence', file=sys.stderr)
            return 1
    except OSError as error:
        print(f'vss-evidence: {error}', file=sys.stderr)
        return 2
    append_audit(args.audit_log or default_audit_log(args.path), who=args.by, what=f'evidence {args.action}',
                 target=args.path.resolve().name, why=args.why, when=now)
    print(f'{args.action}: {args.path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
