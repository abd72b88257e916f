"""Tamper evidence for incident folders: a signed manifest of every file's SHA-256.

``manifest.json`` lists each file of the incident (relative path -> SHA-256 and size);
``manifest.sig`` is the Ed25519 signature of the manifest's exact bytes. The signing key
lives outside the recordings (a recordings copy never carries the means to re-sign it).
Files listed in ``UNSIGNED_FILES`` are bookkeeping (the manifest itself, the evidence
mark) and are neither hashed nor reported as added.

Key handling decision: the node generates the key on first use (and logs its path and
the public key fingerprint); ``vss-verify`` only needs the public key, which is written
beside the private key as ``<name>.pub``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST_SCHEMA = 'kaiserslautern_vss/manifest/v1'
MANIFEST_FILE = 'manifest.json'
SIGNATURE_FILE = 'manifest.sig'
EVIDENCE_FILE = 'evidence.json'
UNSIGNED_FILES = frozenset({MANIFEST_FILE, SIGNATURE_FILE, EVIDENCE_FILE})
_CHUNK = 1 << 20


class IntegrityError(RuntimeError):
    """A key or manifest that cannot be used (unreadable, wrong type, inside the recordings)."""


@dataclass(frozen=True)
class Finding:
    """One way an incident folder differs from its signed manifest."""

    kind: str  # 'altered', 'removed', 'added', 'bad signature', 'no manifest'
    path: str
    detail: str = ''

    def __str__(self) -> str:
        return f'{self.kind}: {self.path}' + (f' ({self.detail})' if self.detail else '')


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _signed_files(folder: Path) -> dict[str, Path]:
    return {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob('*'))
            if path.is_file() and path.relative_to(folder).as_posix() not in UNSIGNED_FILES}


def public_key_path(private_key_path: Path) -> Path:
    return private_key_path.with_name(private_key_path.name + '.pub')


def load_or_create_signing_key(path: Path, recordings: Path | None = None) -> tuple[Ed25519PrivateKey, bool]:
    """The Ed25519 key in ``path`` (PEM, PKCS8), created with mode 0600 if absent.

    Returns ``(key, created)``. Refuses a path inside ``recordings``: whoever can alter
    the recordings must not be able to re-sign them.
    """
    path = Path(path).expanduser().resolve()
    if recordings is not None and path.is_relative_to(Path(recordings).resolve()):
        raise IntegrityError(f'signing key {path} is inside the recordings {recordings}; keep it outside')
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as error:
            raise IntegrityError(f'cannot read signing key {path}: {error}') from error
        if not isinstance(key, Ed25519PrivateKey):
            raise IntegrityError(f'signing key {path} is not an Ed25519 key')
        return key, False
    key = Ed25519PrivateKey.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as stream:
            stream.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        public_key_path(path).write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError as error:
        raise IntegrityError(f'cannot create signing key {path}: {error}') from error
    return key, True


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key PEM, or the public half of a private key PEM."""
    try:
        data = Path(path).read_bytes()
        key = (serialization.load_pem_private_key(data, password=None).public_key()
               if b'PRIVATE KEY' in data else serialization.load_pem_public_key(data))
    except (OSError, ValueError) as error:
        raise IntegrityError(f'cannot read key {path}: {error}') from error
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError(f'key {path} is not an Ed25519 key')
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_manifest(folder: Path, key: Ed25519PrivateKey) -> Path:
    """Hash every file of ``folder``, write ``manifest.json`` and its signature."""
    folder = Path(folder)
    files = {name: {'sha256': sha256_file(path), 'size': path.stat().st_size}
             for name, path in _signed_files(folder).items()}
    manifest = json.dumps({'schema': MANIFEST_SCHEMA, 'incident': folder.name, 'files': files,
                           'key': fingerprint(key.public_key())}, sort_keys=True, indent=1).encode()
    (folder / MANIFEST_FILE).write_bytes(manifest)
    (folder / SIGNATURE_FILE).write_bytes(key.sign(manifest))
    return folder / MANIFEST_FILE


def verify_incident(folder: Path, key: Ed25519PublicKey) -> list[Finding]:
    """Everything that differs from the signed manifest; empty means intact."""
    folder = Path(folder)
    try:
        manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
        signature = (folder / SIGNATURE_FILE).read_bytes()
    except OSError as error:
        return [Finding('no manifest', folder.name, str(error))]
    findings = []
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        findings.append(Finding('bad signature', MANIFEST_FILE, 'manifest or signature was changed, '
                                'or signed with another key'))
    try:
        listed = json.loads(manifest_bytes)['files']
    except (ValueError, KeyError, TypeError) as error:
        return [*findings, Finding('bad manifest', MANIFEST_FILE, str(error))]
    present = _signed_files(folder)
    for name, entry in sorted(listed.items()):
        path = present.get(name)
        if path is None:
            findings.append(Finding('removed', name))
        elif (digest := sha256_file(path)) != entry['sha256']:
            findings.append(Finding('altered', name, f'sha256 {digest[:16]}... != signed {entry["sha256"][:16]}...'))
    findings += [Finding('added', name) for name in sorted(set(present) - set(listed))]
    return findings
