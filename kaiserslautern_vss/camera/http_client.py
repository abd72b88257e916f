"""GET requests to one camera over a link that does not leak (see :mod:`link_security`).

Every request goes out first without credentials, or with a Digest answer to the camera's last
challenge (no password in it). A ``401`` challenge is answered once: a second ``401`` is an
:class:`AuthenticationError` at once, never a retry loop, because cameras lock a user out after a
few failed logins. TLS certificates are checked right after the handshake, before the request
is written. Proxies are not used (cameras sit on a separated network). The camera's ``Date``
header gives its clock offset.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

from kaiserslautern_vss.camera.credentials import mask_url
from kaiserslautern_vss.camera.link_security import Authenticator, Challenge, LinkPolicy, parse_challenges
from kaiserslautern_vss.camera.source_types import AuthenticationError, InsecureLinkError, SourceError

USER_AGENT = 'kaiserslautern_vss'
CLOCK_CHECK_S = 60.0  # a stream's Date is from its start: the camera's clock is asked again this often


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS whose certificate passes the link policy (CA or pin) before a byte of the request is sent."""

    def __init__(self, host: str, port: int | None, timeout: float, policy: LinkPolicy, where: str,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.policy, self.where = policy, where

    def connect(self) -> None:
        try:
            super().connect()
        except ssl.SSLCertVerificationError as error:
            raise self.policy.certificate_error(error, self.where) from None
        try:
            self.policy.check_certificate(self.sock.getpeercert(binary_form=True), self.where)
        except InsecureLinkError:
            self.close()
            raise


def camera_clock_offset_s(date_header: str | None, received_s: float) -> float | None:
    """Camera clock minus host clock from an HTTP ``Date`` header, None when absent or bad.

    The header has whole seconds, cut off: the camera's time was in [Date, Date + 1 s), so the
    middle of that second is compared (error at most +-0.5 s plus the transfer time).
    """
    if not date_header:
        return None
    try:
        return parsedate_to_datetime(date_header).timestamp() + 0.5 - received_s
    except (TypeError, ValueError, IndexError):
        return None


class CameraHttpClient:
    """GETs of one camera URL with the link policy applied; :attr:`clock_offset_s` from the last answer."""

    def __init__(self, url: str, username: str, password: str, policy: LinkPolicy) -> None:
        parts = urlsplit(url)
        self.url, self.policy = url, policy
        self.where = mask_url(url)
        self._scheme, self._host, self._port = parts.scheme.lower(), parts.hostname or '', parts.port
        self._target = urlunsplit(('', '', parts.path or '/', parts.query, ''))
        self._authenticator = Authenticator(url, username, password) if username else None
        self._challenge: Challenge | None = None  # the last one answered; Digest is reused preemptively
        self.auth_scheme = ''  # what the camera accepted: 'digest', 'basic' or '' (no login)
        self.clock_offset_s: float | None = None
        self._ssl_context: ssl.SSLContext | None = None

    def get(self, timeout_s: float) -> http.client.HTTPResponse:
        """The camera's ``200`` response (the caller reads and closes it) or a :class:`SourceError`."""
        preemptive = self._challenge is not None and self._challenge.scheme == 'digest'
        response = self._send(timeout_s, self._answer() if preemptive else '')
        if response.status == 401 and self._authenticator is not None:
            challenges = parse_challenges(response.headers.get_all('WWW-Authenticate') or [])
            response.close()
            self._challenge = self.policy.choose(challenges, self.where)
            response = self._send(timeout_s, self._answer())
            if response.status == 401:
                response.close()
                answered, self._challenge = self._challenge.scheme.capitalize(), None
                raise AuthenticationError(
                    f'{self.where}: the camera rejected user {self._authenticator.username!r} ({answered} answered, '
                    f'HTTP 401 again): check username and password; retries are limited so the camera does not '
                    f'lock the user out')
        if response.status == 401:
            response.close()
            raise AuthenticationError(f'{self.where}: the camera requires a login (HTTP 401): set username and '
                                      f'password_env or password_file')
        if response.status != 200:
            response.close()
            raise SourceError(f'{self.where}: HTTP {response.status} {response.reason}')
        self.auth_scheme = self._challenge.scheme if self._challenge is not None else ''
        return response

    def _answer(self) -> str:
        assert self._authenticator is not None and self._challenge is not None
        return self._authenticator.authorization(self._challenge)

    def ask_time(self, timeout_s: float) -> None:
        """Refresh :attr:`clock_offset_s` with a ``HEAD`` that carries no credentials (any answer has a Date)."""
        try:
            self._send(timeout_s, '', 'HEAD').close()
        except SourceError:
            pass  # the stream's own connection is what counts; a failing camera shows there

    def _send(self, timeout_s: float, authorization: str, method: str = 'GET') -> http.client.HTTPResponse:
        if self._scheme == 'https':
            if self._ssl_context is None:  # loading the CAs takes ~25 ms: once per client, not per snapshot
                self._ssl_context = self.policy.ssl_context()
            connection = _CheckedHTTPSConnection(self._host, self._port, timeout_s, self.policy, self.where,
                                                 self._ssl_context)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
        headers = {'User-Agent': USER_AGENT, 'Accept': 'multipart/x-mixed-replace, image/jpeg'}
        if authorization:
            headers['Authorization'] = authorization
        try:
            connection.request(method, self._target, headers=headers)
            response = connection.getresponse()
        except InsecureLinkError:
            raise
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            reason = 'timed out' if isinstance(error, socket.timeout) else error
            raise SourceError(f'{self.where}: cannot connect: {reason}') from None
        offset = camera_clock_offset_s(response.headers.get('Date'), time.time())
        if offset is not None:
            self.clock_offset_s = offset
        return response
