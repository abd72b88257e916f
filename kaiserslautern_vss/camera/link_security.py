"""How a camera link is secured, shared by the HTTP sources and the RTSP guard.

Encryption: ``https``/``rtsps`` links verify the camera's certificate against the site CA file
(``tls_ca_file``, hostname checked) or accept exactly one certificate, pinned by its SHA-256
fingerprint (``tls_fingerprint``; the camera's self-signed certificate, no CA needed). Without
either, the system CAs are used; verification is never switched off.

Authentication: the camera's challenge decides. Digest is answered on any link (the password
itself never travels). Basic sends the password base64-encoded, i.e. in clear: it is answered
only over a verified TLS link or where the camera's configuration explicitly allows it
(``allow_basic_over_plain``), otherwise :class:`InsecureLinkError` says why nothing was sent.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import urllib.request
from dataclasses import dataclass

from kaiserslautern_vss.camera.source_types import InsecureLinkError, SourceConfigError, SourceError, SourceSettings

ENCRYPTED_SCHEMES = frozenset({'https', 'rtsps'})
_HEX64 = re.compile(r'[0-9a-f]{64}')
# Digest algorithms urllib's implementation answers (RFC 2617; MOBOTIX and most cameras use MD5).
DIGEST_ALGORITHMS = frozenset({'MD5', 'SHA'})


def normalise_fingerprint(text: str) -> str:
    """``'AB:CD:…'`` or ``'abcd…'`` (SHA-256, 64 hex digits) -> lowercase hex; '' stays ''."""
    if not text:
        return ''
    value = text.strip().lower().removeprefix('sha256:').replace(':', '').replace(' ', '')
    if not _HEX64.fullmatch(value):
        raise SourceConfigError(f'tls_fingerprint must be a SHA-256 fingerprint (64 hex digits, colons allowed), '
                                f'got {text!r}; e.g. openssl x509 -in camera.pem -noout -fingerprint -sha256')
    return value


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, lowercase hex (what ``tls_fingerprint`` pins)."""
    return hashlib.sha256(der).hexdigest()


def _spaced(fingerprint: str) -> str:
    return ':'.join(fingerprint[i:i + 2] for i in range(0, len(fingerprint), 2)).upper()


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lowercase) and its parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenges(values: list[str]) -> list[Challenge]:
    """The challenges of ``WWW-Authenticate`` header values (one challenge per header, as cameras send)."""
    challenges = []
    for value in values:
        scheme, _, rest = value.strip().partition(' ')
        params = urllib.request.parse_keqv_list(filter(None, urllib.request.parse_http_list(rest))) \
            if '=' in rest else {}
        challenges.append(Challenge(scheme.lower(), params))
    return challenges


@dataclass(frozen=True)
class LinkPolicy:
    """What one camera link may do; built once from the URL scheme and the source settings."""

    encrypted: bool
    ca_file: str = ''
    fingerprint: str = ''
    allow_basic_over_plain: bool = False

    @classmethod
    def for_url(cls, scheme: str, settings: SourceSettings) -> LinkPolicy:
        encrypted = scheme.lower() in ENCRYPTED_SCHEMES
        fingerprint = normalise_fingerprint(settings.tls_fingerprint)
        if not encrypted and (fingerprint or settings.tls_ca_file):
            raise SourceConfigError(f'tls_ca_file/tls_fingerprint are set but the URL scheme {scheme!r} is not '
                                    f'encrypted; use https:// or rtsps://')
        if fingerprint and settings.tls_ca_file:
            raise SourceConfigError('give either tls_ca_file or tls_fingerprint, not both')
        return cls(encrypted, settings.tls_ca_file, fingerprint, settings.allow_basic_over_plain)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies by CA (file or system) or leaves it to :meth:`check_certificate`."""
        if self.fingerprint:
            # The pin replaces chain and hostname checks (self-signed camera certificates).
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            return ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as error:
            raise SourceConfigError(f'tls_ca_file {self.ca_file} cannot be loaded: {error}') from None

    def check_certificate(self, der: bytes | None, where: str) -> None:
        """With a pin: the peer's certificate must be exactly the pinned one (before anything is sent)."""
        if not self.fingerprint:
            return
        seen = certificate_fingerprint(der) if der else ''
        if seen != self.fingerprint:
            raise InsecureLinkError(f'{where}: certificate SHA-256 {_spaced(seen) or "(none)"} is not the pinned '
                                    f'{_spaced(self.fingerprint)}; nothing was sent (another device answering, or '
                                    f'the camera got a new certificate: update tls_fingerprint)')

    def certificate_error(self, error: ssl.SSLCertVerificationError, where: str) -> InsecureLinkError:
        trust = f'the site CA {self.ca_file}' if self.ca_file else 'the system CAs (set tls_ca_file or tls_fingerprint)'
        return InsecureLinkError(f'{where}: certificate rejected by {trust}: {error.verify_message}; nothing was sent')

    def choose(self, challenges: list[Challenge], where: str) -> Challenge:
        """The challenge to answer: Digest first; Basic only where this link allows it."""
        for challenge in challenges:
            if challenge.scheme == 'digest' and challenge.params.get('algorithm', 'MD5').upper() in DIGEST_ALGORITHMS:
                return challenge
        basic = next((c for c in challenges if c.scheme == 'basic'), None)
        if basic is not None and self.allows_basic:
            return basic
        if basic is not None:
            raise self.basic_refused(where)
        offered = ', '.join(f'{c.scheme} {c.params.get("algorithm", "")}'.strip() for c in challenges) or 'none'
        raise SourceError(f'{where}: no supported authentication offered ({offered}); supported: Digest '
                          f'({"/".join(sorted(DIGEST_ALGORITHMS))}), Basic over TLS')

    @property
    def allows_basic(self) -> bool:
        return self.encrypted or self.allow_basic_over_plain

    @staticmethod
    def basic_refused(where: str) -> InsecureLinkError:
        return InsecureLinkError(
            f'{where} asks for Basic authentication over an unencrypted link, which would send the password in '
            f'clear: refused, the password was not sent. Enable Digest authentication on the camera, use an '
            f'encrypted link (https/rtsps), or set allow_basic_over_plain: true for this camera')

    def describe(self) -> str:
        if not self.encrypted:
            return 'unencrypted' + (', Basic allowed' if self.allow_basic_over_plain else '')
        if self.fingerprint:
            return f'TLS, pinned certificate SHA-256 {_spaced(self.fingerprint)[:23]}…'
        return f'TLS, verified by {self.ca_file or "system CAs"}'


class Authenticator:
    """Answers one camera's challenges for one URL (Digest via urllib's implementation, which keeps the nonce count)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url, self.username, self._password = url, username, password
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, url, username, password)
        self._digest = urllib.request.AbstractDigestAuthHandler(passwords)

    def authorization(self, challenge: Challenge, method: str = 'GET') -> str:
        if challenge.scheme == 'basic':
            return 'Basic ' + base64.b64encode(f'{self.username}:{self._password}'.encode()).decode('ascii')
        answer = self._digest.get_authorization(urllib.request.Request(self.url, method=method), challenge.params)
        if not answer:
            raise SourceError(f'digest challenge without realm or nonce: {challenge.params}')
        return 'Digest ' + answer
