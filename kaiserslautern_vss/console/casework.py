"""Evidence marks, signature checks and police exports from the console, each audited.

The same functions as ``vss-evidence``, ``vss-verify`` and ``vss-export`` use, so a mark
or export made in the browser is the same as one made in a shell, signed with the same
key and written to the same keyed audit log.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaiserslautern_vss.events.audit import AuditLog
from kaiserslautern_vss.events.integrity import mark_evidence, release_evidence, verify_incident
from kaiserslautern_vss.tools.export import ExportError, export_incident


class CaseworkError(RuntimeError):
    """An action refused (no reason given, nothing to release, export failed); German message."""


def _require(text: str, what: str) -> str:
    if not text.strip():
        raise CaseworkError(f'{what} fehlt (Pflichtangabe für das Protokoll)')
    return text.strip()


def set_evidence(folder: Path, mark: bool, *, who: str, why: str, when: datetime, audit: AuditLog,
                 signing_key: Ed25519PrivateKey | None) -> None:
    why = _require(why, 'Begründung')
    if mark:
        if signing_key is None:
            raise CaseworkError('Kein Signaturschlüssel konfiguriert: Beweismittel können hier nicht markiert werden')
        try:
            mark_evidence(folder, signing_key, who, why, when)
        except FileNotFoundError as error:
            raise CaseworkError('Nur abgeschlossene, versiegelte Vorfälle können Beweismittel werden') from error
    elif not release_evidence(folder):
        raise CaseworkError('Der Vorfall ist nicht als Beweismittel markiert')
    audit.append(who, f'evidence {"mark" if mark else "release"}', folder.name, why, when=when)


def verify_signature(folder: Path, signing_key: Ed25519PrivateKey, *, who: str, when: datetime,
                     audit: AuditLog) -> list[str]:
    """What differs from what was signed (empty: intact)."""
    findings = [str(finding) for finding in verify_incident(folder, signing_key.public_key())]
    audit.append(who, 'verify', folder.name, 'Signaturprüfung: ' + ('unverändert' if not findings
                                                                    else '; '.join(findings)), when=when)
    return findings


def export_destination(export_root: Path, case_reference: str, folder: Path) -> Path:
    """``<export_root>/<case reference, filesystem-safe>/<incident>``."""
    safe_case = re.sub(r'[^A-Za-z0-9._-]+', '_', case_reference).strip('._') or 'Fall'
    return Path(export_root) / safe_case / folder.name


def export_for_case(folder: Path, *, case_reference: str, who: str, export_root: Path,
                    signing_key: Ed25519PrivateKey, encryption_key: bytes | None, audit: AuditLog) -> Path:
    """Export through vss-export's path (verified, decrypted, audited there); returns the destination."""
    case_reference = _require(case_reference, 'Aktenzeichen')
    destination = export_destination(export_root, case_reference, folder)
    if destination.exists():
        raise CaseworkError(f'Für dieses Aktenzeichen wurde der Vorfall bereits exportiert: {destination}')
    destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return export_incident(folder, destination, actor=who, reason=f'Aktenzeichen {case_reference}', audit=audit,
                               verify_key=signing_key.public_key(), encryption_key=encryption_key).destination
    except ExportError as error:
        raise CaseworkError(f'Export abgelehnt: {error}') from error
