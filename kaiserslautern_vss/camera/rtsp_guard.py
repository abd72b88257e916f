"""A loopback relay between FFmpeg and one RTSP camera, so the camera password cannot leak.

FFmpeg answers any authentication challenge, Basic included: a device impersonating the camera
on a plain link would receive the password in clear. And for ``rtsps`` FFmpeg does not verify
the camera's certificate at all. So FFmpeg never talks to the camera directly: it connects to
this relay on 127.0.0.1, and the relay opens the camera connection itself, TLS verified by the
link policy (site CA or pinned fingerprint) for ``rtsps``.

Every RTSP request FFmpeg sends passes through :class:`RtspFramer`; one that carries
``Authorization: Basic`` on a link where the policy refuses Basic is never forwarded: the
connection is cut and :attr:`RtspGuard.verdict` says why. The camera's answers are read until
the stream plays, for its ``Date`` (clock offset) and for a ``401`` to credentials (wrong
password). Interleaved RTP (``$`` frames) passes unchanged. While the stream plays, the camera's
clock is asked again every ``CLOCK_CHECK_S`` with an ``OPTIONS`` request of its own (no
credentials).
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from kaiserslautern_vss.camera import http_client
from kaiserslautern_vss.camera.http_client import camera_clock_offset_s
from kaiserslautern_vss.camera.link_security import LinkPolicy
from kaiserslautern_vss.camera.probe import DEFAULT_PORTS
from kaiserslautern_vss.camera.source_types import AuthenticationError, InsecureLinkError, SourceError

CHUNK_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
SNIFF_BYTES = 256 * 1024  # the camera's answers are inspected until PLAY is answered or this much passed
_CONTENT_LENGTH = re.compile(rb'^content-length:\s*(\d+)\s*$', re.IGNORECASE | re.MULTILINE)


class RtspFramer:
    """Splits one direction of an RTSP connection into messages (text + body) and interleaved ``$`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Complete units, in order; raises ValueError for a header that never ends."""
        self._buffer += data
        units = []
        while self._buffer:
            if self._buffer[0] == 0x24:  # '$' channel length(16) data
                if len(self._buffer) < 4:
                    break
                end = 4 + int.from_bytes(self._buffer[2:4], 'big')
            else:
                header_end = self._buffer.find(b'\r\n\r\n')
                if header_end < 0:
                    if len(self._buffer) > MAX_HEADER_BYTES:
                        raise ValueError(f'RTSP header longer than {MAX_HEADER_BYTES} bytes')
                    break
                length = _CONTENT_LENGTH.search(bytes(self._buffer[:header_end]))
                end = header_end + 4 + (int(length.group(1)) if length else 0)
            if len(self._buffer) < end:
                break
            units.append(bytes(self._buffer[:end]))
            del self._buffer[:end]
        return units


def _header(message: bytes, name: bytes) -> str | None:
    for line in message.split(b'\r\n')[1:]:
        key, _, value = line.partition(b':')
        if key.strip().lower() == name:
            return value.strip().decode('latin-1')
    return None


class RtspGuard:
    """Serves one camera on ``127.0.0.1:<port>`` for as long as the source is open."""

    def __init__(self, url: str, policy: LinkPolicy, where: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self.policy, self.where, self.timeout_s = policy, where, timeout_s
        self._host = parts.hostname or ''
        self._port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
        self._path = urlunsplit(('', '', parts.path, parts.query, ''))
        self._listener = socket.create_server(('127.0.0.1', 0))
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.verdict: SourceError | None = None  # why the camera link was cut (InsecureLinkError) or refused us
        self.clock_offset_s: float | None = None
        threading.Thread(target=self._accept, name='rtsp-guard', daemon=True).start()
        threading.Thread(target=self._ask_time_regularly, name='rtsp-guard-clock', daemon=True).start()

    @property
    def local_url(self) -> str:
        return f'rtsp://127.0.0.1:{self._listener.getsockname()[1]}{self._path}'

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            sockets, self._sockets = self._sockets + [self._listener], []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _keep(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(self._keep(client),), name='rtsp-guard-conn',
                             daemon=True).start()

    def _ask_time_regularly(self) -> None:
        while not self._closed.wait(http_client.CLOCK_CHECK_S):
            try:
                with self._connect() as camera:
                    camera.sendall(f'OPTIONS rtsp://{self._host}:{self._port}{self._path} RTSP/1.0\r\nCSeq: 1\r\n'
                                   f'User-Agent: {http_client.USER_AGENT}\r\n\r\n'.encode())
                    answer = RtspFramer().feed(camera.recv(MAX_HEADER_BYTES))
                if answer:
                    self._inspect_response(answer[0], answered_login=False)
            except (OSError, ValueError, InsecureLinkError):
                pass  # the stream's own connection is what counts; a failing camera shows there

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self.timeout_s)
        if not self.policy.encrypted:
            return sock
        try:
            tls = self.policy.ssl_context().wrap_socket(sock, server_hostname=self._host)
        except ssl.SSLCertVerificationError as error:
            sock.close()
            raise self.policy.certificate_error(error, self.where) from None
        try:
            self.policy.check_certificate(tls.getpeercert(binary_form=True), self.where)
        except InsecureLinkError:
            tls.close()
            raise
        return tls

    def _serve(self, client: socket.socket) -> None:
        try:
            camera = self._keep(self._connect())
        except (InsecureLinkError, OSError) as error:
            self.verdict = error if isinstance(error, InsecureLinkError) else None
            client.close()
            return
        try:
            self._relay(client, camera)
        except (OSError, ValueError, InsecureLinkError):
            pass
        finally:
            for sock in (client, camera):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _relay(self, client: socket.socket, camera: socket.socket) -> None:
        """Both directions in one thread: an SSL socket must not be read and written from two threads."""
        requests, answers = RtspFramer(), RtspFramer()
        sniffed, answered_login = 0, False
        while not self._closed.is_set():
            if isinstance(camera, ssl.SSLSocket) and camera.pending():
                ready = [camera]  # decrypted bytes waiting that select() cannot see
            else:
                ready = select.select([client, camera], [], [], 1.0)[0]
            for sock in ready:
                chunk = sock.recv(CHUNK_BYTES)
                if not chunk:
                    return
                if sock is client:
                    for unit in requests.feed(chunk):
                        if unit[:1] != b'$':
                            answered_login = self._check_request(unit)
                        camera.sendall(unit)
                    continue
                if sniffed < SNIFF_BYTES:  # until the stream plays: the rest is media
                    sniffed += len(chunk)
                    for unit in answers.feed(chunk):
                        if unit.startswith(b'RTSP/') and self._inspect_response(unit, answered_login):
                            sniffed = SNIFF_BYTES
                            break
                # Forwarded after it was judged: FFmpeg gives up on a 401 at once, and the
                # verdict must be there when the caller asks why.
                client.sendall(chunk)

    def _check_request(self, request: bytes) -> bool:
        """Whether the request carries credentials; raises (never forwarded) for a refused Basic answer."""
        authorization = _header(request, b'authorization')
        if authorization is None:
            return False
        if authorization.split(' ', 1)[0].lower() == 'basic' and not self.policy.allows_basic:
            self.verdict = self.policy.basic_refused(self.where)
            raise self.verdict
        return True

    def _inspect_response(self, response: bytes, answered_login: bool) -> bool:
        """Note clock offset and rejected logins; True once the stream plays."""
        offset = camera_clock_offset_s(_header(response, b'date'), time.time())
        if offset is not None:
            self.clock_offset_s = offset
        status = response.split(b' ', 2)[1] if response.count(b' ') >= 2 else b''
        if status == b'401' and answered_login:
            self.verdict = AuthenticationError(f'{self.where}: the camera rejected the login (RTSP 401 to the '
                                               f'answered challenge): check username and password')
        return status == b'200' and _header(response, b'rtp-info') is not None
