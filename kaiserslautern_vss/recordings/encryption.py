"""Optional encryption at rest of incident files (AES-256-GCM, ``cryptography``).

Each file ``NAME`` becomes ``NAME.enc`` = 12-byte random nonce followed by the AES-GCM
ciphertext+tag, with the relative file name as associated data (a file renamed or moved
to another incident fails to decrypt). The key is 32 random bytes in a file outside the
recordings, mode 0600, created on first use. The signed manifest is made after
encryption, so ``vss-verify`` checks an encrypted incident without the key.
``incident.json`` (ids, camera, rule, start; no image content) stays plain so that crash
recovery and ``vss-verify`` can read it.

Every ``.enc`` is written completely (atomically) before any plain file is removed, and
``metadata.yaml`` is removed last: after a crash at any point either the plain
``metadata.yaml`` is still there or everything is encrypted, and sealing can resume.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModeError, FileModes, read_regular
from kaiserslautern_vss.recordings.integrity import INCIDENT_FILE, METADATA_FILE, UNSIGNED_FILES, folder_entries

ENCRYPTED_SUFFIX = '.enc'
KEY_BYTES = 32
_NONCE_BYTES = 12
_PLAIN_FILES = UNSIGNED_FILES | {INCIDENT_FILE}


class EncryptionError(RuntimeError):
    """A key that cannot be used or a file that does not decrypt (wrong key, altered)."""


def load_or_create_key(path: Path, recordings: Path | None = None,
                       modes: FileModes = PRIVATE) -> tuple[bytes, bool]:
    """The AES-256 key in ``path`` (``(key, created)``); refuses a path inside the recordings."""
    path = Path(path).expanduser().resolve()
    if recordings is not None and path.is_relative_to(Path(recordings).resolve()):
        raise EncryptionError(f'encryption key {path} is inside the recordings {recordings}; keep it outside')
    try:
        return modes.secret(path, 'encryption key', KEY_BYTES)
    except (OSError, FileModeError) as error:
        raise EncryptionError(f'cannot use encryption key {path}: {error}') from error


def encrypt_folder(folder: Path, key: bytes, modes: FileModes = PRIVATE) -> list[Path]:
    """Replace every plain file of ``folder`` by its ``.enc`` form; returns the new files."""
    cipher = AESGCM(key)
    files, _ = folder_entries(folder)
    plain = sorted((name for name in files if name not in _PLAIN_FILES and not name.endswith(ENCRYPTED_SUFFIX)),
                   key=lambda name: name == METADATA_FILE)  # metadata.yaml last
    written = []
    for name in plain:
        nonce = os.urandom(_NONCE_BYTES)
        target = files[name].with_name(files[name].name + ENCRYPTED_SUFFIX)
        written.append(modes.write(target, nonce + cipher.encrypt(nonce, files[name].read_bytes(), name.encode())))
    for name in plain:
        files[name].unlink()
    return written


def decrypt_file(path: Path, key: bytes, name: str) -> bytes:
    """The plain bytes of one ``.enc`` file whose relative name (without .enc) is ``name``."""
    data = read_regular(Path(path))
    try:
        return AESGCM(key).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], name.encode())
    except InvalidTag as error:
        raise EncryptionError(f'{path} does not decrypt: wrong key or altered file') from error


def decrypt_folder(folder: Path, key: bytes, destination: Path, modes: FileModes = PRIVATE) -> list[Path]:
    """Plain copies of every ``.enc`` file of ``folder`` under ``destination`` (links never followed)."""
    files, _ = folder_entries(folder)
    written = []
    for name, path in files.items():
        if name.endswith(ENCRYPTED_SUFFIX):
            plain_name = name[:-len(ENCRYPTED_SUFFIX)]
            target = Path(destination) / plain_name
            modes.folder(target.parent)
            written.append(modes.write(target, decrypt_file(path, key, plain_name)))
    return written
