"""Shared by the console tests: real incident folders from the recorder, users, a running
HTTPS console and a small cookie-keeping HTTPS client."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyotp

from kaiserslautern_vss.console.accounts import Account, hash_password, new_totp_secret, save_accounts
from kaiserslautern_vss.console.app import Console
from kaiserslautern_vss.console.live import LiveState
from kaiserslautern_vss.console.login_guard import LoginPolicy
from kaiserslautern_vss.console.server import ConsoleServer
from kaiserslautern_vss.console.settings import ConsoleSettings
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.events.recorder import IncidentRecorder
from kaiserslautern_vss.recordings.integrity import load_or_create_signing_key
from kaiserslautern_vss.recordings.sealing import seal_incident
from kaiserslautern_vss.ros.topics import EVENTS, RECORDED_PER_CAMERA, camera_topic
from kaiserslautern_vss.ros.typestore import vss_typestore

SECOND = 10**9
T0 = 1_795_000_000 * SECOND
PASSWORD = 'correct horse battery staple'
#: one user per role; the name says the role
USERS = {'olga': 'operator', 'ingo': 'investigator', 'anna': 'admin'}


# --- recorded incidents ---------------------------------------------------------------
Boxes = list[tuple[float, float, float, float]]


def scene(index: int, width: int = 640, height: int = 360) -> tuple[np.ndarray, Boxes]:
    """A drawn square with two walking figures (no real person); their boxes as detections."""
    image = np.full((height, width, 3), (70, 80, 74), np.uint8)
    cv2.rectangle(image, (0, int(height * 0.55)), (width, height), (110, 110, 105), -1)
    cv2.putText(image, f'Bild {index}', (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (230, 230, 230), 2)
    boxes = []
    for lane, speed in ((0.6, 4), (0.72, -3)):
        x = (40 + index * speed) % (width - 60)
        y = height * lane
        cv2.rectangle(image, (int(x), int(y - 90)), (int(x + 40), int(y)), (40, 40, 160), -1)
        cv2.rectangle(image, (int(x + 8), int(y - 110)), (int(x + 32), int(y - 88)), (128, 128, 128), -1)  # masked head
        boxes.append((x, y - 110, x + 40, y))
    return image, boxes


def _header(store, stamp_ns: int, frame_id: str):
    t = store.types
    return t['std_msgs/msg/Header'](stamp=t['builtin_interfaces/msg/Time'](sec=stamp_ns // SECOND,
                                                                         nanosec=stamp_ns % SECOND), frame_id=frame_id)


def jpeg_cdr(stamp_ns: int, image: np.ndarray, camera: str = 'cam01') -> bytes:
    store = vss_typestore()
    data = np.frombuffer(cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes(), np.uint8)
    msg = store.types['sensor_msgs/msg/CompressedImage'](header=_header(store, stamp_ns, camera), format='jpeg',
                                                         data=data)
    return store.serialize_cdr(msg, 'sensor_msgs/msg/CompressedImage')


def detections_cdr(stamp_ns: int, boxes: Boxes, camera: str = 'cam01') -> bytes:
    store = vss_typestore()
    t = store.types
    header = _header(store, stamp_ns, camera)
    detections = []
    for track, (x1, y1, x2, y2) in enumerate(boxes, start=1):
        bbox = t['vision_msgs/msg/BoundingBox2D'](
            center=t['vision_msgs/msg/Pose2D'](position=t['vision_msgs/msg/Point2D'](x=(x1 + x2) / 2, y=(y1 + y2) / 2),
                                               theta=0.0), size_x=x2 - x1, size_y=y2 - y1)
        pose = t['geometry_msgs/msg/PoseWithCovariance'](
            pose=t['geometry_msgs/msg/Pose'](position=t['geometry_msgs/msg/Point'](x=0.0, y=0.0, z=0.0),
                                             orientation=t['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=np.zeros(36))
        hypothesis = t['vision_msgs/msg/ObjectHypothesisWithPose'](
            hypothesis=t['vision_msgs/msg/ObjectHypothesis'](class_id='person', score=0.9), pose=pose)
        detections.append(t['vision_msgs/msg/Detection2D'](header=header, results=[hypothesis], bbox=bbox,
                                                           id=str(track)))
    msg = t['vision_msgs/msg/Detection2DArray'](header=header, detections=detections)
    return store.serialize_cdr(msg, 'vision_msgs/msg/Detection2DArray')


def event_cdr(update: IncidentUpdate) -> bytes:
    store = vss_typestore()
    return store.serialize_cdr(store.types['std_msgs/msg/String'](data=update.to_json()), 'std_msgs/msg/String')


def record_incident(root: Path, signing_key_file: Path, *, camera: str = 'cam01', rule: str = 'zone_intrusion',
                    seconds: float = 6.0, fps: float = 10.0, start_ns: int = T0, incident_id: str = 'a1' * 16,
                    encryption_key: bytes | None = None, width: int = 640, height: int = 360,
                    frames: Callable[[int], np.ndarray] | None = None) -> Path:
    """One sealed incident folder written by the event manager's recorder: ``seconds`` of
    frames (:func:`scene`, or ``frames(index)`` with the scene's boxes) and detections, the
    trigger 2 s in (all pre-event), ended 1 s before the end."""
    signing_key, _ = load_or_create_signing_key(signing_key_file)
    topics = {camera_topic(camera, name): msgtype for name, msgtype in RECORDED_PER_CAMERA.items()}
    topics[EVENTS] = 'std_msgs/msg/String'
    closed: list[Path] = []

    def seal(folder: Path, cut: str | None) -> None:
        seal_incident(folder, signing_key, encryption_key, cut=cut)
        closed.append(folder)

    recorder = IncidentRecorder(root, pre_event_s=2.0, post_event_s=1.0, buffer_max_bytes=200_000_000,
                                topics=topics, on_closed=seal)
    step = int(SECOND / fps)
    count = int(seconds * fps)
    trigger_ns, end_ns = start_ns + 2 * SECOND, start_ns + count * step - 2 * SECOND
    incident = Incident(id=incident_id, rule=rule, camera=camera, kind='zone_intrusion',
                        started_ns=trigger_ns, updated_ns=trigger_ns, rules=[rule])
    for index in range(count + 10):
        stamp = start_ns + index * step
        if stamp == trigger_ns or stamp == end_ns:
            if stamp == end_ns:
                incident.ended_ns = incident.updated_ns = end_ns
            update = IncidentUpdate('start' if stamp == trigger_ns else 'end', incident)
            recorder.on_incident(update, stamp)
            recorder.on_message(camera, EVENTS, stamp, event_cdr(update))
        image, boxes = scene(index, width, height)
        if frames is not None:
            image = frames(index)
        recorder.on_message(camera, camera_topic(camera, 'image_anonymized/compressed'), stamp,
                            jpeg_cdr(stamp, image, camera))
        recorder.on_message(camera, camera_topic(camera, 'detections'), stamp, detections_cdr(stamp, boxes, camera))
        recorder.poll(stamp)
    recorder.close_all()
    assert len(closed) == 1, f'expected one sealed incident, got {closed} ({recorder.last_error})'
    return closed[0]


# --- users and a running console ------------------------------------------------------
def make_users(path: Path) -> dict[str, Account]:
    accounts = {name: Account(name, role, hash_password(PASSWORD), new_totp_secret(), f'Test {role}')
                for name, role in USERS.items()}
    save_accounts(path, accounts)
    return accounts


def console_settings(tmp_path: Path, record_root: Path, cameras: tuple[str, ...] = ('cam01',),
                     **changes) -> ConsoleSettings:
    values = dict(
        cameras=cameras, record_root=record_root, bind_address='127.0.0.1', port=0,
        users_file=tmp_path / 'keys' / 'users.json', tls_cert_file=tmp_path / 'keys' / 'cert.pem',
        tls_key_file=tmp_path / 'keys' / 'key.pem', tls_self_signed=True,
        signing_key_file=tmp_path / 'keys' / 'signing_key.pem', encryption_key_file=None,
        export_root=tmp_path / 'exports', audit_log=tmp_path / 'audit.log',
        audit_key_file=tmp_path / 'keys' / 'audit.key', idle_timeout_s=900.0,
        login_policy=LoginPolicy(max_failures=3, lockout_s=600.0, attempts_per_minute=20), live_refresh_hz=5.0)
    values.update(changes)
    return ConsoleSettings(**values)


@dataclass
class RunningConsole:
    console: Console
    server: ConsoleServer
    accounts: dict[str, Account]

    @property
    def url(self) -> str:
        return f'https://127.0.0.1:{self.server.port}'

    def client(self) -> ConsoleClient:
        return ConsoleClient('127.0.0.1', self.server.port)

    def logged_in(self, user: str) -> ConsoleClient:
        client = self.client()
        response = client.login(user, PASSWORD, totp_code(self.accounts[user]))
        assert response.status == 303, (response.status, response.text[:500])
        client.get('/incidents')  # a page carrying the session's CSRF token
        return client


@contextlib.contextmanager
def running_console(settings: ConsoleSettings, trigger: Callable[[str], tuple[bool, str]] | None = None,
                    live: LiveState | None = None) -> Iterator[RunningConsole]:
    accounts = make_users(settings.users_file)
    console = Console(settings, live or LiveState(list(settings.cameras), time.time), trigger=trigger)
    server = ConsoleServer(console.app(), settings)
    server.start()
    try:
        yield RunningConsole(console, server, accounts)
    finally:
        server.stop()


_used_steps: dict[str, int] = {}


def totp_code(account: Account) -> str:
    """A code the console has not accepted yet for this user: this 30 s step, else the next
    (the console accepts one step of clock drift), else wait for a fresh step."""
    totp = pyotp.TOTP(account.totp_secret)
    step = _used_steps.get(account.totp_secret, -1) + 1
    while step > int(time.time() // totp.interval) + 1:
        time.sleep(1.0)
    step = max(step, int(time.time() // totp.interval))
    _used_steps[account.totp_secret] = step
    return totp.at(step * totp.interval)


# --- HTTP client ------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode('utf-8', 'replace')

    def json(self):
        return json.loads(self.body)


@dataclass
class ConsoleClient:
    """HTTPS with cookies and a kept-alive connection, like a browser (the console's
    certificate is self-signed)."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ''
    _connection: http.client.HTTPSConnection | None = None

    def _send(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        for attempt in (1, 2):  # the server may have closed an idle kept-alive connection
            if self._connection is None:
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                self._connection = http.client.HTTPSConnection(self.host, self.port, context=context, timeout=30)
            try:
                self._connection.request(method, path, body=body, headers=headers)
                return self._connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        raise AssertionError('unreachable')

    def request(self, method: str, path: str, fields: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        sent = dict(headers or {})
        if self.cookies:
            sent['Cookie'] = '; '.join(f'{k}={v}' for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            sent['Content-Type'] = 'application/x-www-form-urlencoded'
        response = self._send(method, path, body, sent)
        received: dict[str, str] = {}
        for name, value in response.getheaders():  # repeated headers (Set-Cookie) one per line
            received[name.lower()] = received[name.lower()] + '\n' + value if name.lower() in received else value
        reply = Reply(response.status, received, response.read())
        for name, value in response.getheaders():
            if name.lower() == 'set-cookie':
                cookie, _, attributes = value.partition(';')
                key, _, cookie_value = cookie.partition('=')
                if 'max-age=0' in attributes.lower() or 'expires=thu, 01 jan 1970' in attributes.lower():
                    self.cookies.pop(key.strip(), None)
                else:
                    self.cookies[key.strip()] = cookie_value.strip().strip('"')
        found = re.search(rb'name="csrf(?:-token|_token)" (?:content|value)="([^"]+)"', reply.body)
        if found:
            self.csrf = found.group(1).decode()
        return reply

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, path: str) -> Reply:
        return self.request('GET', path)

    def post(self, path: str, fields: dict[str, str] | None = None, csrf: bool = True) -> Reply:
        fields = dict(fields or {})
        if csrf:
            fields.setdefault('csrf_token', self.csrf)
        return self.request('POST', path, fields)

    def login(self, user: str, password: str, code: str) -> Reply:
        self.get('/login')
        return self.post('/login', {'user': user, 'password': password, 'totp': code})
