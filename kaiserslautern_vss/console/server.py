"""Serving the console over HTTPS on the configured address only (uvicorn, TLS from the start)."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timezone

import uvicorn
from starlette.types import ASGIApp

from kaiserslautern_vss.console.settings import ConsoleSettings
from kaiserslautern_vss.console.tls import ensure_certificate


class ConsoleServer:
    """The HTTPS server in a background thread (the node's main thread spins ROS).

    :meth:`start` creates a self-signed certificate first when ``tls_self_signed`` allows
    it and binds the socket itself, so a busy port or a wrong address fails right there
    with an ``OSError``. There is no plain-HTTP listener at all.
    """

    def __init__(self, app: ASGIApp, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._app = app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        s = self.settings
        ensure_certificate(s.tls_cert_file, s.tls_key_file, self_signed=s.tls_self_signed, host=s.bind_address,
                           now=datetime.now(timezone.utc))
        family = socket.AF_INET6 if ':' in s.bind_address else socket.AF_INET
        sock = socket.create_server((s.bind_address, s.port), family=family, reuse_port=False)
        config = uvicorn.Config(self._app, ssl_certfile=str(s.tls_cert_file), ssl_keyfile=str(s.tls_key_file),
                                log_level='warning', access_log=False, server_header=False, proxy_headers=False,
                                lifespan='off', timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={'sockets': [sock]}, daemon=True,
                                        name='console-https')
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise OSError(f'console HTTPS server did not start on {s.bind_address}:{s.port}')

    @property
    def address(self) -> tuple[str, int]:
        """The bound address and port (the port is chosen by the OS when configured as 0)."""
        assert self._server is not None
        return self._server.servers[0].sockets[0].getsockname()[:2]

    @property
    def port(self) -> int:
        return self.address[1]

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5.0)
