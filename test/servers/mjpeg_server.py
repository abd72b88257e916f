"""An in-process MJPEG camera for tests, shaped like a MOBOTIX: streams and snapshots on 127.0.0.1,
stoppable and restartable, optionally over TLS and behind Basic or Digest authentication.

Paths: ``/mjpeg`` and ``/control/faststream.jpg?stream=full`` stream the JPEGs round-robin at
``fps`` as ``multipart/x-mixed-replace``; ``/control/faststream.jpg`` without ``stream=full``
answers like a camera in its default MxPEG mode (a non-multipart body of JPEG-marker data);
``/snapshot.jpg`` and ``/record/current.jpg`` return the next JPEG. ``jpegs`` may be replaced
while streaming (a resolution change). Faults on demand: ``garbage_every`` inserts junk bytes
between parts, ``truncate_every`` cuts parts in half, ``freeze()`` keeps connections open without
sending (a stall), ``stop()`` closes everything (an outage) and ``start()`` brings the camera back
on the same port. ``clock_offset_s`` shifts the ``Date`` header (a camera without time sync).

Everything a client sent is recorded in ``requests`` (path, Authorization header), so tests can
prove a password never reached the server.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
import threading
import time
import urllib.request
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOUNDARY = 'vssframe'
GARBAGE = bytes(range(0x20, 0x7F)) * 3 + b'\x00\x01\xff\xfe\xd8\r\n'  # no JPEG SOI inside
REALM = 'MOBOTIX Camera User'
AUTH_MODES = ('none', 'basic', 'digest')
STREAM_PATHS = ('/mjpeg', '/control/faststream.jpg')
SNAPSHOT_PATHS = ('/snapshot.jpg', '/record/current.jpg')
MXPEG_BODY = b'\xff\xd8\xff\xfe\x00\x06MXF\x00' + b'\xff\xed\x00\x04' * 64  # SOI, COM "MXF", APP13 ...


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class MjpegServer:
    def __init__(self, jpegs: list[bytes], fps: float = 25.0, *, garbage_every: int = 0, truncate_every: int = 0,
                 frame_limit: int = 0, credentials: tuple[str, str] | None = None, auth: str = 'digest',
                 tls: ssl.SSLContext | None = None, clock_offset_s: float = 0.0) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f'auth must be one of {AUTH_MODES}')
        self.jpegs = jpegs
        self.period_s = 1.0 / fps
        self.garbage_every = garbage_every
        self.truncate_every = truncate_every
        self.frame_limit = frame_limit  # parts per connection, then the response ends; 0 = endless
        self.credentials = credentials
        self.auth = auth if credentials else 'none'
        self.tls = tls
        self.clock_offset_s = clock_offset_s
        self.port = 0
        self.garbage_sent = 0
        self.truncated_sent = 0
        self.parts_sent = 0
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header) of every request
        self.rejected_logins = 0
        self._nonces: set[str] = set()
        self._running = threading.Event()
        self._frozen = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f'{"https" if self.tls else "http"}://127.0.0.1:{self.port}/mjpeg'

    def url_for(self, path_and_query: str) -> str:
        return self.url.removesuffix('/mjpeg') + path_and_query

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return formatdate(time.time() + server.clock_offset_s, usegmt=True)

            def do_GET(self) -> None:
                authorization = self.headers.get('Authorization', '')
                server.requests.append((self.path, authorization))
                if not server._authorised(authorization):
                    self.send_response(401)
                    self.send_header('WWW-Authenticate', server._challenge())
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                path, _, query = self.path.partition('?')
                if path in SNAPSHOT_PATHS:
                    jpeg = server.jpegs[server.parts_sent % len(server.jpegs)]
                    server.parts_sent += 1
                    self._answer('image/jpeg', jpeg)
                elif path == '/control/faststream.jpg' and 'stream=full' not in query.split('&'):
                    self._answer('application/octet-stream', MXPEG_BODY)
                elif path in STREAM_PATHS:
                    self.send_response(200)
                    self.send_header('Content-Type', f'multipart/x-mixed-replace; boundary={BOUNDARY}')
                    self.end_headers()
                    try:
                        server._stream(self.wfile, server._running)
                    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                        pass
                else:
                    self._answer('text/plain', b'not found', 404)

            def _answer(self, content_type: str, body: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header('Content-Type', content_type)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._running = threading.Event()  # per start, so streams of an earlier run never resume
        self._running.set()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                        daemon=True)
        self._thread.start()

    def _challenge(self) -> str:
        if self.auth == 'basic':
            return f'Basic realm="{REALM}"'
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        return f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'

    def _authorised(self, header: str) -> bool:
        if self.auth == 'none':
            return True
        user, password = self.credentials
        scheme, _, rest = header.partition(' ')
        if self.auth == 'basic':
            ok = scheme == 'Basic' and rest == base64.b64encode(f'{user}:{password}'.encode()).decode()
        else:
            ok = scheme == 'Digest' and self._digest_ok(rest, user, password)
        self.rejected_logins += bool(header) and not ok
        return ok

    def _digest_ok(self, rest: str, user: str, password: str) -> bool:
        fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(rest))
        if fields.get('username') != user or fields.get('nonce') not in self._nonces:
            return False
        ha1 = _md5(f'{user}:{REALM}:{password}')
        ha2 = _md5(f'GET:{fields.get("uri")}')
        expected = _md5(f'{ha1}:{fields["nonce"]}:{fields.get("nc")}:{fields.get("cnonce")}:auth:{ha2}')
        return fields.get('response') == expected

    def _stream(self, out, running: threading.Event) -> None:
        count = 0
        next_due = time.monotonic()
        while running.is_set() and (not self.frame_limit or count < self.frame_limit):
            time.sleep(max(0.0, next_due - time.monotonic()))
            next_due += self.period_s
            if self._frozen.is_set():
                continue
            jpeg = self.jpegs[count % len(self.jpegs)]
            count += 1
            self.parts_sent += 1
            if self.truncate_every and count % self.truncate_every == 0:
                jpeg = jpeg[:len(jpeg) // 2]
                self.truncated_sent += 1
            out.write(f'--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n'.encode()
                      + jpeg + b'\r\n')
            if self.garbage_every and count % self.garbage_every == 0:
                out.write(GARBAGE)
                self.garbage_sent += len(GARBAGE)
            out.flush()

    def freeze(self, frozen: bool = True) -> None:
        (self._frozen.set if frozen else self._frozen.clear)()

    def stop(self) -> None:
        """An outage: refuse connections and end the open streams."""
        self._running.clear()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
