"""The event_manager process over real DDS: alarm input -> incident, signed bag, webhook
alert with an anonymised snapshot; nothing on disk without an incident; SIGKILL mid-incident;
behaviour cues -> an incident naming the cue, recorded with the cues and skeletons."""

from __future__ import annotations

import base64
import json
import signal
import stat
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rosbags.rosbag2 import Reader
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from conftest import wait_until
from kaiserslautern_vss.behaviour.messages import encode_behaviour
from kaiserslautern_vss.behaviour.types import BehaviourResult, Cue, Pose
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.events.alerts import SIGNATURE_HEADER, sign_body
from kaiserslautern_vss.recordings.bag_writer import read_unfinished_mcap
from kaiserslautern_vss.recordings.integrity import public_key_path
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.exit_codes import EXIT_BAD_CONFIG
from kaiserslautern_vss.ros.skeleton_markers import skeleton_markers
from kaiserslautern_vss.tools import verify
from servers.alert_receivers import WebhookServer

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SECRET = b'node-webhook-secret'
IMAGE_TOPIC = '/vss/cam01/image_anonymized/compressed'
PRE_EVENT_S = 1.0


class Feeder:
    """Publishes 10 fps anonymised JPEGs and empty detections, like the privacy/detector nodes,
    and hears /vss/events and the event manager's /diagnostics."""

    def __init__(self, context, jpeg: bytes | None = None) -> None:
        self.node = rclpy.create_node('feeder', context=context)
        self.images = self.node.create_publisher(CompressedImage, IMAGE_TOPIC, qos.SENSOR)
        self.detections = self.node.create_publisher(Detection2DArray, '/vss/cam01/detections', qos.RELIABLE)
        self.alarm = self.node.create_publisher(String, '/vss/cam01/alarm', qos.RELIABLE)
        self.jpeg = jpeg or cv2.imencode('.jpg', np.full((576, 768, 3), 90, np.uint8))[1].tobytes()
        self.events: list[dict] = []
        self.diagnostics: dict[str, tuple[int, str]] = {}  # status name -> (level, message)
        self.node.create_subscription(String, '/vss/events', lambda m: self.events.append(json.loads(m.data)),
                                      qos.LATCHED)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.published_ns: list[int] = []
        #: called with each frame's header: what else the vision pipeline publishes for it
        self.with_frame: list = []

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        next_frame = time.monotonic()
        while time.monotonic() < deadline:
            if time.monotonic() >= next_frame:
                stamp = self.node.get_clock().now()
                image = CompressedImage(format='jpeg', data=self.jpeg)
                image.header.stamp = stamp.to_msg()
                self.images.publish(image)
                self.detections.publish(Detection2DArray(header=image.header))
                for publish in self.with_frame:
                    publish(image.header)
                self.published_ns.append(stamp.nanoseconds)
                next_frame += 0.1
            self.executor.spin_once(timeout_sec=0.01)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = (int.from_bytes(status.level, 'little')
                                             if isinstance(status.level, bytes) else int(status.level), status.message)

    def in_phase(self, phase: str) -> list[dict]:
        return [e for e in self.events if e['phase'] == phase]

    def phases(self, incident_id: str | None = None) -> list[str]:
        return [e['phase'] for e in self.events if incident_id is None or e['id'] == incident_id]

    def wait_for_subscriber(self) -> bool:
        """Until the event manager started for this test is up: its diagnostics arrive (a node
        SIGKILLed by an earlier test stays discovered for a while, but publishes nothing)."""
        self.diagnostics.clear()
        return wait_until(lambda: self.images.get_subscription_count() > 0
                          and self.alarm.get_subscription_count() > 0
                          and 'event_manager: recorder' in self.diagnostics, 30, step=lambda: self.run(0.05))


def start_event_manager(tmp_path: Path, **overrides) -> GraphProcesses:
    rules = tmp_path / 'rules.yaml'
    rules.write_text('rules:\n  - {name: never, kind: zone_intrusion, camera: cam01, '
                     'zone: [[0, 0], [1, 0], [1, 1]]}\n')
    parameters = dict(cameras=['cam01'], rules_file=str(rules), record_root=str(tmp_path / 'recordings'),
                      pre_event_s=PRE_EVENT_S, post_event_s=1.0, alarm_duration_s=2.0,
                      signing_key_file=str(tmp_path / 'keys' / 'signing_key.pem'),
                      audit_key_file=str(tmp_path / 'keys' / 'audit.key'),
                      outbox_path=str(tmp_path / 'outbox.sqlite'))
    parameters.update(overrides)
    graph = GraphProcesses([NodeSpec('event_manager', 'event_manager', '/vss', parameters)])
    graph.start()
    return graph


