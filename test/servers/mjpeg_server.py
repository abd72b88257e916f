"""An in-process MJPEG camera for tests: multipart stream and snapshots on 127.0.0.1, stoppable and restartable.

``GET /mjpeg`` streams the JPEGs round-robin at ``fps`` as ``multipart/x-mixed-replace``;
``GET /snapshot.jpg`` returns the next JPEG. Faults on demand: ``garbage_every`` inserts junk
bytes between parts, ``truncate_every`` cuts parts in half, ``freeze()`` keeps connections open
without sending (a stall), ``stop()`` closes everything (an outage) and ``start()`` brings the
camera back on the same port. Optional basic auth.
"""

from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOUNDARY = 'vssframe'
GARBAGE = bytes(range(0x20, 0x7F)) * 3 + b'\x00\x01\xff\xfe\xd8\r\n'  # no JPEG SOI inside


class MjpegServer:
    def __init__(self, jpegs: list[bytes], fps: float = 25.0, *, garbage_every: int = 0, truncate_every: int = 0,
                 frame_limit: int = 0, credentials: tuple[str, str] | None = None) -> None:
        self.jpegs = jpegs
        self.period_s = 1.0 / fps
        self.garbage_every = garbage_every
        self.truncate_every = truncate_every
        self.frame_limit = frame_limit  # parts per connection, then the response ends; 0 = endless
        self.credentials = credentials
        self.port = 0
        self.garbage_sent = 0
        self.truncated_sent = 0
        self.parts_sent = 0
        self._running = threading.Event()
        self._frozen = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}/mjpeg'

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if not server._authorised(self.headers.get('Authorization', '')):
                    self.send_response(401)
                    self.send_header('WWW-Authenticate', 'Basic realm="camera"')
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                if self.path == '/snapshot.jpg':
                    jpeg = server.jpegs[server.parts_sent % len(server.jpegs)]
                    server.parts_sent += 1
                    self.send_response(200)
                    self.send_header('Content-Type', 'image/jpeg')
                    self.send_header('Content-Length', str(len(jpeg)))
                    self.end_headers()
                    self.wfile.write(jpeg)
                    return
                self.send_response(200)
                self.send_header('Content-Type', f'multipart/x-mixed-replace; boundary={BOUNDARY}')
                self.end_headers()
                try:
                    server._stream(self.wfile, server._running)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._running = threading.Event()  # per start, so streams of an earlier run never resume
        self._running.set()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                        daemon=True)
        self._thread.start()

    def _authorised(self, header: str) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(':'.join(self.credentials).encode()).decode()
        return header == f'Basic {expected}'

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
