"""Nothing anyone on the bus sends takes a node down: a fuzz test over real DDS.

The site's node processes run (vision_pipeline with a camera, event_manager, operator_console
with a browser watching the live view, camera_events). Every topic each node subscribes and
every service it offers, found through the ROS graph (so a new subscription is fuzzed without
changing this test), gets random bytes as raw CDR, malformed CDR, typed messages with every
field at an extreme (NaN, infinities, stamps at the end of time, 10,000-element arrays, 100 kB
strings) and, on String topics, hostile JSON (100,000 levels deep and more). Afterwards no
process has exited, and each still does its job: masked frames come out of the pipeline, a
trigger is recorded, the console serves pages, a camera event becomes an alarm.
"""

from __future__ import annotations

import threading
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, shared_file, wait_until
from console_support import PASSWORD, ConsoleClient, make_users, totp_code
from diagnostic_msgs.msg import DiagnosticArray
from fuzz_payloads import RAW_KINDS, TYPED_KINDS, adversarial, string_payloads
from pipeline_watch import SpinningNode
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosidl_runtime_py.utilities import get_message, get_service
from sensor_msgs.msg import CompressedImage
from servers.alert_receivers import free_port
from std_msgs.msg import String
from std_srvs.srv import Trigger

from kaiserslautern_vss.bringup.arguments import derive_graph
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.nodes.operator_console import SUBSCRIBED_PER_CAMERA
from kaiserslautern_vss.ros import qos

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SECRET = b'cam01-ipnotify-fuzz-secret'
NODES = ('/vss/cam01/camera_driver', '/vss/detector', '/vss/privacy', '/vss/event_manager',
         '/vss/operator_console', '/vss/camera_events')
