"""The step after an incident bag is closed: optionally encrypt it, then sign its manifest."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kaiserslautern_vss.events.encryption import encrypt_folder
from kaiserslautern_vss.events.integrity import write_manifest


def seal_incident(folder: Path, signing_key: Ed25519PrivateKey, encryption_key: bytes | None = None) -> Path:
    """Encrypt (if a key is given) and sign; returns the manifest path."""
    if encryption_key is not None:
        encrypt_folder(folder, encryption_key)
    return write_manifest(folder, signing_key)
