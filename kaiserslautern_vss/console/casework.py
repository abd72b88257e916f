"""Evidence marks, signature checks and police exports from the console, each audited.

The same functions as ``vss-evidence``, ``vss-verify`` and ``vss-export`` use, so a mark
or export made in the browser is the same as one made in a shell, signed with the same
key and written to the same keyed audit log. A police export adds what a shell export
lacks: a playable video of the anonymised frames (the recorded JPEGs unchanged, as MJPEG
AVI, which VLC and the Windows player open) and one ZIP archive with the incident's
manifest, bag, video and an ``export.json`` listing every file's SHA-256 and the bag the
video was made from (``vss-verify --export`` checks it).

Every change is audited first: the entry is durable before the mark, release or export
takes effect, and without it nothing changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
import urllib.parse
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaiserslautern_vss.console.playback import recording_from_bag
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.export import ExportPlan, ExportRefused, export_incident
from kaiserslautern_vss.recordings.export_video import write_video
from kaiserslautern_vss.recordings.file_modes import PRIVATE
from kaiserslautern_vss.recordings.integrity import (EVIDENCE_FILE, is_sealed, mark_evidence, release_evidence,
                                                     sha256_file, verify_incident)


class CaseworkError(RuntimeError):
    """An action refused (no reason given, nothing to release, export refused); a German
    message for the user that names no server path."""


def _require(text: str, what: str) -> str:
    if not text.strip():
        raise CaseworkError(f'{what} fehlt (Pflichtangabe für das Protokoll)')
    return text.strip()


def set_evidence(folder: Path, mark: bool, *, who: str, why: str, when: datetime, audit: AuditLog,
                 signing_key: Ed25519PrivateKey | None) -> None:
    """Mark or release after the audit entry is durable (AuditError: nothing changed)."""
    why = _require(why, 'Begründung')
    if mark and signing_key is None:
        raise CaseworkError('Kein Signaturschlüssel konfiguriert: Beweismittel können hier nicht markiert werden')
    if mark and not is_sealed(folder):
        raise CaseworkError('Nur abgeschlossene, versiegelte Vorfälle können Beweismittel werden')
    if not mark and not (folder / EVIDENCE_FILE).is_file():
        raise CaseworkError('Der Vorfall ist nicht als Beweismittel markiert')
    action = f'evidence {"mark" if mark else "release"}'
    audit.record(who, action, folder.name, why, when=when)
    try:
        if mark:
            mark_evidence(folder, signing_key, who, why, when)
        else:
            release_evidence(folder)
    except OSError as error:  # audited as failed: the entry before it must not stand alone
        audit.record(who, f'{action} failed', folder.name, f'{why}: {error}', when=when)
        raise


def verify_signature(folder: Path, signing_key: Ed25519PrivateKey, *, who: str, when: datetime,
                     audit: AuditLog) -> list[str]:
    """What differs from what was signed (empty: intact)."""
    findings = [str(finding) for finding in verify_incident(folder, signing_key.public_key())]
    audit.record(who, 'verify', folder.name, 'Signaturprüfung: ' + ('unverändert' if not findings
                                                                    else '; '.join(findings)), when=when)
    return findings


MAX_CASE_REFERENCE = 80
MAX_CASE_FOLDER = 240  # bytes of the folder name (file systems allow 255)


def case_reference(text: str) -> str:
    """The case reference as entered (surrounding blanks dropped), or CaseworkError for one
    that cannot be kept exactly: empty, too long, or with control or invisible characters."""
    reference = _require(text, 'Aktenzeichen')
    if len(reference) > MAX_CASE_REFERENCE:
        raise CaseworkError(f'Aktenzeichen zu lang: höchstens {MAX_CASE_REFERENCE} Zeichen')
    if any(unicodedata.category(c)[0] in 'CZ' and c != ' ' for c in reference):
        raise CaseworkError('Aktenzeichen enthält Steuerzeichen oder unsichtbare Zeichen: bitte ohne sie eingeben')
    if len(case_folder_name(reference)) > MAX_CASE_FOLDER:
        raise CaseworkError('Aktenzeichen zu lang für einen Ordnernamen: bitte kürzer eingeben')
    return reference


def case_folder_name(reference: str) -> str:
    """The folder of a case reference: UTF-8 percent-encoding of every character outside
    ``[A-Za-z0-9._-]`` (and of a leading dot). Injective, so two references never share a
    folder; :func:`urllib.parse.unquote` gives the reference back."""
    name = urllib.parse.quote(reference, safe='').replace('~', '%7E')
    return '%2E' + name[1:] if name.startswith('.') else name


def is_case_folder(name: str) -> bool:
    """True if ``name`` is the folder of some valid case reference (nothing else is served)."""
    try:
        return case_folder_name(case_reference(urllib.parse.unquote(name, errors='strict'))) == name
    except (CaseworkError, UnicodeDecodeError):
        return False


@dataclass(frozen=True)
class PoliceExport:
    folder: Path  # the exported incident (vss-export's result plus the video and export.json)
    archive: Path  # all of it in one ZIP, beside the folder

    @property
    def case_folder(self) -> str:
        return self.folder.parent.name


def _archive(folder: Path, description: dict) -> Path:
    """``<folder>.zip`` (0600) holding the folder's files under the incident's name."""
    files = sorted(p for p in folder.rglob('*') if p.is_file())
    description['files'] = {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}
    PRIVATE.write(folder / 'export.json', json.dumps(description, indent=1, sort_keys=True).encode())
    archive = folder.with_name(folder.name + '.zip')
    with os.fdopen(os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'wb') as stream, \
            zipfile.ZipFile(stream, 'w', zipfile.ZIP_STORED) as bundle:  # JPEG and bags do not compress
        for path in [*files, folder / 'export.json']:
            bundle.write(path, f'{folder.name}/{path.relative_to(folder).as_posix()}')
    return archive


def export_for_case(folder: Path, *, case_reference_text: str, who: str, when: datetime, export_root: Path,
                    signing_key: Ed25519PrivateKey, encryption_key: bytes | None, audit: AuditLog) -> PoliceExport:
    """Export through vss-export's path (checked, audited first, decrypted), add the video made
    from the very bag bytes that were checked and an export.json naming that bag, pack the
    archive. CaseworkError: refused (for the caller to audit); AuditError: nothing done."""
    reference = case_reference(case_reference_text)
    destination = Path(export_root) / case_folder_name(reference) / folder.name
    archive = destination.with_name(destination.name + '.zip')
    if destination.exists() or archive.exists():
        raise CaseworkError('Für dieses Aktenzeichen wurde der Vorfall bereits exportiert')

    def finish(target: Path, plan: ExportPlan) -> None:
        if plan.bag is None:
            raise CaseworkError('Der Vorfall enthält keine Aufzeichnung')
        recording = recording_from_bag(folder.name, plan.contents[plan.bag], plan.decrypted)
        stamps = [frame.stamp_ns for frame in recording.frames]
        video = f'{folder.name}.avi'
        fps = write_video([frame.jpeg for frame in recording.frames], stamps, target / video)
        PRIVATE.folder(target.parent)
        try:
            _archive(target, {
                'case_reference': reference, 'incident': folder.name, 'exported_by': who,
                'exported_at': when.isoformat(), 'verified': plan.verified,
                'bag': {'file': plan.bag, 'sha256': hashlib.sha256(plan.contents[plan.bag]).hexdigest(),
                        'signed_sha256': plan.signed_bag_sha256, 'encrypted_at_rest': plan.decrypted,
                        'frames': len(stamps), 'first_ns': stamps[0] if stamps else None,
                        'last_ns': stamps[-1] if stamps else None},
                'video': {'file': video, 'frames': len(stamps), 'fps': fps,
                          'made_from': 'the bag above: its anonymised JPEGs, unchanged, in order'}})
        except BaseException:
            archive.unlink(missing_ok=True)
            raise

    try:
        export_incident(folder, destination, actor=who, reason=f'Aktenzeichen {reference}', audit=audit,
                        verify_key=signing_key.public_key(), encryption_key=encryption_key, finish=finish)
    except ExportRefused as error:
        raise CaseworkError(f'Export abgelehnt: {error}') from error
    return PoliceExport(destination, archive)
