"""Serving the console over HTTPS on the configured address only (uvicorn, TLS from the start).

uvicorn has connection caps only for requests already read and no deadline for reading one,
so a client holding a thousand TLS connections with half a request header each takes the
server down. :class:`GuardedH11Protocol` (uvicorn's h11 protocol, TLS done by itself) guards
every connection from the moment it is accepted:

- caps on all connections and on those of one client address, applied before the TLS
  handshake (a connection over a cap is closed at once);
- one deadline for the handshake, the request line, the headers and the body of each
  request together, however slowly the bytes come (idle kept-alive connections are closed
  by uvicorn's ``timeout_keep_alive``, the TLS shutdown has the same deadline; responses
  such as the alert stream are not limited);
- uvicorn's and asyncio's log lines throttled per message, so a flood cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from datetime import datetime, timezone

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from kaiserslautern_vss.bind_address import listening_socket
from kaiserslautern_vss.connection_slots import ConnectionSlots
from kaiserslautern_vss.console.settings import ConsoleSettings
from kaiserslautern_vss.console.tls import ensure_certificate
from kaiserslautern_vss.log_throttle import throttle_loggers

_log = logging.getLogger(__name__)
#: loggers that write per connection or per failed accept
FLOOD_LOGGERS = ('uvicorn.error', 'asyncio', __name__)
#: client states in which the request has been read completely (or never will be)
_REQUEST_READ = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class ConnectionGuard:
    """What the connections of one server share: the slots, the TLS context, the deadline, counts."""

    def __init__(self, settings: ConsoleSettings, tls: ssl.SSLContext) -> None:
        self.slots = ConnectionSlots(settings.max_connections, settings.max_connections_per_client)
        self.tls = tls
        self.request_timeout_s = settings.request_timeout_s
        self.refused = 0
        self.timed_out = 0

    def refuse(self, client: str, why: str) -> None:
        self.refused += 1
        _log.warning('console: connection from %s closed: %s', client, why)

    def expire(self, client: str) -> None:
        self.timed_out += 1
        _log.warning('console: connection from %s closed: request not complete within %g s', client,
                     self.request_timeout_s)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol behind :class:`ConnectionGuard` (see the module docstring)."""

    guard: ConnectionGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        # Called on accept with the plain TCP transport; uvicorn's own connection_made comes
        # once the TLS handshake is done, with the TLS transport.
        self._raw = transport
        self._address = str((transport.get_extra_info('peername') or ('?',))[0])
        self._deadline: asyncio.TimerHandle | None = None
        self._early: list[bytes] = []
        refusal = self.guard.slots.take(self._address)
        self._holds_slot = not refusal
        if refusal:
            self.guard.refuse(self._address, refusal)
            transport.abort()
            return
        transport.pause_reading()  # nothing reaches h11 before TLS is up
        self._arm_deadline()
        self._handshake = self.loop.create_task(self._start_tls(transport))  # the loop keeps tasks weakly

    async def _start_tls(self, transport: asyncio.BaseTransport) -> None:
        try:
            tls = await self.loop.start_tls(transport, self, self.guard.tls, server_side=True,  # type: ignore[arg-type]
                                            ssl_handshake_timeout=self.guard.request_timeout_s,
                                            # one that never answers close_notify holds its slot no longer
                                            ssl_shutdown_timeout=self.guard.request_timeout_s)
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            tls = None
        if tls is None or tls.is_closing():
            # a connection lost during the handshake is never reported to connection_lost
            transport.abort()
            self._release()
            return
        super().connection_made(tls)  # type: ignore[arg-type]
        early, self._early = self._early, []
        for data in early:
            self._receive(data)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:  # decrypted right after the handshake, before start_tls returned
            self._early.append(data)
            return
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state not in _REQUEST_READ:
            self._arm_deadline()  # the next request on a kept-alive connection starts now
        super().data_received(data)
        if self.conn.their_state in _REQUEST_READ and self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _arm_deadline(self) -> None:
        self._deadline = self.loop.call_later(self.guard.request_timeout_s, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if not self._raw.is_closing():
            self.guard.expire(self._address)
            self._raw.abort()

    def _release(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._holds_slot:
            self._holds_slot = False
            self.guard.slots.give_back(self._address)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        if self.transport is not None:  # uvicorn's side of the connection was made
            super().connection_lost(exc)


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn instantiates per connection, bound to one server's guard."""
    return type('ConsoleProtocol', (GuardedH11Protocol,), {'guard': guard})


class ConsoleServer:
    """The HTTPS server in a background thread (the node's main thread spins ROS).

    :meth:`start` creates a self-signed certificate first when ``tls_self_signed`` allows
    it and binds the socket itself, so a busy port, a wrong address or one meaning "any
    interface" (:mod:`kaiserslautern_vss.bind_address`) fails right there (``OSError``,
    ``BindAddressError``). There is no plain-HTTP listener at all.
    """

    def __init__(self, app: ASGIApp, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._app = app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.guard: ConnectionGuard | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        s = self.settings
        interface = 'the operator network interface'
        sock = listening_socket(s.bind_address, s.port, interface)
        try:
            ensure_certificate(s.tls_cert_file, s.tls_key_file, self_signed=s.tls_self_signed, host=s.bind_address,
                               now=datetime.now(timezone.utc))
            self.guard = ConnectionGuard(s, _tls_context(s))
        except BaseException:
            sock.close()
            raise
        config = uvicorn.Config(self._app, http=guarded_protocol(self.guard), log_level='warning', access_log=False,
                                server_header=False, proxy_headers=False, lifespan='off', timeout_keep_alive=5,
                                timeout_graceful_shutdown=2)
        throttle_loggers(FLOOD_LOGGERS)
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


def _tls_context(settings: ConsoleSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    context.set_alpn_protocols(['http/1.1'])
    return context
