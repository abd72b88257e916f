"""Receives the cameras' own events (MOBOTIX IP Notify over HTTP) and hands on the well-formed, authenticated ones.

A camera's IP Notify profile sends ``GET`` or ``POST /ipnotify/<camera_id>?event=<event type>``
(the event type may also come as the form field ``event`` of a POST body). Each camera has its
own secret, given either as the profile's HTTP authentication (``Basic``, user = camera id) or
as the query parameter ``token``; it is compared in constant time.

The server listens on one configured address, never on all interfaces (a wildcard address is a
configuration error). Everything wrong is answered, counted by reason and remembered as the
last problem, never raised: unknown camera or bad or missing secret (one answer for both,
401 with the same empty body after the same constant-time check, so camera ids cannot be
probed), a replayed request (409, :mod:`replay`), body too large
(413) or without length (411), malformed request or event type (400), a source sending faster
than ``rate_per_s`` with bursts of ``burst`` (429), more than ``max_connections`` at once or
``max_connections_per_sender`` from one address (connection closed), a client that does not
finish its whole request (headers and body) within ``request_timeout_s`` of connecting, however
slowly it trickles bytes in. Slots are per sender, so slow clients on one address cannot keep a
camera's event (a ``sabotage`` alarm) out; warnings are throttled per reason under a flood.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from kaiserslautern_vss.bind_address import BACKLOG, BindAddressError, bind_address_problem, check_bound
from kaiserslautern_vss.camera_events.replay import ReplayGuard
from kaiserslautern_vss.connection_slots import ConnectionSlots
from kaiserslautern_vss.log_throttle import ReasonThrottle

_log = logging.getLogger(__name__)

PATH_PREFIX = '/ipnotify/'
EVENT_TYPE_PATTERN = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}')
#: what is counted, by reason (the keys of :meth:`IpNotifyReceiver.counts`)
PROBLEMS = ('unknown_camera', 'bad_auth', 'replayed', 'oversized', 'malformed', 'rate_limited',
            'connections_refused', 'timeouts')
FORM_TYPE = 'application/x-www-form-urlencoded'


class ReceiverConfigError(ValueError):
    """The receiver cannot start with this configuration; the message names the setting."""


@dataclass(frozen=True)
class CameraEvent:
    """One accepted camera event."""

    camera_id: str
    event_type: str
    source: str  # the sender's IP address
    received_ns: int  # time.time_ns() on arrival


@dataclass(frozen=True)
class ReceiverSettings:
    bind_address: str
    port: int
    secrets: Mapping[str, bytes]  # camera id -> its secret
    max_body_bytes: int = 4096
    rate_per_s: float = 2.0
    burst: int = 10
    max_connections: int = 32
    max_connections_per_sender: int = 4
    request_timeout_s: float = 5.0
    replay_window_s: float = 30.0  # see kaiserslautern_vss.camera_events.replay

    def __post_init__(self) -> None:
        problem = bind_address_problem(self.bind_address)
        if problem:
            raise ReceiverConfigError(f'bind_address {problem}')
        if not 0 <= self.port <= 65535:
            raise ReceiverConfigError(f'port must be 0..65535, got {self.port}')
        if not self.secrets:
            raise ReceiverConfigError('no camera has a secret: nothing could ever be accepted')
        for camera_id, secret in self.secrets.items():
            if len(secret) < 16:
                raise ReceiverConfigError(f'the secret of camera {camera_id} is shorter than 16 bytes')
        if self.max_body_bytes < 0 or self.rate_per_s <= 0 or self.burst < 1 or self.max_connections < 1 \
                or self.max_connections_per_sender < 1 or self.request_timeout_s <= 0 or self.replay_window_s <= 0:
            raise ReceiverConfigError('need max_body_bytes >= 0, rate_per_s > 0, burst >= 1, max_connections >= 1, '
                                      'max_connections_per_sender >= 1, request_timeout_s > 0, replay_window_s > 0')


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class TokenBuckets:
    """Per-source rate limit: ``rate_per_s`` sustained, ``burst`` at once; old sources are forgotten."""

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow(self, source: str) -> bool:
        now = self.clock()
        if len(self._buckets) > 4096:  # a spoofing flood must not grow memory without bound
            full_after = self.burst / self.rate_per_s
            self._buckets = {s: b for s, b in self._buckets.items() if now - b.updated < full_after}
        bucket = self._buckets.setdefault(source, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate_per_s)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


class _Rejected(Exception):
    def __init__(self, status: int, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.problem = status, problem


class IpNotifyReceiver:
    """The HTTP server; ``on_event`` is called (in a request thread) for every accepted event."""

    def __init__(self, settings: ReceiverSettings, on_event: Callable[[CameraEvent], None]) -> None:
        self.settings = settings
        self.on_event = on_event
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(('accepted',) + PROBLEMS, 0)
        self.last_problem = ''
        self._buckets = TokenBuckets(settings.rate_per_s, settings.burst)
        self._replays = ReplayGuard(settings.replay_window_s)
        self._decoy = secrets.token_bytes(32)  # checked for unknown cameras, so they cost the same
        self.slots = ConnectionSlots(settings.max_connections, settings.max_connections_per_sender)
        self._log_throttle = ReasonThrottle()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self.settings.port

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def start(self) -> None:
        """Listen; raises OSError (e.g. address not on this host, port in use) for the caller to report."""
        receiver = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = BACKLOG  # a flood waits in the queue, not in SYN retries, and is refused
            address_family = socket.AF_INET6 if ':' in receiver.settings.bind_address else socket.AF_INET

            def server_bind(self) -> None:
                super().server_bind()
                check_bound(self.socket, 'the camera network interface')  # bound, not yet listening

            def process_request(self, request, client_address) -> None:
                refusal = receiver.slots.take(client_address[0])
                if refusal:
                    receiver._count('connections_refused', refusal)
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def process_request_thread(self, request, client_address) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    receiver.slots.give_back(client_address[0])

        try:
            self._httpd = Server((self.settings.bind_address, self.settings.port), _handler(self))
        except BindAddressError as error:
            raise ReceiverConfigError(str(error)) from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.2},
                                        name='ipnotify', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _count(self, key: str, detail: str = '') -> None:
        with self._lock:
            self._counts[key] += 1
            if detail:
                self.last_problem = detail
        if detail:
            held_back = self._log_throttle.admit(key)
            if held_back is not None:
                _log.warning('IP Notify: %s%s', detail,
                             f' ({held_back} more of this kind held back)' if held_back else '')

    # -- one request (runs in its handler thread) ---------------------------------------------

    def handle(self, method: str, target: str, headers, read_body: Callable[[int], bytes], source: str) -> int:
        """Decide on one request; returns the HTTP status to answer."""
        with self._lock:
            allowed = self._buckets.allow(source)
        try:
            if not allowed:
                raise _Rejected(429, 'rate_limited', f'{source} sends faster than {self.settings.rate_per_s:g}/s')
            event = self._parse(method, target, headers, read_body, source)
        except _Rejected as rejection:
            self._count(rejection.problem, str(rejection))
            return rejection.status
        self._count('accepted')
        try:
            self.on_event(event)
        except Exception as error:  # noqa: BLE001 - a failing consumer must not take the server down
            _log.error('IP Notify: handing on %s failed: %r', event, error)
            return 500
        return 200

    def _parse(self, method: str, target: str, headers, read_body: Callable[[int], bytes], source: str) -> CameraEvent:
        parts = urlsplit(target)
        if method not in ('GET', 'POST') or not parts.path.startswith(PATH_PREFIX):
            raise _Rejected(400, 'malformed', f'{source}: {method} {parts.path[:80]!r} is not {PATH_PREFIX}<camera>')
        camera_id = parts.path[len(PATH_PREFIX):]
        secret = self.settings.secrets.get(camera_id)
        try:
            query = parse_qs(parts.query, strict_parsing=bool(parts.query), max_num_fields=16)
        except ValueError:
            raise _Rejected(400, 'malformed', f'{source}: camera {camera_id[:40]!r}: malformed query') from None
        authorised = self._authorised(camera_id, secret or self._decoy, headers.get('Authorization', ''),
                                      query.pop('token', []))
        if secret is None:
            raise _Rejected(401, 'unknown_camera', f'{source}: unknown camera {camera_id[:40]!r}')
        if not authorised:
            raise _Rejected(401, 'bad_auth', f'{source}: camera {camera_id}: missing or wrong secret')
        fields = query | (self._form(camera_id, headers, read_body, source) if method == 'POST' else {})
        fields.pop('token', None)  # never part of what is remembered
        event_type = (fields.get('event') or [''])[0]
        if not EVENT_TYPE_PATTERN.fullmatch(event_type):
            raise _Rejected(400, 'malformed', f'{source}: camera {camera_id}: event type {event_type[:40]!r} is '
                                              f'missing or not {EVENT_TYPE_PATTERN.pattern}')
        replay = self._replays.problem(camera_id, fields)
        if replay:
            raise _Rejected(409, 'replayed', f'{source}: camera {camera_id}: replay refused: {replay}')
        return CameraEvent(camera_id, event_type, source, time.time_ns())

    @staticmethod
    def _authorised(camera_id: str, secret: bytes, authorization: str, tokens: list[str]) -> bool:
        scheme, _, value = authorization.partition(' ')
        if scheme.lower() == 'basic':
            try:
                user, _, given = base64.b64decode(value, validate=True).partition(b':')
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(given, secret) and user.decode('utf-8', 'replace') == camera_id
        return len(tokens) == 1 and hmac.compare_digest(tokens[0].encode(), secret)

    def _form(self, camera_id: str, headers, read_body: Callable[[int], bytes], source: str) -> dict[str, list[str]]:
        length_text = headers.get('Content-Length')
        if length_text is None:
            raise _Rejected(411, 'malformed', f'{source}: camera {camera_id}: POST without Content-Length')
        if not length_text.isdigit():
            raise _Rejected(400, 'malformed', f'{source}: camera {camera_id}: bad Content-Length {length_text[:20]!r}')
        if int(length_text) > self.settings.max_body_bytes:
            raise _Rejected(413, 'oversized', f'{source}: camera {camera_id}: body of {length_text} bytes '
                                              f'(limit {self.settings.max_body_bytes})')
        body = read_body(int(length_text))
        if not body:
            return {}
        content_type = headers.get('Content-Type', FORM_TYPE).split(';')[0].strip().lower()
        if content_type not in (FORM_TYPE, 'text/plain'):
            raise _Rejected(400, 'malformed', f'{source}: camera {camera_id}: body type {content_type[:40]!r}')
        try:
            return parse_qs(body.decode('utf-8').strip(), strict_parsing=True, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            raise _Rejected(400, 'malformed', f'{source}: camera {camera_id}: body is not name=value text') from None


class _DeadlineReader(io.RawIOBase):
    """A connection's bytes, each read given only what is left of the request's time: a client
    trickling one byte a second meets the deadline as one that sends nothing."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('request not complete in time')
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