COPIES = 2  # of each payload: a latched topic keeps the last ones for late joiners
#: offered QoS every subscription accepts: reliable and transient-local satisfy any request
FUZZ_QOS = QoSProfile(depth=COPIES * 40, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
SERVICE_TIMEOUT_S = 30.0
PACE_S = 0.05
#: topics where some payload kinds are certain to be refused, so the drops show they arrived
MUST_DROP = {'privacy': ['/vss/events'],
             'event_manager': ['/vss/cam01/alarm', '/vss/cam01/camera_info', '/vss/cam01/detections',
                               '/vss/cam01/image_anonymized/compressed']}


class Fuzzer(SpinningNode):
    def __init__(self) -> None:
        super().__init__('fuzzer')
        self.frames = 0
        self.alarms: list[str] = []
        self.dropped: dict[str, dict[str, str]] = {}
        self.node.create_subscription(CompressedImage, '/vss/cam01/image_anonymized/compressed',
                                      lambda _: self._count_frame(), qos.SENSOR)
        self.node.create_subscription(String, '/vss/cam01/alarm', lambda msg: self.alarms.append(msg.data),
                                      qos.RELIABLE)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.start()

    def _count_frame(self) -> None:
        self.frames += 1

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(': dropped messages'):
                self.dropped[status.name] = {value.key: value.value for value in status.values}

    def surface(self, fqn: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(topic, type) subscribed and (service, type) offered by the node ``fqn``."""
        namespace, _, name = fqn.rpartition('/')
        topics = self.node.get_subscriber_names_and_types_by_node(name, namespace)
        services = self.node.get_service_names_and_types_by_node(name, namespace)
        return ([(topic, types[0]) for topic, types in topics],
                [(service, types[0]) for service, types in services])


def _payloads(type_name: str) -> dict[str, object]:
    """Bytes (published as they are) or messages of the type, by payload kind."""
    msg_class = get_message(type_name)
    valid = serialize_message(msg_class())
    payloads: dict[str, object] = {kind: make(valid) for kind, make in RAW_KINDS.items()}
    payloads.update({kind: adversarial(msg_class, kind) for kind in TYPED_KINDS})
    if type_name == 'std_msgs/msg/String':
        payloads.update(string_payloads())
    return payloads


def _graph_specs(tmp_path: Path) -> list[NodeSpec]:
    clip = shared_file('data/vtest.avi')
    document = yaml.safe_load((REPO_ROOT / 'config' / 'vss.yaml').read_text())
    document['/vss/cam01/camera_driver']['ros__parameters'].update(url=str(clip), loop=True)
    document['/vss/event_manager']['ros__parameters'].update(
        record_root=str(tmp_path / 'recordings'), pre_event_s=1.0, post_event_s=1.0,
        signing_key_file=str(tmp_path / 'keys' / 'signing_key.pem'),
        audit_key_file=str(tmp_path / 'keys' / 'audit.key'), outbox_path=str(tmp_path / 'outbox.sqlite'))
    (tmp_path / 'rules_demo.yaml').write_text((REPO_ROOT / 'config' / 'rules_demo.yaml').read_text())
    config = tmp_path / 'graph.yaml'
    config.write_text(yaml.safe_dump(document))
    keys = tmp_path / 'keys'
    keys.mkdir(exist_ok=True)
    (tmp_path / 'ipnotify').mkdir(mode=0o700)
    (tmp_path / 'ipnotify' / 'cam01.secret').write_bytes(SECRET)
    (tmp_path / 'ipnotify' / 'cam01.secret').chmod(0o600)
    return [*derive_graph(config), NodeSpec('operator_console', 'operator_console', '/vss', dict(
        cameras=['cam01'], record_root=str(tmp_path / 'recordings'), bind_address='127.0.0.1', port=free_port(),
        users_file=str(keys / 'users.json'), tls_self_signed=True, tls_cert_file=str(keys / 'cert.pem'),
        tls_key_file=str(keys / 'console_key.pem'), signing_key_file=str(keys / 'signing_key.pem'),
        audit_key_file=str(keys / 'audit.key'), export_root=str(tmp_path / 'exports'))),
        NodeSpec('camera_events', 'camera_events', '/vss', dict(
            cameras=['cam01'], bind_address='127.0.0.1', port=free_port(), secrets_dir=str(tmp_path / 'ipnotify')))]


def _port(graph: GraphProcesses, executable: str) -> int:
    return graph.of_executable(executable)[0].plan.nodes[0].parameters['port']


def _call(client, request) -> bool:
    """Whether the service answered."""
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    answered = done.wait(SERVICE_TIMEOUT_S)
    if not answered:
        future.cancel()
    return answered


def test_no_payload_takes_a_node_down(tmp_path: Path) -> None:
    specs = _graph_specs(tmp_path)
    accounts = make_users(tmp_path / 'keys' / 'users.json')
    graph = GraphProcesses(specs, respawn=False)
    graph.start()
    fuzzer = Fuzzer()
    console = ConsoleClient('127.0.0.1', _port(graph, 'operator_console'))
    coverage: Counter[tuple[str, str]] = Counter()  # (node, topic or service) -> payload kinds sent
    unanswered: list[str] = []
    try:
        assert wait_until(lambda: fuzzer.frames > 5 or any(n.returncode is not None for n in graph.nodes), 180)
        assert [n.plan.name for n in graph.nodes if n.returncode is not None] == []

        def logged_in() -> bool:
            try:
                return console.login('olga', PASSWORD, totp_code(accounts['olga'])).status == 303
            except OSError:  # still starting
                return False
        assert wait_until(logged_in, 60, interval_s=0.5)
        assert console.get('/api/live/status').status == 200  # the console now subscribes the camera topics
        watched = 1 + len(SUBSCRIBED_PER_CAMERA)  # /vss/events and each camera topic of the live view
        assert wait_until(lambda: len(fuzzer.surface('/vss/operator_console')[0]) == watched, 30)

        publishers, clients = {}, {}
        payloads: dict[str, dict[str, bytes]] = {}
        for fqn in NODES:
            topics, services = fuzzer.surface(fqn)
            for topic, type_name in topics:
                if topic not in publishers:
                    publishers[topic] = fuzzer.node.create_publisher(get_message(type_name), topic, FUZZ_QOS)
                    # matched with every subscriber first: a volatile one would miss what came before
                    assert wait_until(lambda: publishers[topic].get_subscription_count()
                                      >= fuzzer.node.count_subscribers(topic), 30), topic
                kinds = payloads.setdefault(type_name, _payloads(type_name))
                for kind, payload in kinds.items():
                    for _ in range(COPIES):
                        publishers[topic].publish(payload)  # bytes: sent as they are, the topic's CDR or not
                        wait_until(lambda: False, PACE_S)  # a burst would only overflow the subscriber's queue
                    coverage[(fqn, topic)] += 1
            for service, type_name in services:
                srv_class = get_service(type_name)
                client = clients.setdefault(service, fuzzer.node.create_client(srv_class, service))
                for kind in ('empty', *TYPED_KINDS):
                    if not _call(client, adversarial(srv_class.Request, kind)):
                        unanswered.append(f'{service} ({kind})')
                    coverage[(fqn, service)] += 1
        wait_until(lambda: False, 5)  # the last payloads arrive and are handled
        exited = {n.plan.name: n.returncode for n in graph.nodes if n.returncode is not None}
        assert exited == {}, f'processes exited under fuzzing: {exited}'

        # Each node still does its job.
        frames = fuzzer.frames
        assert wait_until(lambda: fuzzer.frames > frames + 5, 60), 'no masked frames after the fuzzing'
        trigger = fuzzer.node.create_client(Trigger, '/vss/cam01/trigger_recording')
        recordings = tmp_path / 'recordings'
        before = set(recordings.rglob('metadata.yaml'))
        response = trigger.call_async(Trigger.Request())
        assert wait_until(response.done, 30) and response.result().success
        assert wait_until(lambda: set(recordings.rglob('metadata.yaml')) - before, 120), 'the trigger was not recorded'
        assert console.get('/api/live/status').status == 200
        url = (f'http://127.0.0.1:{_port(graph, "camera_events")}/ipnotify/cam01?event=AI_person'
               f'&token={SECRET.decode()}')
        assert urllib.request.urlopen(url, timeout=30).status == 200
        assert wait_until(lambda: 'AI_person' in fuzzer.alarms, 30)
        def settled() -> bool:  # the nodes have worked through what they were sent
            before = {name: dict(counts) for name, counts in fuzzer.dropped.items()}
            wait_until(lambda: False, 3.0)
            return fuzzer.dropped == before
        wait_until(settled, 120)

        def dropped_on(node: str, topic: str) -> bool:
            return any(key.startswith(topic if ': ' in topic else f'{topic}: ')
                       for key in fuzzer.dropped.get(f'{node}: dropped messages', {}))
        assert wait_until(lambda: all(dropped_on(node, topic) for node, topics in MUST_DROP.items()
                                      for topic in topics), 30), fuzzer.dropped
    finally:
        console.close()
        fuzzer.close()
        codes = graph.stop()
    nodes_covered = sorted({fqn for fqn, _ in coverage})
    print(f'\nfuzz coverage: {len(nodes_covered)} nodes x {len(coverage)} topics and services x '
          f'{len(RAW_KINDS) + len(TYPED_KINDS)} payload kinds (+{len(string_payloads())} on String topics), '
          f'{sum(coverage.values())} (node, endpoint, kind) cases')
    for (fqn, endpoint), kinds in sorted(coverage.items()):
        print(f'  {fqn} {endpoint}: {kinds} kinds')
    for name, counts in sorted(fuzzer.dropped.items()):
        print(f'  {name}: {counts}')
    assert unanswered == [], f'services that did not answer: {unanswered}'
    assert all(code == 0 for code in codes.values()), codes


def test_a_latched_event_nested_100000_deep_costs_the_pipeline_nothing(tmp_path: Path) -> None:
    """The attack that kept vision_pipeline crashing: one latched /vss/events message, an array
    nested 100,000 deep. It is refused in the subscription callback; masking goes on."""
    specs = [spec for spec in _graph_specs(tmp_path) if spec.executable not in ('operator_console', 'camera_events')]
    graph = GraphProcesses(specs, respawn=False)
    graph.start()
    fuzzer = Fuzzer()
    try:
        assert wait_until(lambda: fuzzer.frames > 5 or any(n.returncode is not None for n in graph.nodes), 180)
        publisher = fuzzer.node.create_publisher(String, '/vss/events', qos.LATCHED)
        assert wait_until(lambda: publisher.get_subscription_count() >= 1, 30)
        publisher.publish(String(data='[' * 100_000 + ']' * 100_000))
        assert wait_until(lambda: any(key.startswith('/vss/events: UntrustedJsonError') for key in
                                      fuzzer.dropped.get('privacy: dropped messages', {})), 60), fuzzer.dropped
        frames = fuzzer.frames
        assert wait_until(lambda: fuzzer.frames > frames + 10, 60)
        assert [n.plan.name for n in graph.nodes if n.returncode is not None] == []
    finally:
        fuzzer.close()
        codes = graph.stop()
    assert all(code == 0 for code in codes.values()), codes