@pytest.fixture
def feeder():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    feeder = Feeder(context)
    yield feeder
    feeder.node.destroy_node()
    context.try_shutdown()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob('*') if p.is_file()] if root.exists() else []


def test_alarm_incident_is_recorded_signed_and_alerted(tmp_path, feeder):
    (tmp_path / 'secret').write_bytes(SECRET)
    server = WebhookServer(tmp_path)
    server.start()
    graph = start_event_manager(tmp_path, webhook_url=server.url, webhook_secret_file=str(tmp_path / 'secret'),
                   webhook_ca_file=str(server.cert))
    try:
        assert feeder.wait_for_subscriber()
        feeder.run(3.0)
        assert _files(tmp_path / 'recordings') == []  # no incident: no image byte on disk
        alarm_ns = feeder.node.get_clock().now().nanoseconds
        feeder.alarm.publish(String(data='door contact 3'))
        feeder.run(5.0)  # 2 s alarm + 1 s post-event + margin
        assert wait_until(lambda: len(server.received) >= 2, 10, step=lambda: feeder.run(0.1))
    finally:
        codes = graph.stop()
        server.stop()
    assert list(codes.values()) == [0]
    alerts = [json.loads(body) for _, body in server.received]
    assert [a['event']['phase'] for a in alerts] == ['start', 'end']
    assert alerts[0]['event']['reasons'] == ['alarm: door contact 3']
    for headers, body in server.received:
        assert headers[SIGNATURE_HEADER] == sign_body(SECRET, body)
    snapshot = cv2.imdecode(np.frombuffer(base64.b64decode(alerts[0]['snapshot']['data_base64']), np.uint8),
                            cv2.IMREAD_COLOR)
    assert snapshot.shape == (240, 320, 3)

    (bag,) = [p for p in (tmp_path / 'recordings').iterdir()]
    assert '_cam01_manual_' in bag.name
    public = public_key_path(tmp_path / 'keys' / 'signing_key.pem')
    assert verify.main(['--key', str(public), str(bag)]) == 0
    # Readable by the service user only, whatever the umask of whoever started the node.
    for private in [tmp_path / 'recordings', *(tmp_path / 'recordings').rglob('*'), tmp_path / 'keys',
                    tmp_path / 'keys' / 'signing_key.pem', tmp_path / 'keys' / 'audit.key',
                    *tmp_path.glob('outbox.sqlite*')]:
        assert stat.S_IMODE(private.stat().st_mode) in (0o700, 0o600), private
    with Reader(bag) as reader:
        stamps = [t for c, t, _ in reader.messages() if c.topic == IMAGE_TOPIC]
        assert not any('image_raw' in c.topic for c in reader.connections)
    started_ns = alerts[0]['event']['started_ns']
    assert abs(started_ns - alarm_ns) < 0.5e9
    # Pre-event seconds within one frame; best-effort frames from a feeder on a busy
    # 2-core machine may slip, hence two frame periods of slack on the late side.
    assert (PRE_EVENT_S - 0.2) * 1e9 <= started_ns - stamps[0] <= (PRE_EVENT_S + 0.1) * 1e9


def test_sigkill_mid_incident_keeps_all_but_the_last_second(tmp_path, feeder):
    graph = start_event_manager(tmp_path, alarm_duration_s=60.0)
    try:
        assert feeder.wait_for_subscriber()
        feeder.run(1.5)
        feeder.alarm.publish(String(data='panic button'))
        feeder.run(5.0)
        event_manager = graph.of_executable('event_manager')[0].process
        event_manager.send_signal(signal.SIGKILL)
        event_manager.wait(10)
        last_published_ns = feeder.published_ns[-1]
    finally:
        graph.stop()
    (bag,) = [p for p in (tmp_path / 'recordings').iterdir()]
    assert not (bag / 'metadata.yaml').exists()  # the writer never finished
    with open(next(bag.glob('*.mcap')), 'rb') as stream:
        stamps = [t for topic, t, _ in read_unfinished_mcap(stream) if topic == IMAGE_TOPIC]
    assert len(stamps) > 30
    assert last_published_ns - stamps[-1] < 1.6e9  # flushed every second (+ delivery jitter)


