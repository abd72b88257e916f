"""vss-verify: check incident folders against their signed manifests.

    vss-verify --key /etc/kaiserslautern_vss/signing_key.pem.pub recordings/20261126T153012Z_cam01_...
    vss-verify --key KEY --all recordings/

Exit status 0: every incident intact; 1: something was altered (each finding printed:
altered / removed / added file, bad signature, no manifest); 2: bad arguments or key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaiserslautern_vss.events.integrity import IntegrityError, load_public_key, verify_incident
from kaiserslautern_vss.events.retention import scan_incidents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-verify', description=__doc__.split('\n\n')[0])
    parser.add_argument('--key', required=True, type=Path,
                        help='Ed25519 public key (signing_key.pem.pub) or the private key file')
    parser.add_argument('--all', action='store_true', help='PATH is a recordings folder: check every incident')
    parser.add_argument('paths', nargs='+', type=Path, help='incident folder(s)')
    args = parser.parse_args(argv)
    try:
        key = load_public_key(args.key)
    except IntegrityError as error:
        print(f'vss-verify: {error}', file=sys.stderr)
        return 2
    folders = ([i.path for root in args.paths for i in scan_incidents(root)] if args.all else args.paths)
    altered = 0
    for folder in folders:
        findings = verify_incident(folder, key)
        print(f'{"ALTERED" if findings else "OK"} {folder}')
        for finding in findings:
            print(f'  {finding}')
        altered += bool(findings)
    return 1 if altered else 0


if __name__ == '__main__':
    raise SystemExit(main())
