"""The operator_console node over real DDS, next to a real event manager: it subscribes
anonymised topics only (never image_raw), serves what it received over HTTPS, and the
manual trigger goes through the event manager's service and comes back as an alert."""

from __future__ import annotations

import socket
import time

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from conftest import wait_until
from console_support import PASSWORD, ConsoleClient, make_users, totp_code
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.nodes.operator_console import SUBSCRIBED_PER_CAMERA
from kaiserslautern_vss.ros import qos

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CONSOLE_TOPICS = {'/vss/cam01/image_anonymized/compressed', '/vss/cam01/detections', '/vss/events'}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Camera:
    """Publishes anonymised JPEGs (grey) and, like a hostile or commissioning process, raw
    frames (white) on image_raw."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node('fake_pipeline', context=context)
        self.anonymized = self.node.create_publisher(CompressedImage, '/vss/cam01/image_anonymized/compressed',
                                                     qos.SENSOR)
        self.detections = self.node.create_publisher(Detection2DArray, '/vss/cam01/detections', qos.RELIABLE)
        self.raw = self.node.create_publisher(Image, '/vss/cam01/image_raw', qos.SENSOR)
        self.jpeg = cv2.imencode('.jpg', np.full((180, 320, 3), 90, np.uint8))[1].tobytes()
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', lambda msg: self.diagnostics.update(
            {status.name: status.message for status in msg.status}), 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def publish(self) -> None:
        stamp = self.node.get_clock().now().to_msg()
        image = CompressedImage(format='jpeg', data=self.jpeg)
        image.header.stamp = stamp
        self.anonymized.publish(image)
        self.detections.publish(Detection2DArray(header=image.header))
        raw = Image(height=180, width=320, encoding='bgr8', step=960, data=bytes([255]) * (960 * 180))
        raw.header.stamp = stamp
        self.raw.publish(raw)
        self.executor.spin_once(timeout_sec=0.05)


@pytest.fixture
def graph(tmp_path):
    rules = tmp_path / 'rules.yaml'
    rules.write_text('rules:\n  - {name: never, kind: zone_intrusion, camera: cam01, '
                     'zone: [[0, 0], [1, 0], [1, 1]]}\n')
    keys = tmp_path / 'keys'
    shared = dict(cameras=['cam01'], record_root=str(tmp_path / 'recordings'),
                  signing_key_file=str(keys / 'signing_key.pem'), audit_key_file=str(keys / 'audit.key'))
    port = free_port()
    accounts = make_users(keys / 'users.json')
    processes = GraphProcesses([
        NodeSpec('event_manager', 'event_manager', '/vss', dict(
            shared, rules_file=str(rules), pre_event_s=1.0, post_event_s=1.0, alarm_duration_s=2.0,
            outbox_path=str(tmp_path / 'outbox.sqlite'))),
        NodeSpec('operator_console', 'operator_console', '/vss', dict(
            shared, bind_address='127.0.0.1', port=port, users_file=str(keys / 'users.json'),
            tls_self_signed=True, tls_cert_file=str(keys / 'cert.pem'), tls_key_file=str(keys / 'console_key.pem'),
            export_root=str(tmp_path / 'exports'))),
    ], respawn=False)
    processes.start()
    context = rclpy.context.Context()
    rclpy.init(context=context)
    camera = Camera(context)
    client = ConsoleClient('127.0.0.1', port)
    try:
        yield camera, client, accounts
    finally:
        client.close()
        camera.node.destroy_node()
        context.try_shutdown()
        codes = processes.stop()
        assert list(codes.values()) == [0, 0], codes


def console_subscriptions(node) -> set[str]:
    found = {}
    for name, namespace in node.get_node_names_and_namespaces():
        if name == 'operator_console':
            found = node.get_subscriber_names_and_types_by_node(name, namespace)
    return {topic for topic, _ in found}


def test_console_node_sees_anonymised_data_only_and_triggers_through_the_event_manager(graph):
    camera, client, accounts = graph
    assert set(SUBSCRIBED_PER_CAMERA) == {'image_anonymized/compressed', 'detections'}
    assert wait_until(lambda: console_subscriptions(camera.node) == {'/vss/events'}, 60, step=camera.publish), \
        console_subscriptions(camera.node)  # nobody watches yet: no camera topic at all
    assert wait_until(lambda: _login(client, accounts), 60, step=camera.publish)
    assert client.get('/api/live/status').status == 200  # a browser opens the live view
    assert wait_until(lambda: console_subscriptions(camera.node) == CONSOLE_TOPICS, 30, step=camera.publish), \
        console_subscriptions(camera.node)
    assert camera.raw.get_subscription_count() == 0  # nobody (the console least of all) reads raw frames
    assert wait_until(lambda: client.get('/api/live/cam01.jpg').status == 200, 30, step=camera.publish)
    served = client.get('/api/live/cam01.jpg').body
    assert served == camera.jpeg  # exactly the anonymised JPEG; a raw (white) frame never reaches it

    client.get('/live')
    assert wait_until(lambda: client.post('/api/cameras/cam01/trigger', {'reason': 'Test'}).status == 200, 30,
                      step=camera.publish)
    assert wait_until(lambda: any(a['rule'] == 'manual' for a in client.get('/api/alerts').json()['alerts']),
                      30, step=camera.publish)
    assert wait_until(lambda: 'operator_console: console' in camera.diagnostics, 20, step=camera.publish)
    # the browser left: after the grace period the camera streams are dropped again
    assert wait_until(lambda: console_subscriptions(camera.node) == {'/vss/events'}, 40, step=camera.publish)


def _login(client: ConsoleClient, accounts) -> bool:
    try:
        return client.login('olga', PASSWORD, totp_code(accounts['olga'])).status == 303
    except OSError:  # still starting
        time.sleep(0.2)
        return False

