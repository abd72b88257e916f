"""Incident alerts to people outside ROS: MQTT and an HMAC-signed HTTPS webhook.

An alert is the event JSON plus a small snapshot re-encoded from the *anonymised*
JPEG (the event manager never sees raw images). Alerts go through the persistent
:class:`~kaiserslautern_vss.events.outbox.Outbox`; :class:`AlertDispatcher` delivers
each channel's oldest alert, backing off while a receiver is down.

Webhook receivers check ``X-VSS-Signature: sha256=<hex HMAC-SHA256 of the raw body>``
with the shared secret (compare with ``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import paho.mqtt.client as mqtt

from kaiserslautern_vss.events.outbox import Outbox, backoff_s

ALERT_SCHEMA = 'kaiserslautern_vss/alert/v1'
SIGNATURE_HEADER = 'X-VSS-Signature'


class AlertConfigError(ValueError):
    """An alert channel configured in a way that cannot work (missing secret, bad URL)."""


def small_snapshot(anonymized_jpeg: bytes, max_width: int = 320, quality: int = 70) -> bytes | None:
    """The anonymised frame shrunk to ``max_width`` pixels wide; None if it does not decode."""
    image = cv2.imdecode(np.frombuffer(anonymized_jpeg, np.uint8), cv2.IMREAD_COLOR) if anonymized_jpeg else None
    if image is None:
        return None
    height, width = image.shape[:2]
    if width > max_width:
        image = cv2.resize(image, (max_width, max(1, round(height * max_width / width))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return encoded.tobytes() if ok else None


def alert_body(event: Mapping[str, Any], snapshot_jpeg: bytes | None) -> bytes:
    snapshot = None if snapshot_jpeg is None else {
        'format': 'jpeg', 'data_base64': base64.b64encode(snapshot_jpeg).decode('ascii')}
    return json.dumps({'schema': ALERT_SCHEMA, 'event': event, 'snapshot': snapshot},
                      sort_keys=True).encode()


def sign_body(secret: bytes, body: bytes) -> str:
    return 'sha256=' + hmac.new(secret, body, hashlib.sha256).hexdigest()


def read_secret(path: str, what: str) -> bytes:
    if not path:
        raise AlertConfigError(f'{what}: no file given')
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as error:
        raise AlertConfigError(f'{what}: cannot read {path}: {error}') from error
    if not secret:
        raise AlertConfigError(f'{what}: {path} is empty')
    return secret


def alert_settings(values: Mapping[str, Any]) -> dict[str, MqttSettings | WebhookSettings]:
    """The alert channels (by name) the event_manager parameters ``values`` configure: one
    function for the node and for ``vss-bringup --check``, so both see the same channels."""
    channels: dict[str, MqttSettings | WebhookSettings] = {}
    if values['mqtt_host']:
        channels['mqtt'] = MqttSettings(values['mqtt_host'], values['mqtt_port'], values['mqtt_topic'],
                                        values['mqtt_tls'], values['mqtt_ca_file'], values['mqtt_username'],
                                        values['mqtt_password_file'])
    if values['webhook_url']:
        channels['webhook'] = WebhookSettings(values['webhook_url'], values['webhook_secret_file'],
                                              values['webhook_ca_file'])
    return channels


def alert_problems(values: Mapping[str, Any]) -> list[str]:
    """Why the alert channels of the event_manager parameters ``values`` cannot start, whatever
    the files they name hold (those are read when the node starts: a failure there is a
    [FATAL] configuration refusal, not a crash)."""
    webhook = alert_settings(values).get('webhook')
    problem = webhook.problem() if isinstance(webhook, WebhookSettings) else None
    return [problem] if problem else []


class AlertSender(Protocol):
    last_error: str | None

    def send(self, body: bytes) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int = 8883
    topic: str = 'vss/alerts'
    tls: bool = True
    ca_file: str = ''  # empty: system CAs
    username: str = ''
    password_file: str = ''
    client_id: str = 'vss-event-manager'
    ack_timeout_s: float = 5.0



class MqttSender:
    """QoS 1 publishes; a send counts only after the broker's PUBACK. paho's network
    thread reconnects on its own (1-5 s backoff) after a broker outage."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.last_error: str | None = 'not connected yet'
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                             protocol=mqtt.MQTTv311)
        if settings.tls:
            try:
                client.tls_set(ca_certs=settings.ca_file or None)
            except (OSError, ssl.SSLError) as error:
                raise AlertConfigError(f'mqtt_ca_file {settings.ca_file}: {error}') from error
        if settings.username:
            password = read_secret(settings.password_file, 'MQTT password') if settings.password_file else None
            client.username_pw_set(settings.username, password.decode() if password else None)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.connect_async(settings.host, settings.port, keepalive=30)
        client.loop_start()
        self._client = client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.last_error = None if not reason_code.is_failure else f'broker refused: {reason_code}'

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.last_error is None:  # keep a refusal's reason, the disconnect follows it
            self.last_error = f'disconnected: {reason_code}'

    def send(self, body: bytes) -> bool:
        if not self._client.is_connected():
            return False
        info = self._client.publish(self.settings.topic, body, qos=1)
        try:
            info.wait_for_publish(timeout=self.settings.ack_timeout_s)
        except (RuntimeError, ValueError) as error:  # connection lost while waiting
            self.last_error = str(error)
            return False
        return info.is_published()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secret_file: str
    ca_file: str = ''  # empty: system CAs
    timeout_s: float = 5.0

    def problem(self) -> str | None:
        """What in these settings keeps the channel from starting, wherever its files are."""
        if not self.url.startswith('https://'):
            return f'webhook_url must be https://, got {self.url!r}'
        if not self.secret_file:
            return 'webhook_url is set but webhook_secret_file is not: every alert is signed with that secret'
        return None


