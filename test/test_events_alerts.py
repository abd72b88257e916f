"""Alerts over real receivers: mosquitto (TLS, password, restarted mid-run) and an HTTPS
webhook (HMAC-signed), through the persistent outbox: in order, at least once, nothing lost."""

from __future__ import annotations

import hmac
import json
import threading
import time

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from conftest import wait_until
from kaiserslautern_vss.events.alerts import (SIGNATURE_HEADER, AlertConfigError, AlertDispatcher,
                                              MqttSender, MqttSettings, WebhookSender, WebhookSettings,
                                              alert_body, sign_body, small_snapshot)
from kaiserslautern_vss.events.outbox import Outbox, backoff_s
from servers.alert_receivers import MOSQUITTO, Mosquitto, WebhookServer

SECRET = b'webhook-shared-secret'


def _body(number: int) -> bytes:
    return alert_body({'id': f'incident-{number}', 'phase': 'start'}, None)


def _numbers(bodies) -> list[int]:
    """Alert numbers in arrival order, duplicates (at-least-once) dropped."""
    seen: list[int] = []
    for body in bodies:
        number = int(json.loads(body)['event']['id'].split('-')[1])
        if number not in seen:
            seen.append(number)
    return seen


def test_backoff_doubles_and_is_capped():
    assert [backoff_s(n, 1.0, 10.0) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]


def test_snapshot_is_small_and_made_from_the_given_jpeg():
    frame = np.zeros((576, 768, 3), np.uint8)
    frame[:, 384:] = 255
    jpeg = cv2.imencode('.jpg', frame)[1].tobytes()
    snapshot = cv2.imdecode(np.frombuffer(small_snapshot(jpeg, 320), np.uint8), cv2.IMREAD_COLOR)
    assert snapshot.shape == (240, 320, 3)
    assert snapshot[:, :150].mean() < 10 and snapshot[:, 170:].mean() > 245
    assert small_snapshot(b'not a jpeg') is None


def test_webhook_refuses_plain_http(tmp_path):
    (tmp_path / 'secret').write_bytes(SECRET)
    with pytest.raises(AlertConfigError, match='https://'):
        WebhookSender(WebhookSettings('http://127.0.0.1:1/x', str(tmp_path / 'secret')))


def test_webhook_outage_loses_nothing_across_a_restart_of_the_sender(tmp_path):
    (tmp_path / 'secret').write_bytes(SECRET)
    server = WebhookServer(tmp_path)
    settings = WebhookSettings(server.url, str(tmp_path / 'secret'), ca_file=str(server.cert), timeout_s=2.0)
    clock = [1000.0]
    # Receiver down: alerts stay queued with growing backoff.
    outbox = Outbox(tmp_path / 'outbox.sqlite')
    dispatcher = AlertDispatcher(outbox, {'webhook': WebhookSender(settings)}, clock=lambda: clock[0])
    for number in range(1, 6):
        dispatcher.enqueue(_body(number))
    assert dispatcher.deliver_due(clock[0]) == 0
    assert outbox.head('webhook').attempts == 1
    assert dispatcher.deliver_due(clock[0] + 0.5) == 0  # still backing off: not even tried
    assert outbox.head('webhook').attempts == 1
    outbox.close()  # the event manager stops during the outage
    server.start()
    try:
        outbox = Outbox(tmp_path / 'outbox.sqlite')
        dispatcher = AlertDispatcher(outbox, {'webhook': WebhookSender(settings)}, clock=lambda: clock[0])
        assert outbox.pending('webhook') == 5
        assert dispatcher.deliver_due(clock[0] + 1.0) == 5
        assert outbox.pending() == 0
    finally:
        server.stop()
    assert _numbers(body for _, body in server.received) == [1, 2, 3, 4, 5]
    for headers, body in server.received:
        assert hmac.compare_digest(headers[SIGNATURE_HEADER], sign_body(SECRET, body))
        assert headers[SIGNATURE_HEADER] != sign_body(b'other secret', body)


class _Subscriber:
    """A durable (clean_session=False) QoS 1 subscriber: the broker keeps its messages
    while it is away, across a broker restart (persistence)."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.bodies: list[bytes] = []
        self.connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id='test-subscriber',
                             clean_session=False, protocol=mqtt.MQTTv311)
        client.tls_set(ca_certs=str(broker.cert))
        client.username_pw_set('alice', 'wonderland')
        client.reconnect_delay_set(1, 2)
        client.on_connect = lambda c, u, f, rc, p: (c.subscribe(topic, qos=1), self.connected.set())
        client.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()
        client.on_message = lambda c, u, m: self.bodies.append(m.payload)
        client.connect('127.0.0.1', broker.port)
        client.loop_start()
        self.client = client

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.skipif(not MOSQUITTO.exists(), reason='Debian package mosquitto is not installed')
def test_mqtt_alerts_survive_a_broker_restart_in_order(tmp_path):
    broker = Mosquitto(tmp_path, 'alice', 'wonderland')
    (tmp_path / 'mqtt_password').write_text('wonderland\n')
    broker.start()
    subscriber = _Subscriber(broker, 'vss/alerts')
    sender = MqttSender(MqttSettings('127.0.0.1', broker.port, 'vss/alerts', tls=True, ca_file=str(broker.cert),
                                     username='alice', password_file=str(tmp_path / 'mqtt_password'),
                                     ack_timeout_s=2.0))
    outbox = Outbox(tmp_path / 'outbox.sqlite')
    dispatcher = AlertDispatcher(outbox, {'mqtt': sender}, clock=time.time, backoff_cap_s=1.0)
    dispatcher.start(interval_s=0.1)
    try:
        assert subscriber.connected.wait(10)
        for number in (1, 2, 3):
            dispatcher.enqueue(_body(number))
        assert wait_until(lambda: len(_numbers(subscriber.bodies)) == 3, 15)

        broker.stop()
        assert wait_until(lambda: sender.last_error is not None, 10)
        for number in (4, 5, 6):
            dispatcher.enqueue(_body(number))
        assert wait_until(lambda: outbox.head('mqtt') is not None and outbox.head('mqtt').attempts >= 1, 10)
        assert outbox.pending('mqtt') == 3  # held, not dropped

        broker.start()
        assert wait_until(lambda: outbox.pending('mqtt') == 0, 30), sender.last_error
        assert wait_until(lambda: len(_numbers(subscriber.bodies)) == 6, 20)
    finally:
        dispatcher.stop()
        subscriber.close()
        broker.stop()
        outbox.close()
    assert _numbers(subscriber.bodies) == [1, 2, 3, 4, 5, 6]


@pytest.mark.skipif(not MOSQUITTO.exists(), reason='Debian package mosquitto is not installed')
def test_mqtt_wrong_password_is_reported_and_nothing_is_dropped(tmp_path):
    broker = Mosquitto(tmp_path, 'alice', 'wonderland')
    (tmp_path / 'wrong').write_text('guess\n')
    broker.start()
    sender = MqttSender(MqttSettings('127.0.0.1', broker.port, tls=True, ca_file=str(broker.cert),
                                     username='alice', password_file=str(tmp_path / 'wrong')))
    outbox = Outbox(tmp_path / 'outbox.sqlite')
    dispatcher = AlertDispatcher(outbox, {'mqtt': sender}, clock=time.time)
    try:
        dispatcher.enqueue(_body(1))
        assert wait_until(lambda: 'not authorized' in (sender.last_error or '').lower(), 10), sender.last_error
        assert dispatcher.deliver_due(time.time()) == 0
        assert outbox.pending('mqtt') == 1
    finally:
        dispatcher.stop()
        broker.stop()
        outbox.close()
