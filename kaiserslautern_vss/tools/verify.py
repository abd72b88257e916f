"""vss-verify: check incident folders against their signed manifests, and the audit log.

    vss-verify --key /etc/kaiserslautern_vss/signing_key.pem.pub recordings/20261126T153012Z_cam01_...
    vss-verify --key KEY --all recordings/
    vss-verify --audit-log audit.log --audit-key /etc/kaiserslautern_vss/audit.key
    vss-verify --key KEY --export exports/Az.%20123%2F26/20261126T153012Z_cam01_...

An incident is OK only if its manifest is signed by the key, every file is as signed
(nothing altered, removed, added; no links or special files), the folder still has the
name it was signed under (name = date and camera), its bag's camera and time range
match the manifest, and an evidence mark, if any, is signed for this incident. A
recovered (crash) or cut (disk full) incident that verifies is printed as ``OK
(recovered)`` / ``OK (cut: why)``.

A police export (``--export``) is OK only if, besides all that for the incident files it
carries, its video was made from a signed bag of the incident: the bag named in
``export.json`` has the SHA-256 the signed manifest lists (and export.json records), and
the video's frames are that bag's JPEGs, all of them, in order, at the frame rate of the
bag's frame times (so frame count and time range match). Exports of encrypted incidents
carry no signed manifest (it signs the encrypted files) and cannot be checked this way.

Exit status 0: everything intact; 1: something was altered (each finding printed);
2: bad arguments or key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kaiserslautern_vss.console.playback import recording_from_bag
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.export_video import video_problems
from kaiserslautern_vss.recordings.file_modes import FileModeError, read_regular
from kaiserslautern_vss.recordings.integrity import (IntegrityError, load_public_key, read_manifest, read_signed_files,
                                                     verify_incident)
from kaiserslautern_vss.recordings.retention import incident_folders

EXPORT_DESCRIPTION = 'export.json'


def _state(folder: Path) -> str:
    manifest = read_manifest(folder)
    notes = (['recovered'] if manifest.get('recovered') else []) + (
        [f'cut: {manifest["cut"]}'] if manifest.get('cut') else [])
    return f' ({"; ".join(notes)})' if notes else ''


def export_problems(folder: Path, key: Ed25519PublicKey) -> list[str]:
    """How a police export fails to be a signed incident with a video made from its signed bag."""
    try:
        description = json.loads(read_regular(folder / EXPORT_DESCRIPTION))
        bag, video = description['bag'], description['video']
    except (OSError, FileModeError, ValueError, KeyError, TypeError) as error:
        return [f'{EXPORT_DESCRIPTION} missing or unreadable: {error}']
    own = {EXPORT_DESCRIPTION, video.get('file')}
    findings = [str(f) for f in verify_incident(folder, key) if not (f.kind == 'added' and f.path in own)]
    if findings:
        return findings
    try:
        manifest, contents = read_signed_files(folder, key)
        signed = manifest['files'][bag['file']]['sha256']
    except (IntegrityError, KeyError, TypeError) as error:
        return [f'the bag named in {EXPORT_DESCRIPTION} is not a signed file of the incident: {error}']
    actual = hashlib.sha256(contents[bag['file']]).hexdigest()
    problems = [] if signed == bag.get('signed_sha256') == bag.get('sha256') == actual else [
        f'bag {bag["file"]}: the hash in {EXPORT_DESCRIPTION} is not the signed one']
    problems += [f'{name}: not as listed in {EXPORT_DESCRIPTION}'
                 for name, digest in description.get('files', {}).items()
                 if name in contents and hashlib.sha256(contents[name]).hexdigest() != digest]
    frames = recording_from_bag(folder.name, contents[bag['file']], False).frames
    stamps = [frame.stamp_ns for frame in frames]
    if (bag.get('frames'), bag.get('first_ns'), bag.get('last_ns')) != (len(stamps), stamps[0] if stamps else None,
                                                                        stamps[-1] if stamps else None):
        problems.append(f'{EXPORT_DESCRIPTION} states another frame count or time range than the bag holds')
    return problems + video_problems(folder / video['file'], [frame.jpeg for frame in frames], stamps)


def _verify_incidents(key_path: Path, paths: list[Path], every: bool, exports: bool = False) -> int:
    key = load_public_key(key_path)
    folders = [folder for root in paths for folder, _ in incident_folders(root)] if every else paths
    altered = 0
    for folder in folders:
        findings = export_problems(folder, key) if exports else verify_incident(folder, key)
        print(f'ALTERED {folder}' if findings else f'OK {folder}{_state(folder)}')
        for finding in findings:
            print(f'  {finding}')
        altered += bool(findings)
    return altered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-verify', description=__doc__.split('\n\n')[0])
    parser.add_argument('--key', type=Path, help='Ed25519 public key (signing_key.pem.pub) or the private key file')
    parser.add_argument('--all', action='store_true', help='PATH is a recordings folder: check every incident')
    parser.add_argument('--export', action='store_true',
                        help='PATH is a police export: also check that its video was made from the signed bag')
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
        altered = _verify_incidents(args.key, args.paths, args.all, args.export) if args.paths else 0
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
