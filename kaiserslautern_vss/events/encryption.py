"""Optional encryption at rest of incident files (AES-256-GCM, ``cryptography``).

Each file ``NAME`` becomes ``NAME.enc`` = 12-byte random nonce followed by the AES-GCM
ciphertext+tag, with the relative file name as associated data (a file renamed or moved
to another incident fails to decrypt). The key is 32 random bytes in a file outside the
recordings, mode 0600, created on first use. The signed manifest is made after
encryption, so ``vss-verify`` checks an encrypted incident without the key.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kaiserslautern_vss.events.integrity import UNSIGNED_FILES

ENCRYPTED_SUFFIX = '.enc'
KEY_BYTES = 32
_NONCE_BYTES = 12


class EncryptionError(RuntimeError):
    """A key that cannot be used or a file that does not decrypt (wrong key, altered)."""


def load_or_create_key(path: Path, recordings: Path | None = None) -> tuple[bytes, bool]:
    """The AES-256 key in ``path`` (``(key, created)``); refuses a path inside the recordings."""
    path = Path(path).expanduser().resolve()
    if recordings is not None and path.is_relative_to(Path(recordings).resolve()):
        raise EncryptionError(f'encryption key {path} is inside the recordings {recordings}; keep it outside')
    if path.exists():
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise EncryptionError(f'encryption key {path} has {len(key)} bytes, expected {KEY_BYTES}')
        return key, False
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as stream:
            stream.write(key)
    except OSError as error:
        raise EncryptionError(f'cannot create encryption key {path}: {error}') from error
    return key, True


def encrypt_folder(folder: Path, key: bytes) -> list[Path]:
    """Replace every plain file of ``folder`` by its ``.enc`` form; returns the new files."""
    cipher = AESGCM(key)
    written = []
    for path in sorted(p for p in Path(folder).rglob('*') if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name in UNSIGNED_FILES or name.endswith(ENCRYPTED_SUFFIX):
            continue
        nonce = os.urandom(_NONCE_BYTES)
        target = path.with_name(path.name + ENCRYPTED_SUFFIX)
        target.write_bytes(nonce + cipher.encrypt(nonce, path.read_bytes(), name.encode()))
        path.unlink()
        written.append(target)
    return written


def decrypt_file(folder: Path, path: Path, key: bytes) -> bytes:
    """The plain content of the ``.enc`` file ``path`` of ``folder``, in memory only."""
    name = path.relative_to(folder).as_posix()[:-len(ENCRYPTED_SUFFIX)]
    data = path.read_bytes()
    try:
        return AESGCM(key).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], name.encode())
    except InvalidTag as error:
        raise EncryptionError(f'{path} does not decrypt: wrong key or altered file') from error


def decrypt_folder(folder: Path, key: bytes, destination: Path) -> list[Path]:
    """Plain copies of every ``.enc`` file of ``folder`` under ``destination``."""
    written = []
    for path in sorted(Path(folder).rglob(f'*{ENCRYPTED_SUFFIX}')):
        target = Path(destination) / path.relative_to(folder).as_posix()[:-len(ENCRYPTED_SUFFIX)]
        plain = decrypt_file(folder, path, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(plain)
        written.append(target)
    return written
