"""Slow and abusive clients against the real console (HTTPS) and IP Notify servers on 127.0.0.1:
half-open requests held, slots taken from one address, bodies spooled before any check, huge
login fields, alert streams outliving their session, and every spelling of "any" as bind
address. Attackers come from other loopback addresses (127.0.0.2, ...) than the real client
(127.0.0.1), as on the operator or camera network.
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import wait_until
from console_support import PASSWORD, console_settings, running_console, totp_code
from kaiserslautern_vss.bind_address import BindAddressError, bind_address_problem, listening_socket
from kaiserslautern_vss.bringup import validation
from kaiserslautern_vss.bringup.respawn import EXIT_BAD_CONFIG
from kaiserslautern_vss.camera_events.receiver import (CameraEvent, IpNotifyReceiver, ReceiverConfigError,
                                                       ReceiverSettings)
from kaiserslautern_vss.console.accounts import hash_password, load_accounts, save_accounts
from kaiserslautern_vss.console.server import ConsoleServer
from kaiserslautern_vss.recordings.audit import AuditLog

ANY_FORMS = ('0.0.0.0', '::', '::ffff:0.0.0.0', '0:0:0:0:0:0:0:0', '::0', '0', '0x0', '[::]', '::ffff:0:0',
             '0000:0000::0000', '0:0::0:0')
CAMERA_SECRET = b'cam01-ipnotify-secret-2026'
PARTIAL_HEADER = b'GET /login HTTP/1.1\r\nHost: vss\r\nX-Slow: '


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def _connect(port: int, source: str, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection(('127.0.0.1', port), timeout=timeout_s, source_address=(source, 0))


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed the connection (EOF or reset); never blocks."""
    try:
        sock.setblocking(False)
        return sock.recv(1) == b''
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except (OSError, ssl.SSLError):
        return True


