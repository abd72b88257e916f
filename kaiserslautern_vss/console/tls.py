"""The console's TLS certificate: a configured one, or a self-signed one for commissioning."""

from __future__ import annotations

import ipaddress
import os
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class TlsError(RuntimeError):
    """A certificate or key that is missing or cannot be written."""


def ensure_certificate(cert_path: Path, key_path: Path, *, self_signed: bool, host: str,
                       now: datetime) -> bool:
    """Make sure both files exist; True if a self-signed pair was just created.

    Without ``self_signed`` a missing file is an error: production sites configure the
    certificate their authority issued.
    """
    cert_path, key_path = Path(cert_path).expanduser(), Path(key_path).expanduser()
    if cert_path.is_file() and key_path.is_file():
        return False
    if not self_signed:
        raise TlsError(f'TLS certificate {cert_path} or key {key_path} is missing; configure the '
                       'site certificate or set tls_self_signed: true for commissioning')
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f'VSS Leitstelle {host}')])
    try:
        alt_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt_name = x509.DNSName(host)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=365))
                   .add_extension(x509.SubjectAlternativeName([alt_name]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as stream:
            stream.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    except OSError as error:
        raise TlsError(f'cannot write self-signed certificate {cert_path}: {error}') from error
    return True


def certificate_fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint (hex, colon separated) to compare in the browser on first visit."""
    certificate = x509.load_pem_x509_certificate(Path(cert_path).expanduser().read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex(':').upper()

