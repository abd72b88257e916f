"""A fake RTSP camera on 127.0.0.1 that records every byte it receives: what an attacker impersonating a
camera would collect. It answers OPTIONS and asks every DESCRIBE for a login with the configured
challenge (Basic by default), never lets anyone in; optionally over TLS (``rtsps``). Its ``Date``
is ``clock_offset_s`` off (a camera without time sync)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from email.utils import formatdate


class RecordingRtspCamera:
    def __init__(self, challenge: str = 'Basic realm="MOBOTIX Camera User"', tls: ssl.SSLContext | None = None,
                 clock_offset_s: float = 0.0) -> None:
        self.challenge = challenge
        self.tls = tls
        self.clock_offset_s = clock_offset_s
        self.received = bytearray()
        self.connections = 0
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = '/stream') -> str:
        return f'{"rtsps" if self.tls else "rtsp"}://127.0.0.1:{self.port}{path}'

    def stop(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            self.connections += 1
            buffer = b''
            sock.settimeout(10)
            while chunk := sock.recv(4096):
                self.received += chunk
                buffer += chunk
                while b'\r\n\r\n' in buffer:
                    request, _, buffer = buffer.partition(b'\r\n\r\n')
                    sock.sendall(self._answer(request.decode('latin-1')))
        except (OSError, ssl.SSLError):
            pass
        finally:
            sock.close()

    def _answer(self, request: str) -> bytes:
        method = request.split(' ', 1)[0]
        cseq = next((line.split(':', 1)[1].strip() for line in request.split('\r\n')
                     if line.lower().startswith('cseq:')), '0')
        if method == 'OPTIONS':
            date = formatdate(time.time() + self.clock_offset_s, usegmt=True)
            return (f'RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nDate: {date}\r\n'
                    f'Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n').encode()
        return f'RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: {self.challenge}\r\n\r\n'.encode()