class _Counting(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# --- bind addresses ------------------------------------------------------------------------------
def test_every_form_of_any_is_refused_where_the_socket_is_opened(tmp_path):
    for address in ANY_FORMS:
        assert bind_address_problem(address), address
        with pytest.raises(BindAddressError):
            listening_socket(address, 0, 'the test interface').close()
        with pytest.raises(ReceiverConfigError, match='every interface|IP address'):
            ReceiverSettings(bind_address=address, port=0, secrets={'cam01': CAMERA_SECRET})
    settings = console_settings(tmp_path, tmp_path / 'recordings', bind_address='::ffff:0.0.0.0')
    with pytest.raises(BindAddressError, match='every interface'):
        ConsoleServer(lambda scope, receive, send: None, settings).start()
    assert not settings.tls_cert_file.exists()  # refused before anything was written
    for address in ('127.0.0.1', '::1'):
        assert bind_address_problem(address) == ''
        listening_socket(address, 0, 'the test interface').close()
    assert bind_address_problem('localhost').startswith('must be an IP address')
    assert validation.bind_address_problem is bind_address_problem  # vss-bringup --check: the same check


@pytest.mark.slow
def test_nodes_started_directly_refuse_any_address(tmp_path):
    keys = tmp_path / 'keys'
    secrets = tmp_path / 'ipnotify'
    secrets.mkdir(mode=0o700)
    (secrets / 'cam01.secret').write_bytes(CAMERA_SECRET)
    (secrets / 'cam01.secret').chmod(0o600)
    nodes = {
        'operator_console': ['bind_address:=0.0.0.0', 'cameras:=[cam01]', f'record_root:={tmp_path / "rec"}',
                             f'users_file:={keys / "users.json"}', f'tls_cert_file:={keys / "cert.pem"}',
                             f'tls_key_file:={keys / "key.pem"}', 'tls_self_signed:=true',
                             f'signing_key_file:={keys / "signing.pem"}', f'audit_log_file:={tmp_path / "audit.log"}',
                             f'audit_key_file:={keys / "audit.key"}', f'export_root:={tmp_path / "exports"}'],
        'camera_events': ['bind_address:=::ffff:0.0.0.0', 'cameras:=[cam01]', f'secrets_dir:={secrets}'],
    }
    for node, parameters in nodes.items():
        command = [sys.executable, '-m', f'kaiserslautern_vss.nodes.{node}', '--ros-args']
        for parameter in parameters:
            command += ['-p', parameter]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == EXIT_BAD_CONFIG, (node, result.returncode, result.stderr[-2000:])
        assert 'would listen on every interface' in result.stderr, result.stderr[-2000:]


# --- the console ---------------------------------------------------------------------------------
@pytest.fixture
def guarded(tmp_path):
    """A console with small caps: 64 connections, 16 per client address, 4 s per request."""
    settings = console_settings(tmp_path, tmp_path / 'recordings', max_connections=64, max_connections_per_client=16,
                                request_timeout_s=4.0, max_streams_per_session=2)
    with running_console(settings) as running:
        yield running


@pytest.mark.slow
def test_half_sent_requests_are_capped_per_client_and_total_and_closed_at_the_deadline(guarded):
    guard, port = guarded.server.guard, guarded.server.port
    log = _Counting()
    logging.getLogger('kaiserslautern_vss.console.server').addHandler(log)
    attackers, most_held, started = [], 0, time.monotonic()
    try:
        # 200 TLS connections from one client, each with half a request header
        for _ in range(200):
            try:
                tls = _tls_context().wrap_socket(_connect(port, '127.0.0.2'))
                tls.sendall(PARTIAL_HEADER)
                attackers.append(tls)
            except (OSError, ssl.SSLError):
                pass  # closed at once: over the cap
            most_held = max(most_held, guard.slots.held('127.0.0.2'))
        assert most_held <= 16 and guard.refused >= 200 - 16 - guard.timed_out
        # a real operator on another address is served meanwhile
        client = guarded.client()
        assert client.get('/login').status == 200
        assert client.login('olga', PASSWORD, totp_code(guarded.accounts['olga'])).status == 303
        # 5 clients x 16 plain TCP connections that never start TLS: the total cap holds
        refused_before = guard.refused
        for n in range(3, 8):
            for _ in range(16):
                attackers.append(_connect(port, f'127.0.0.{n}'))
                most_held = max(most_held, guard.slots.held())
        assert wait_until(lambda: guard.refused - refused_before >= 16, 10)
        assert most_held <= 64 and guard.slots.held() <= 64
        # every attacking connection is closed by the deadline (4 s; generous margin for a busy box)
        assert wait_until(lambda: all(_closed_by_server(sock) for sock in attackers), 30)
        assert wait_until(lambda: guard.slots.held() == 0, 30)  # the operator's too, after keep-alive
        assert guard.timed_out >= 16
        assert client.get('/incidents').status == 200
    finally:
        logging.getLogger('kaiserslautern_vss.console.server').removeHandler(log)
        for sock in attackers:
            sock.close()
    # hundreds of refusals and timeouts; two reasons, each logged at most once per 5 s
    assert guard.refused + guard.timed_out >= 200
    assert len(log.records) <= 2 * ((time.monotonic() - started) / 5.0 + 1), [r.getMessage() for r in log.records]


@pytest.mark.slow
def test_a_flood_of_accept_errors_writes_a_line_per_period(guarded):
    """What asyncio logs when accept() fails ('Too many open files', with a traceback each time)
    and uvicorn per bad request: once per 5 s and message once the console server runs."""
    log = _Counting()
    for name in ('asyncio', 'uvicorn.error'):
        logging.getLogger(name).addHandler(log)
    try:
        for _ in range(1000):
            try:
                raise OSError(24, 'Too many open files')
            except OSError:
                logging.getLogger('asyncio').error('socket.accept() out of system resource', exc_info=True)
            logging.getLogger('uvicorn.error').warning('Invalid HTTP request received.')
    finally:
        for name in ('asyncio', 'uvicorn.error'):
            logging.getLogger(name).removeHandler(log)
    assert len(log.records) <= 4, [r.getMessage() for r in log.records]


def _raw_post(port: int, path: str, headers: dict[str, str], body: bytes, cookies: dict[str, str]) -> int:
    """Status of a POST that announces ``headers`` and sends only ``body`` (maybe less than announced)."""
    with _tls_context().wrap_socket(_connect(port, '127.0.0.1', 20)) as tls:
        head = [f'POST {path} HTTP/1.1', 'Host: vss', 'Cookie: ' + '; '.join(f'{k}={v}' for k, v in cookies.items())]
        head += [f'{name}: {value}' for name, value in headers.items()]
        tls.sendall(('\r\n'.join(head) + '\r\n\r\n').encode() + body)
        return int(tls.recv(4096).split(b' ', 2)[1])


@pytest.mark.slow
def test_login_bodies_are_bounded_before_anything_is_spooled(guarded, tmp_path, monkeypatch):
    spool = tmp_path / 'spool'
    spool.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(spool))
    port, client = guarded.server.port, guarded.client()
    client.get('/login')  # the login form's CSRF cookie
    boundary = 'vssboundary'
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="user"; filename="x"\r\n'
            'Content-Type: application/octet-stream\r\n\r\n').encode()
    # 300 MB announced, 2 MB sent: answered before the body is read, nothing written to disk
    multipart = {'Content-Type': f'multipart/form-data; boundary={boundary}', 'Content-Length': str(300 << 20)}
    assert _raw_post(port, '/login', multipart, part + b'x' * (2 << 20), client.cookies) == 415
    large = {'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': str(300 << 20)}
    assert _raw_post(port, '/login', large, b'user=' + b'a' * 1000, client.cookies) == 413
    assert _raw_post(port, '/login', large, b'user=a', {}) == 403  # no CSRF cookie: the body is not read either
    assert list(spool.iterdir()) == []
    audit = AuditLog(guarded.console.settings.audit_log, guarded.console.settings.audit_key_file)
    before = audit.path.stat().st_size if audit.path.exists() else 0
    # a 1 MB user name: refused by size, no audit entry; a 3 KB one: refused and audited cut short
    assert client.post('/login', {'user': 'a' * (1 << 20), 'password': PASSWORD, 'totp': '123456'}).status == 413
    client.get('/login')
    assert client.post('/login', {'user': 'b' * 3000, 'password': PASSWORD, 'totp': '123456'}).status == 400
    client.get('/login')
    assert client.post('/login', {'user': 'olga', 'password': 'p' * 2000, 'totp': '123456'}).status == 400
    entries = [e for e in audit.entries() if e['action'] == 'login failed']
    assert [len(e['actor']) for e in entries] == [65, 4] and entries[0]['actor'].endswith('…')
    assert audit.path.stat().st_size - before < 1500
    assert audit.verify() == []


