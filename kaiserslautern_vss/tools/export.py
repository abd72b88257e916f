"""vss-export: copy an incident out of the recordings for an authorised user, decrypted.

    vss-export recordings/20261126T153012Z_cam01_... --to /media/usb/case123 \
        --by "PHK Meier" --why "Az. 123/26" --encryption-key /etc/kaiserslautern_vss/recordings.key \
        [--verify-key /etc/kaiserslautern_vss/signing_key.pem.pub]

The incident is verified against its signed manifest first (refused if altered), then
decrypted (or copied, if stored unencrypted) and the export appended to the hash-chained
audit log (who, when, what, why). Exit 0 done, 1 refused (altered), 2 bad arguments/key.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from kaiserslautern_vss.events.audit import append_audit
from kaiserslautern_vss.events.encryption import ENCRYPTED_SUFFIX, EncryptionError, decrypt_folder
from kaiserslautern_vss.events.integrity import (EVIDENCE_FILE, IntegrityError, load_public_key,
                                                 verify_incident)
from kaiserslautern_vss.tools.evidence import default_audit_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-export', description=__doc__.split('\n\n')[0])
    parser.add_argument('incident', type=Path)
    parser.add_argument('--to', required=True, type=Path, help='destination folder (must not exist)')
    parser.add_argument('--by', required=True, help='who exports (name, badge number)')
    parser.add_argument('--why', required=True, help='legal basis / case number')
    parser.add_argument('--encryption-key', type=Path, help='AES-256 key file (encrypted recordings)')
    parser.add_argument('--verify-key', type=Path, help='Ed25519 public key: refuse altered incidents')
    parser.add_argument('--audit-log', type=Path)
    args = parser.parse_args(argv)
    if not args.by.strip() or not args.why.strip():
        print('vss-export: --by and --why must not be empty', file=sys.stderr)
        return 2
    if args.to.exists():
        print(f'vss-export: {args.to} already exists', file=sys.stderr)
        return 2
    try:
        if args.verify_key is not None:
            findings = verify_incident(args.incident, load_public_key(args.verify_key))
            if findings:
                print(f'vss-export: refused, {args.incident} was altered:', file=sys.stderr)
                for finding in findings:
                    print(f'  {finding}', file=sys.stderr)
                return 1
        encrypted = any(args.incident.rglob(f'*{ENCRYPTED_SUFFIX}'))
        if encrypted:
            if args.encryption_key is None:
                print('vss-export: the incident is encrypted; give --encryption-key', file=sys.stderr)
                return 2
            decrypt_folder(args.incident, args.encryption_key.read_bytes(), args.to)
        else:
            shutil.copytree(args.incident, args.to, ignore=shutil.ignore_patterns(EVIDENCE_FILE))
    except (IntegrityError, EncryptionError, OSError) as error:
        shutil.rmtree(args.to, ignore_errors=True)
        print(f'vss-export: {error}', file=sys.stderr)
        return 2
    append_audit(args.audit_log or default_audit_log(args.incident), who=args.by, what='export',
                 target=args.incident.resolve().name, why=f'{args.why} -> {args.to.resolve()}',
                 when=datetime.now(timezone.utc))
    print(f'exported {args.incident} to {args.to}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