def _handler(receiver: IpNotifyReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = receiver.settings.request_timeout_s
        server_version = 'vss-ipnotify'
        sys_version = ''

        def setup(self) -> None:
            super().setup()
            self.rfile = io.BufferedReader(_DeadlineReader(self.connection, time.monotonic() + self.timeout))

        def log_message(self, *args: object) -> None:
            pass  # counted and logged by reason instead

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # http.server's own rejections (bad request line, too long headers) are malformed requests.
            receiver._count('malformed', f'{self.client_address[0]}: HTTP {code} {message or ""}'.strip())
            self._answer(code)

        def log_error(self, format: str, *args: object) -> None:
            # With send_error replaced, http.server calls this only for a request not done in time.
            receiver._count('timeouts', f'{self.client_address[0]}: request not finished within '
                                        f'{receiver.settings.request_timeout_s:g} s')

        def _serve(self) -> None:
            status = receiver.handle(self.command, self.path, self.headers, self.rfile.read, self.client_address[0])
            self._answer(status)

        do_GET = do_POST = _serve

        def _answer(self, status: int) -> None:
            try:
                self.send_response_only(status)
                self.send_header('Content-Length', '0')
                self.send_header('Connection', 'close')
                self.end_headers()
            except OSError:
                pass
            self.close_connection = True

    return Handler
