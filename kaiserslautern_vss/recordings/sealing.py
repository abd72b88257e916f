"""The step after an incident bag is closed: optionally encrypt it, then sign its manifest;
and, at start-up, the same for bags a crash left unfinished.

Sealing is resumable: a crash anywhere in it leaves a folder without a valid manifest
(``manifest.sig`` is written last), which :func:`recover_incidents` seals again.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaiserslautern_vss.recordings.bag_writer import rebuild_unfinished_bag
from kaiserslautern_vss.recordings.encryption import ENCRYPTED_SUFFIX, EncryptionError, decrypt_file, encrypt_folder
from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModes
from kaiserslautern_vss.recordings.integrity import (METADATA_FILE, IncidentRecord, IntegrityError, bag_problems,
                                                     describe_bag, is_sealed, write_manifest)
from kaiserslautern_vss.recordings.retention import incident_folders


def _metadata(folder: Path, encryption_key: bytes | None) -> bytes:
    plain = folder / METADATA_FILE
    if plain.is_file():
        return plain.read_bytes()
    encrypted = folder / (METADATA_FILE + ENCRYPTED_SUFFIX)
    if encryption_key is None or not encrypted.is_file():
        raise IntegrityError(f'{folder}: no {METADATA_FILE} (the bag was never finished)')
    return decrypt_file(encrypted, encryption_key, METADATA_FILE)


def seal_incident(folder: Path, signing_key: Ed25519PrivateKey, encryption_key: bytes | None = None, *,
                  recovered: bool = False, cut: str | None = None, modes: FileModes = PRIVATE) -> Path:
    """Encrypt (if a key is given) and sign; returns the manifest path.

    Raises IntegrityError when the folder's bag contradicts its incident record (it is
    then left unsigned), EncryptionError or OSError on key or disk trouble.
    """
    folder = Path(folder)
    record = IncidentRecord.read(folder)
    bag = describe_bag(_metadata(folder, encryption_key))
    problems = bag_problems(record, bag)
    if problems:
        raise IntegrityError(f'{folder}: ' + '; '.join(problems))
    if encryption_key is not None:
        encrypt_folder(folder, encryption_key, modes)
    modes.tree(folder)
    return write_manifest(folder, signing_key, record, bag, recovered=recovered, cut=cut, modes=modes)


@dataclass(frozen=True)
class Recovery:
    """What start-up recovery did with one unsealed incident folder."""

    path: Path
    outcome: str  # 'sealed' (recovered and signed), 'removed' (nothing readable), 'failed'
    detail: str = ''


def recover_incidents(root: Path, signing_key: Ed25519PrivateKey, encryption_key: bytes | None = None, *,
                      in_use: Collection[Path] = (), modes: FileModes = PRIVATE) -> list[Recovery]:
    """Finish and seal every incident folder under ``root`` that has no valid manifest
    (a crash while recording or sealing), except those in ``in_use``.

    An unfinished bag is rebuilt (readable by rosbags and mcap again), then sealed with
    ``recovered: true`` in its manifest, encrypted when a key is given. A folder with no
    readable message (killed right after it was created) is removed, so no empty
    incident stays behind. Never raises on a single folder's trouble.
    """
    results = []
    busy = {Path(p) for p in in_use}
    for folder, _ in incident_folders(root):  # no sizes needed: runs at every retention check
        if folder in busy or is_sealed(folder):
            continue
        try:
            unfinished = not any(folder.glob(f'{METADATA_FILE}*'))
            if unfinished and rebuild_unfinished_bag(folder, modes) == 0:
                shutil.rmtree(folder)
                results.append(Recovery(folder, 'removed', 'no complete message was written before the crash'))
                continue
            seal_incident(folder, signing_key, encryption_key, recovered=True, modes=modes)
            results.append(Recovery(folder, 'sealed', 'rebuilt from an unfinished bag' if unfinished
                                    else 'closed but not yet sealed'))
        except (OSError, IntegrityError, EncryptionError) as error:
            results.append(Recovery(folder, 'failed', str(error)))
    shutil.rmtree(Path(root) / '.rebuild', ignore_errors=True)
    return results
