"""Camera events (MOBOTIX IP Notify) as incident triggers: the receiver against real HTTP clients and raw
sockets, the rules that choose event types, and receiver node -> event manager over real DDS."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_until
from kaiserslautern_vss.bringup.graph import GraphConfigError, load_graph
from kaiserslautern_vss.camera_events.receiver import (CameraEvent, IpNotifyReceiver, ReceiverConfigError,
                                                       ReceiverSettings)
from kaiserslautern_vss.camera_events.secrets import load_secrets
from kaiserslautern_vss.events.rule_engine import RuleEngine
from kaiserslautern_vss.events.rule_schema import RuleConfigError, parse_rules

SECRET = b'cam01-ipnotify-secret-2026'
OTHER_SECRET = b'cam02-ipnotify-secret-2026'


@pytest.fixture
def receiver():
    events: list[CameraEvent] = []
    started: list[IpNotifyReceiver] = []

    def make(**options) -> IpNotifyReceiver:
        settings = ReceiverSettings(**{'bind_address': '127.0.0.1', 'port': 0,
                                       'secrets': {'cam01': SECRET, 'cam02': OTHER_SECRET}} | options)
        server = IpNotifyReceiver(settings, events.append)
        server.events = events
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def get(server: IpNotifyReceiver, target: str, headers: dict | None = None, body: bytes | None = None) -> int:
    """Status of one request through urllib (a real HTTP client, as a camera's would be)."""
    request = urllib.request.Request(f'http://127.0.0.1:{server.port}{target}', data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def basic(user: str, secret: bytes) -> dict[str, str]:
    return {'Authorization': 'Basic ' + base64.b64encode(user.encode() + b':' + secret).decode()}


def test_events_with_token_or_basic_auth_are_accepted(receiver) -> None:
    server = receiver()
    assert get(server, f'/ipnotify/cam01?event=VM&token={SECRET.decode()}') == 200
    assert get(server, '/ipnotify/cam02', basic('cam02', OTHER_SECRET), b'event=AI_person&time=2026-12-01') == 200
    assert [(e.camera_id, e.event_type, e.source) for e in server.events] == [
        ('cam01', 'VM', '127.0.0.1'), ('cam02', 'AI_person', '127.0.0.1')]
    assert server.counts()['accepted'] == 2


def test_bad_input_is_answered_counted_and_never_crashes(receiver) -> None:
    server = receiver(max_body_bytes=256, rate_per_s=1000.0, burst=1000)
    token = SECRET.decode()
    cases = [
        ('/ipnotify/cam99?event=VM&token=' + token, {}, None, 404, 'unknown_camera'),
        ('/ipnotify/cam01?event=VM&token=wrong-secret-of-some-length', {}, None, 401, 'bad_auth'),
        ('/ipnotify/cam01?event=VM', {}, None, 401, 'bad_auth'),
        ('/ipnotify/cam01', basic('cam02', SECRET), b'event=VM', 401, 'bad_auth'),  # another camera's name
        ('/ipnotify/cam01', basic('cam01', OTHER_SECRET), b'event=VM', 401, 'bad_auth'),  # another camera's secret
        ('/ipnotify/cam01', basic('cam01', SECRET), b'event=' + b'x' * 300, 413, 'oversized'),
        ('/ipnotify/cam01?token=' + token, {}, None, 400, 'malformed'),  # no event type
        ('/ipnotify/cam01?event=%3Cscript%3E&token=' + token, {}, None, 400, 'malformed'),
        ('/ipnotify/cam01?event=VM&token=' + token, {'Content-Type': 'application/json'}, b'{"a": 1}', 400,
         'malformed'),
        ('/ipnotify/cam01', basic('cam01', SECRET), b'\xff\xfe=\x00', 400, 'malformed'),
        ('/other?event=VM&token=' + token, {}, None, 400, 'malformed'),
    ]
    for target, headers, body, status, _ in cases:
        assert get(server, target, headers, body) == status, target
    expected = {}
    for *_, problem in cases:
        expected[problem] = expected.get(problem, 0) + 1
    counts = server.counts()
    assert {key: counts[key] for key in expected} == expected
    assert counts['accepted'] == 0 and server.events == []
    assert token not in server.last_problem

    # Below HTTP: a broken request line, a POST without length, a client that never finishes.
    with socket.create_connection(('127.0.0.1', server.port), timeout=5) as raw:
        raw.sendall(b'\x16\x03\x01 garbage\r\n\r\n')  # e.g. a TLS hello: refused, connection closed
        assert raw.recv(100) == b''
    connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=5)
    connection.putrequest('POST', '/ipnotify/cam01')
    connection.putheader('Authorization', basic('cam01', SECRET)['Authorization'])
    connection.endheaders()
    assert connection.getresponse().status == 411
    assert server.counts()['malformed'] == expected['malformed'] + 2
    assert get(server, f'/ipnotify/cam01?event=VM&token={token}') == 200  # still serving


def test_slow_clients_time_out_and_connections_are_bounded(receiver) -> None:
    server = receiver(request_timeout_s=0.5, max_connections=3)
    idle = [socket.create_connection(('127.0.0.1', server.port), timeout=5) for _ in range(3)]
    time.sleep(0.2)  # the three are being served (waiting for their request lines)
    with socket.create_connection(('127.0.0.1', server.port), timeout=5) as extra:
        assert extra.recv(10) == b''  # closed at once
    assert wait_until(lambda: server.counts()['timeouts'] == 3, 5.0)
    for sock in idle:
        sock.close()
    assert server.counts()['connections_refused'] == 1
    assert get(server, f'/ipnotify/cam01?event=VM&token={SECRET.decode()}') == 200


def test_a_flooding_source_is_rate_limited(receiver) -> None:
    server = receiver(rate_per_s=2.0, burst=5)
    start = time.monotonic()
    statuses = [get(server, f'/ipnotify/cam01?event=VM&token={SECRET.decode()}') for _ in range(40)]
    elapsed = time.monotonic() - start
    assert statuses.count(200) <= 5 + 2 * elapsed + 1 and statuses.count(429) >= 40 - 5 - 2 * elapsed - 1
    assert server.counts()['rate_limited'] == statuses.count(429)
    assert 'sends faster than 2/s' in server.last_problem


def test_configuration_refuses_wildcard_addresses_and_weak_or_open_secrets(tmp_path: Path) -> None:
    for address in ('0.0.0.0', '::'):
        with pytest.raises(ReceiverConfigError, match='every interface'):
            ReceiverSettings(bind_address=address, port=8090, secrets={'cam01': SECRET})
    # The bringup refuses it before any process starts.
    site = Path(__file__).resolve().parents[1] / 'config' / 'site_rathausvorplatz.yaml'
    with pytest.raises(GraphConfigError, match='/vss/camera_events: bind_address 0.0.0.0 would listen on every'):
        load_graph(site, overrides={'/vss/camera_events': {'bind_address': '0.0.0.0'}})
    with pytest.raises(ReceiverConfigError, match='shorter than 16 bytes'):
        ReceiverSettings(bind_address='127.0.0.1', port=8090, secrets={'cam01': b'short'})
    (tmp_path / 'cam01.secret').write_bytes(SECRET + b'\n')
    (tmp_path / 'cam01.secret').chmod(0o600)
    assert load_secrets(['cam01'], tmp_path) == {'cam01': SECRET}
    with pytest.raises(ReceiverConfigError, match='cam02.secret cannot be read'):
        load_secrets(['cam01', 'cam02'], tmp_path)
    (tmp_path / 'cam01.secret').chmod(0o644)
    with pytest.raises(ReceiverConfigError, match='readable by everyone'):
        load_secrets(['cam01'], tmp_path)


CAMERA_EVENT_RULES = [
    {'name': 'cam01_person_after_hours', 'kind': 'camera_event', 'camera': 'cam01',
     'event_types': ['AI_person', 'VM'], 'duration_s': 5.0},
]


def test_rules_choose_which_event_types_start_an_incident() -> None:
    engine = RuleEngine(parse_rules(CAMERA_EVENT_RULES), manual_duration_s=2.0)
    assert engine.alarm('cam01', 1_000_000_000, 'AS') == []  # audio: not chosen by any rule
    started = engine.alarm('cam01', 2_000_000_000, 'ai_PERSON')
    assert [u.phase for u in started] == ['start']
    assert started[0].incident.rule == 'cam01_person_after_hours' and started[0].incident.kind == 'camera_event'
    assert started[0].incident.reasons == ['camera_event cam01_person_after_hours: ai_PERSON']
    assert [u.phase for u in engine.tick(7_000_000_000)] == ['end']  # duration_s 5
    # A camera without camera_event rules: every alarm opens an incident (alarm panels).
    assert [u.phase for u in engine.alarm('cam02', 3_000_000_000, 'door contact')] == ['start']
    with pytest.raises(RuleConfigError, match="'event_types': must not be empty"):
        parse_rules([{**CAMERA_EVENT_RULES[0], 'event_types': []}])


# -- through ROS: receiver node process -> /vss/cam01/alarm -> event manager process -> /vss/events ----------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.ros
@pytest.mark.slow
def test_camera_event_opens_an_incident_through_the_event_manager(tmp_path: Path) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    from kaiserslautern_vss.bringup.node_spec import NodeSpec
    from kaiserslautern_vss.bringup.processes import GraphProcesses
    from kaiserslautern_vss.ros import qos
    from kaiserslautern_vss.ros.topics import EVENTS

    (tmp_path / 'ipnotify').mkdir(mode=0o700)
    (tmp_path / 'ipnotify' / 'cam01.secret').write_bytes(SECRET)
    (tmp_path / 'ipnotify' / 'cam01.secret').chmod(0o600)
    rules = tmp_path / 'rules.yaml'
    rules.write_text(json.dumps({'rules': CAMERA_EVENT_RULES}))
    port = _free_port()
    graph = GraphProcesses([
        NodeSpec('camera_events', 'camera_events', '/vss',
                 dict(cameras=['cam01'], bind_address='127.0.0.1', port=port,
                      secrets_dir=str(tmp_path / 'ipnotify'))),
        NodeSpec('event_manager', 'event_manager', '/vss',
                 dict(cameras=['cam01'], rules_file=str(rules), record_root=str(tmp_path / 'recordings'),
                      pre_event_s=0.0, post_event_s=0.0, alarm_duration_s=1.0,
                      signing_key_file=str(tmp_path / 'keys' / 'signing_key.pem'),
                      outbox_path=str(tmp_path / 'outbox.sqlite')))])
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('incident_observer', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    events: list[dict] = []
    node.create_subscription(String, EVENTS, lambda msg: events.append(json.loads(msg.data)), qos.LATCHED)
    graph.start()
    try:
        spin = lambda: executor.spin_once(timeout_sec=0.05)  # noqa: E731
        assert wait_until(lambda: node.count_publishers('/vss/cam01/alarm') > 0
                          and node.count_subscribers('/vss/cam01/alarm') > 0, 30, step=spin)

        def send(event_type: str) -> int:
            url = f'http://127.0.0.1:{port}/ipnotify/cam01?event={event_type}&token={SECRET.decode()}'
            result: list[int] = []
            thread = threading.Thread(target=lambda: result.append(urllib.request.urlopen(url, timeout=5).status))
            thread.start()
            wait_until(lambda: not thread.is_alive(), 10, step=spin)
            return result[0]

        assert send('AS') == 200  # not chosen by the rules: no incident
        wait_until(lambda: False, 1.5, step=spin)
        assert events == []
        assert send('AI_person') == 200
        assert wait_until(lambda: any(e['phase'] == 'start' for e in events), 15, step=spin)
    finally:
        codes = graph.stop()
        node.destroy_node()
        context.try_shutdown()
    start = next(e for e in events if e['phase'] == 'start')
    assert start['camera'] == 'cam01' and start['rule'] == 'cam01_person_after_hours'
    assert start['reasons'] == ['camera_event cam01_person_after_hours: AI_person']
    assert list(codes.values()) == [0, 0]