@pytest.mark.slow
def test_alert_streams_end_with_their_session_and_are_limited_per_session(guarded):
    olga_client = guarded.logged_in('olga')
    port = guarded.server.port

    def stream(cookies: dict[str, str]) -> tuple[http.client.HTTPResponse, threading.Event]:
        connection = http.client.HTTPSConnection('127.0.0.1', port, context=_tls_context(), timeout=30)
        connection.request('GET', '/api/events', headers={
            'Cookie': '; '.join(f'{k}={v}' for k, v in cookies.items())})
        response = connection.getresponse()
        ended = threading.Event()
        if response.status == 200:
            threading.Thread(target=lambda: (response.read(), ended.set()), daemon=True).start()
        return response, ended

    first, first_ended = stream(olga_client.cookies)
    second, second_ended = stream(olga_client.cookies)
    third, _ = stream(olga_client.cookies)
    assert (first.status, second.status, third.status) == (200, 200, 429)
    assert not first_ended.wait(1.0)
    assert olga_client.post('/logout').status == 303
    assert first_ended.wait(10) and second_ended.wait(10)  # at logout, not at the next keep-alive
    assert stream(olga_client.cookies)[0].status == 401
    # a changed password ends the session's stream too (within the stream's check period)
    ingo_client = guarded.logged_in('ingo')
    ingo, ingo_ended = stream(ingo_client.cookies)
    assert ingo.status == 200
    users = guarded.console.settings.users_file
    accounts = load_accounts(users)
    accounts['ingo'] = dataclasses.replace(accounts['ingo'], password_hash=hash_password('another long password'))
    save_accounts(users, accounts)
    assert ingo_ended.wait(15)


# --- IP Notify -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_slow_senders_on_one_address_cannot_keep_a_cameras_sabotage_event_out():
    events: list[CameraEvent] = []
    settings = ReceiverSettings(bind_address='127.0.0.1', port=0, secrets={'cam01': CAMERA_SECRET},
                                max_connections=32, max_connections_per_sender=4, request_timeout_s=3.0)
    receiver = IpNotifyReceiver(settings, events.append)
    log = _Counting()
    logging.getLogger('kaiserslautern_vss.camera_events.receiver').addHandler(log)
    receiver.start()
    slow: list[socket.socket] = []
    try:
        slow = [_connect(receiver.port, '127.0.0.2') for _ in range(32)]
        stop = threading.Event()

        def trickle() -> None:  # one header byte per second on every connection still open
            for byte in b'GET /ipnotify/cam01?event=VM HTTP/1.1\r\n':
                if stop.wait(1.0):
                    return
                for sock in slow:
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        pass

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        assert wait_until(lambda: receiver.counts()['connections_refused'] >= 1, 10)
        assert receiver.slots.held('127.0.0.2') <= 4
        query = urllib.parse.urlencode({'event': 'sabotage', 'token': CAMERA_SECRET.decode()})
        camera = http.client.HTTPConnection('127.0.0.1', receiver.port, timeout=10, source_address=('127.0.0.1', 0))
        camera.request('GET', f'/ipnotify/cam01?{query}')
        assert camera.getresponse().status == 200
        assert [(e.event_type, e.source) for e in events] == [('sabotage', '127.0.0.1')]
        # the trickling connections are dropped at the whole-request deadline, not kept by each byte
        assert wait_until(lambda: all(_closed_by_server(sock) for sock in slow), 20)
        counts = receiver.counts()
        assert counts['timeouts'] >= 4 and counts['timeouts'] + counts['connections_refused'] == 32
        stop.set()
    finally:
        receiver.stop()
        logging.getLogger('kaiserslautern_vss.camera_events.receiver').removeHandler(log)
        for sock in slow:
            sock.close()
    assert len(log.records) <= 4, [r.getMessage() for r in log.records]  # one per reason, not 32