class WebhookSender:
    """HTTPS POST of the alert JSON, HMAC-SHA256-signed; any 2xx is delivered."""

    def __init__(self, settings: WebhookSettings) -> None:
        problem = settings.problem()
        if problem:
            raise AlertConfigError(problem)
        self.settings = settings
        self._secret = read_secret(settings.secret_file, 'webhook secret')
        try:
            self._context = ssl.create_default_context(cafile=settings.ca_file or None)
        except (OSError, ssl.SSLError) as error:
            raise AlertConfigError(f'webhook_ca_file {settings.ca_file}: {error}') from error
        self.last_error: str | None = None

    def send(self, body: bytes) -> bool:
        request = urllib.request.Request(self.settings.url, data=body, method='POST', headers={
            'Content-Type': 'application/json', SIGNATURE_HEADER: sign_body(self._secret, body)})
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s,
                                        context=self._context) as response:
                ok = 200 <= response.status < 300
                self.last_error = None if ok else f'HTTP {response.status}'
                return ok
        except (urllib.error.URLError, OSError, ssl.SSLError) as error:
            self.last_error = str(error)
            return False

    def close(self) -> None:
        pass


class AlertDispatcher:
    """Queues alerts in the outbox and delivers them per channel, in order, with backoff.

    ``deliver_due(now_s)`` does one round (wall-clock seconds, so backoffs stored in
    the outbox stay meaningful after a restart); :meth:`start` runs rounds on a thread.
    """

    def __init__(self, outbox: Outbox, senders: Mapping[str, AlertSender],
                 clock: Callable[[], float], backoff_cap_s: float = 30.0) -> None:
        self.outbox = outbox
        self.senders = dict(senders)
        self._clock = clock
        self._backoff_cap_s = backoff_cap_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0

    def enqueue(self, body: bytes) -> None:
        if self.senders:
            self.outbox.put(self.senders, body)
            self._wake.set()

    def deliver_due(self, now_s: float) -> int:
        delivered = 0
        for channel, sender in self.senders.items():
            while (alert := self.outbox.head(channel)) is not None and alert.not_before_s <= now_s:
                if not sender.send(alert.body):
                    self.outbox.failed(alert.seq, now_s + backoff_s(alert.attempts + 1, cap_s=self._backoff_cap_s))
                    break
                self.outbox.delivered(alert.seq)
                delivered += 1
        self.delivered += delivered
        return delivered

    def start(self, interval_s: float = 0.5) -> None:
        def run() -> None:
            while not self._stop.is_set():
                self.deliver_due(self._clock())
                self._wake.wait(interval_s)
                self._wake.clear()
        self._thread = threading.Thread(target=run, name='alert-dispatcher', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for sender in self.senders.values():
            sender.close()

    def status(self) -> dict[str, str | None]:
        return {channel: sender.last_error for channel, sender in self.senders.items()}


#: the sender of each channel alert_settings names
SENDERS: dict[str, Callable[[Any], AlertSender]] = {'mqtt': MqttSender, 'webhook': WebhookSender}
