"""Evidence marks, signature checks and police exports from the console, each audited.

The same functions as ``vss-evidence``, ``vss-verify`` and ``vss-export`` use, so a mark
or export made in the browser is the same as one made in a shell, signed with the same
key and written to the same keyed audit log. A police export adds what a shell export
lacks: a playable video of the anonymised frames (the recorded JPEGs unchanged, as MJPEG
AVI, which VLC and the Windows player open) and one ZIP archive with the incident's
manifest, bag, video and an ``export.json`` listing every file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import imageio_ffmpeg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaiserslautern_vss.console.playback import Recording
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.export import ExportError, export_incident
from kaiserslautern_vss.recordings.file_modes import PRIVATE
from kaiserslautern_vss.recordings.integrity import mark_evidence, release_evidence, verify_incident


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


SAFE_CASE = re.compile(r'[A-Za-z0-9_-][A-Za-z0-9._-]*')


@dataclass(frozen=True)
class PoliceExport:
    folder: Path  # the exported incident (vss-export's result plus the video and export.json)
    archive: Path  # all of it in one ZIP, beside the folder

    @property
    def case_folder(self) -> str:
        return self.folder.parent.name


def export_destination(export_root: Path, case_reference: str, folder: Path) -> Path:
    """``<export_root>/<case reference, filesystem-safe>/<incident>``."""
    safe_case = re.sub(r'[^A-Za-z0-9._-]+', '_', case_reference).strip('._') or 'Fall'
    return Path(export_root) / safe_case / folder.name


def write_video(recording: Recording, path: Path) -> None:
    """The recording's JPEGs, unchanged, as an MJPEG AVI at the recording's frame rate."""
    stamps = [frame.stamp_ns for frame in recording.frames]
    intervals = [b - a for a, b in zip(stamps, stamps[1:]) if b > a]
    fps = min(60.0, max(1.0, 1e9 / statistics.median(intervals))) if intervals else 1.0
    command = [imageio_ffmpeg.get_ffmpeg_exe(), '-nostdin', '-loglevel', 'error', '-f', 'mjpeg', '-r', f'{fps:.3f}',
               '-i', '-', '-c:v', 'copy', '-y', str(path)]
    result = subprocess.run(command, input=b''.join(frame.jpeg for frame in recording.frames),
                            capture_output=True, timeout=300, check=False)
    if result.returncode != 0:
        raise CaseworkError(f'Video nicht erstellt: {result.stderr.decode(errors="replace").strip()}')
    PRIVATE.file(path)


def _archive(folder: Path, description: dict) -> Path:
    """``<folder>.zip`` (0600) holding the folder's files under the incident's name."""
    files = sorted(p for p in folder.rglob('*') if p.is_file())
    description['files'] = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in files}
    PRIVATE.write(folder / 'export.json', json.dumps(description, indent=1, sort_keys=True).encode())
    archive = folder.with_name(folder.name + '.zip')
    with os.fdopen(os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'wb') as stream, \
            zipfile.ZipFile(stream, 'w', zipfile.ZIP_STORED) as bundle:  # JPEG and bags do not compress
        for path in [*files, folder / 'export.json']:
            bundle.write(path, f'{folder.name}/{path.relative_to(folder).as_posix()}')
    return archive


def export_for_case(folder: Path, recording: Recording, *, case_reference: str, who: str, when: datetime,
                    export_root: Path, signing_key: Ed25519PrivateKey, encryption_key: bytes | None,
                    audit: AuditLog) -> PoliceExport:
    """Export through vss-export's path (verified, decrypted, audited there), add the video
    and export.json, pack the archive."""
    case_reference = _require(case_reference, 'Aktenzeichen')
    destination = export_destination(export_root, case_reference, folder)
    if destination.exists():
        raise CaseworkError(f'Für dieses Aktenzeichen wurde der Vorfall bereits exportiert: {destination}')
    PRIVATE.folder(destination.parent)
    try:
        export_incident(folder, destination, actor=who, reason=f'Aktenzeichen {case_reference}', audit=audit,
                        verify_key=signing_key.public_key(), encryption_key=encryption_key)
    except ExportError as error:
        raise CaseworkError(f'Export abgelehnt: {error}') from error
    write_video(recording, destination / f'{folder.name}.avi')
    archive = _archive(destination, {'case_reference': case_reference, 'incident': folder.name, 'exported_by': who,
                                     'exported_at': when.isoformat(), 'verified': True,
                                     'video': f'{folder.name}.avi (the recorded anonymised JPEGs, unchanged)'})
    return PoliceExport(destination, archive)
