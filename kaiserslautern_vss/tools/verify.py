"""vss-verify: check incident folders against their signed manifests, and the audit log.

    vss-verify --key /etc/kaiserslautern_vss/signing_key.pem.pub recordings/20261126T153012Z_cam01_...
    vss-verify --key KEY --all recordings/
    vss-verify --audit-log audit.log --audit-key /etc/kaiserslautern_vss/audit.key

An incident is OK only if its manifest is signed by the key, every file is as signed
(nothing altered, removed, added; no links or special files), the folder still has the
name it was signed under (name = date and camera), its bag's camera and time range
match the manifest, and an evidence mark, if any, is signed for this incident. A
recovered (crash) or cut (disk full) incident that verifies is printed as ``OK
(recovered)`` / ``OK (cut: why)``.

Exit status 0: everything intact; 1: something was altered (each finding printed);
2: bad arguments or key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.file_modes import FileModeError
from kaiserslautern_vss.recordings.integrity import IntegrityError, load_public_key, read_manifest, verify_incident
from kaiserslautern_vss.recordings.retention import incident_folders


def _state(folder: Path) -> str:
    manifest = read_manifest(folder)
    notes = (['recovered'] if manifest.get('recovered') else []) + (
        [f'cut: {manifest["cut"]}'] if manifest.get('cut') else [])
    return f' ({"; ".join(notes)})' if notes else ''


def _verify_incidents(key_path: Path, paths: list[Path], every: bool) -> int:
    key = load_public_key(key_path)
    folders = [folder for root in paths for folder, _ in incident_folders(root)] if every else paths
    altered = 0
    for folder in folders:
        findings = verify_incident(folder, key)
        print(f'ALTERED {folder}' if findings else f'OK {folder}{_state(folder)}')
        for finding in findings:
            print(f'  {finding}')
        altered += bool(findings)
    return altered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-verify', description=__doc__.split('\n\n')[0])
    parser.add_argument('--key', type=Path, help='Ed25519 public key (signing_key.pem.pub) or the private key file')
    parser.add_argument('--all', action='store_true', help='PATH is a recordings folder: check every incident')
    parser.add_argument('--audit-log', type=Path, help='also check this audit log (needs --audit-key)')
    parser.add_argument('--audit-key', type=Path, help='the audit log\'s HMAC key file')
    parser.add_argument('paths', nargs='*', type=Path, help='incident folder(s)')
    args = parser.parse_args(argv)
    if args.paths and args.key is None:
        parser.error('--key is needed to check incidents')
    if args.audit_log is not None and (args.audit_key is None or not args.audit_key.is_file()):
        parser.error('--audit-log needs an existing --audit-key')
    if not args.paths and args.audit_log is None:
        parser.error('nothing to check: give incident folders or --audit-log')
    try:
        altered = _verify_incidents(args.key, args.paths, args.all) if args.paths else 0
        if args.audit_log is not None:
            problems = AuditLog(args.audit_log, args.audit_key).verify()
            print(f'{"ALTERED" if problems else "OK"} {args.audit_log}')
            for problem in problems:
                print(f'  {problem}')
            altered += bool(problems)
    except (IntegrityError, FileModeError, OSError) as error:
        print(f'vss-verify: {error}', file=sys.stderr)
        return 2
    return 1 if altered else 0


if __name__ == '__main__':
    raise SystemExit(main())