def test_behaviour_cues_open_an_incident_naming_the_cue_recorded_with_cues_and_skeletons(tmp_path, feeder):
    rules = tmp_path / 'behaviour_rules.yaml'
    rules.write_text('rules:\n  - {name: fight, kind: assault, threshold: 0.6, min_duration_s: 0.3}\n')
    graph = start_event_manager(tmp_path, rules_file=str(rules), end_hold_s=1.0)
    behaviour = feeder.node.create_publisher(String, '/vss/cam01/behaviour', qos.RELIABLE)
    skeletons = feeder.node.create_publisher(MarkerArray, '/vss/cam01/skeletons', qos.RELIABLE)
    fighting = [True]
    strikes = Cue('assault', 0.83, (3, 7), {'limb_speed_heights_per_s': 3.1, 'contact_heights': 0.2})
    pose = Pose(3, np.tile(np.array([[100.0, 200.0, 0.9]], np.float32), (17, 1)))

    def cues_and_skeletons(header) -> None:
        stamp_ns = header.stamp.sec * 10**9 + header.stamp.nanosec
        result = BehaviourResult((pose,), (strikes,) if fighting[0] else (), True)
        behaviour.publish(String(data=encode_behaviour('cam01', stamp_ns, result)))
        skeletons.publish(skeleton_markers(result.poses, header))
    try:
        assert feeder.wait_for_subscriber()
        assert wait_until(lambda: behaviour.get_subscription_count() > 0, 30, step=lambda: feeder.run(0.05))
        for malformed in ('{"schema": "vss.behaviour/1", "cues": "many"}', '[' * 200):  # dropped, counted
            behaviour.publish(String(data=malformed))
        feeder.with_frame.append(cues_and_skeletons)
        assert wait_until(lambda: feeder.in_phase('start'), 20, step=lambda: feeder.run(0.1))
        feeder.run(1.0)
        fighting[0] = False
        assert wait_until(lambda: feeder.in_phase('end'), 20, step=lambda: feeder.run(0.1))
        feeder.run(1.5)  # post-event, then the bag closes
        assert wait_until(lambda: feeder.diagnostics.get('event_manager: behaviour', (0, ''))[0] == 1, 10,
                          step=lambda: feeder.run(0.1))
        level, message = feeder.diagnostics['event_manager: behaviour']
    finally:
        codes = graph.stop()
    assert list(codes.values()) == [0]
    start, end = feeder.in_phase('start')[0], feeder.in_phase('end')[0]
    assert (start['rule'], start['kind'], end['id']) == ('fight', 'assault', start['id'])
    assert end['cues'] == [{'rule': 'fight', 'kind': 'assault', 'score': 0.83, 'track_ids': [3, 7],
                            'evidence': {'limb_speed_heights_per_s': 3.1, 'contact_heights': 0.2},
                            'first_ns': start['started_ns'], 'peak_ns': start['started_ns']}]
    assert message == '2 malformed behaviour message(s) dropped'
    (bag,) = [p for p in (tmp_path / 'recordings').iterdir()]
    assert '_cam01_fight_' in bag.name
    with Reader(bag) as reader:
        topics = [connection.topic for connection, _, _ in reader.messages()]
    assert topics.count('/vss/cam01/behaviour') > 10 and topics.count('/vss/cam01/skeletons') > 10


@pytest.mark.parametrize('secret_file, reason', [
    ('', 'webhook_url is set but webhook_secret_file is not'),
    ('/nonexistent/webhook.secret', 'webhook secret: cannot read /nonexistent/webhook.secret'),
])
def test_a_webhook_that_cannot_work_is_refused_at_start_not_a_crash_loop(tmp_path, secret_file, reason):
    graph = start_event_manager(tmp_path, webhook_url='https://127.0.0.1:9/vss', webhook_secret_file=secret_file)
    node = graph.nodes[0]
    try:
        assert wait_until(lambda: node.returncode is not None, 60)
        assert node.returncode == EXIT_BAD_CONFIG  # refused: the graph stops, nothing respawns it
        assert graph.failed_at_startup() == [node]
    finally:
        graph.stop()
