"""Camera links that do not leak, against a real local HTTP(S) camera that records every request it got.

The matrix of issue #14: Basic over plain HTTP refused with the password never sent, Digest
working, TLS with the pinned certificate (or the site CA) working and with another one refused
before anything is sent, a wrong password reported clearly and retried only a few times per
window; plus camera health: clock offset, resolution and rate changes.
"""

from __future__ import annotations

import base64
import re
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from conftest import wait_until
from servers.alert_receivers import self_signed_cert
from servers.mjpeg_server import MjpegServer
from test_camera_mjpeg import server_factory  # noqa: F401 - the fixture

from kaiserslautern_vss.camera import http_client
from kaiserslautern_vss.camera.driver_config import config_problems
from kaiserslautern_vss.camera.link_security import certificate_fingerprint
from kaiserslautern_vss.camera.source_types import (AuthenticationError, InsecureLinkError, SourceConfigError,
                                                    SourceSettings)
from kaiserslautern_vss.camera.sources import open_source
from kaiserslautern_vss.camera.supervisor import SupervisedCamera
from kaiserslautern_vss.parameters.camera_driver import PARAMETERS
from kaiserslautern_vss.parameters.spec import validate_parameters

USER, PASSWORD = 'live', 'Kl-Rathaus-2026!'
PASSWORD_ENV = 'VSS_TEST_CAMERA_PASSWORD'
STREAM = '/control/faststream.jpg?stream=full&needlength&fps=25'


def jpeg(width: int, height: int, level: int) -> bytes:
    image = np.full((height, width, 3), level, np.uint8)
    cv2.circle(image, (width // 2, height // 2), height // 4, (255, 255, 255), -1)
    return cv2.imencode('.jpg', image)[1].tobytes()


JPEGS = [jpeg(320, 240, level) for level in (40, 80, 120)]


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return PASSWORD


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """Two unrelated self-signed certificates for 127.0.0.1: the camera's and an impostor's."""
    made = {}
    for name in ('camera', 'impostor'):
        (tmp_path / name).mkdir()
        made[name] = self_signed_cert(tmp_path / name)
    return made


def fingerprint_of(cert: Path) -> str:
    der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    return ':'.join(f'{b:02X}' for b in bytes.fromhex(certificate_fingerprint(der)))


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    return context


@pytest.fixture
def camera_server(server_factory) -> Callable[..., MjpegServer]:
    return lambda **options: server_factory(JPEGS, **options)


def settings(**overrides) -> SourceSettings:
    return SourceSettings(**{'username': USER, 'password_env': PASSWORD_ENV, 'open_timeout_s': 3.0} | overrides)


def secrets_sent(server: MjpegServer) -> list[str]:
    """Authorization headers that carry the password readable (in clear or base64)."""
    encoded = base64.b64encode(f'{USER}:{PASSWORD}'.encode()).decode()
    return [header for _, header in server.requests if PASSWORD in header or encoded in header]


def frames_from(source, count: int = 3) -> int:
    source.open()
    try:
        return sum(source.read(2.0) is not None for _ in range(count))
    finally:
        source.close()


def test_basic_challenge_over_plain_http_is_refused_and_the_password_never_sent(camera_server, password) -> None:
    server = camera_server(credentials=(USER, password), auth='basic')
    source = open_source(server.url_for(STREAM), settings())
    with pytest.raises(InsecureLinkError, match='Basic authentication over an unencrypted link.*was not sent'):
        source.open()
    assert server.requests and all(header == '' for _, header in server.requests)
    camera = SupervisedCamera(lambda: open_source(server.url_for(STREAM), settings()), backoff_initial_s=0.05,
                              backoff_max_s=0.1, name='cam-basic')
    try:
        assert wait_until(lambda: camera.stats().refusals >= 2, 5.0)
    finally:
        camera.stop()
    assert 'allow_basic_over_plain' in camera.stats().last_error and camera.stats().frames == 0
    assert secrets_sent(server) == []


def test_basic_over_plain_works_only_when_the_camera_allows_it_explicitly(camera_server, password) -> None:
    server = camera_server(credentials=(USER, password), auth='basic')
    assert frames_from(open_source(server.url_for(STREAM), settings(allow_basic_over_plain=True))) == 3
    assert 'Basic allowed' in open_source(server.url, settings(allow_basic_over_plain=True)).describe()


def test_digest_works_without_the_password_on_the_wire(camera_server, password) -> None:
    server = camera_server(credentials=(USER, password), auth='digest')
    source = open_source(server.url_for(STREAM), settings())
    assert frames_from(source) == 3
    assert [header.partition(' ')[0] for _, header in server.requests] == ['', 'Digest']
    assert secrets_sent(server) == [] and server.rejected_logins == 0
    snapshots = open_source(server.url_for('/record/current.jpg'), settings(snapshot_rate_hz=20))
    requests_before = len(server.requests)
    assert frames_from(snapshots, 5) == 5
    # After the first challenge the Digest answer goes along at once: one request per snapshot.
    assert len(server.requests) - requests_before <= 5 + 2


def test_tls_with_the_pinned_certificate_works_and_another_certificate_is_refused(camera_server, password,
                                                                                  certs) -> None:
    server = camera_server(credentials=(USER, password), auth='digest', tls=server_tls(certs['camera']))
    pinned = settings(tls_fingerprint=fingerprint_of(certs['camera'][0]))
    source = open_source(server.url_for(STREAM), pinned)
    assert frames_from(source) == 3
    assert 'TLS, pinned certificate SHA-256' in source.describe()

    impostor = camera_server(credentials=(USER, password), auth='basic', tls=server_tls(certs['impostor']))
    with pytest.raises(InsecureLinkError, match='is not the pinned .*nothing was sent'):
        open_source(impostor.url_for(STREAM), pinned).open()
    assert impostor.requests == []  # not even the request line: the pin is checked right after the handshake


def test_tls_verified_by_the_site_ca_file(camera_server, password, certs) -> None:
    server = camera_server(credentials=(USER, password), auth='basic', tls=server_tls(certs['camera']))
    # Basic is fine over a verified TLS link.
    assert frames_from(open_source(server.url_for(STREAM), settings(tls_ca_file=str(certs['camera'][0])))) == 3
    with pytest.raises(InsecureLinkError, match='certificate rejected by the site CA .*nothing was sent'):
        open_source(server.url_for(STREAM), settings(tls_ca_file=str(certs['impostor'][0]))).open()
    with pytest.raises(InsecureLinkError, match='rejected by the system CAs .set tls_ca_file or tls_fingerprint'):
        open_source(server.url_for(STREAM), settings()).open()
    assert len(server.requests) == 2  # the one good session: challenge and answer


def test_tls_settings_are_checked_at_configuration(certs) -> None:
    with pytest.raises(SourceConfigError, match='64 hex digits'):
        open_source('https://127.0.0.1/record/current.jpg', settings(snapshot_rate_hz=1, tls_fingerprint='AB:CD'))
    with pytest.raises(SourceConfigError, match='scheme .http. is not encrypted'):
        open_source('http://127.0.0.1/mjpeg', settings(tls_ca_file=str(certs['camera'][0])))
    # The same checks run when the bringup validates a site config, before any process starts.
    values = validate_parameters(PARAMETERS, {'camera_id': 'cam01', 'tls_fingerprint': 'AB:CD',
                                              'url': 'https://10.20.30.11/control/faststream.jpg?fps=10'}, 'test')
    assert config_problems(values) == [
        'https://10.20.30.11/control/faststream.jpg?fps=10 would deliver MxPEG: ask for full JPEG frames instead: '
        '/control/faststream.jpg?stream=full&needlength&fps=<rate> (MxPEG, the faststream default, only MOBOTIX '
        'software decodes)']
    values['url'] += '&stream=full'
    assert 'must be a SHA-256 fingerprint' in config_problems(values)[0]


def test_wrong_password_is_reported_and_retried_only_a_few_times_per_window(camera_server,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = camera_server(credentials=(USER, 'the-real-one'), auth='digest')
    monkeypatch.setenv(PASSWORD_ENV, 'a-wrong-one')
    camera = SupervisedCamera(lambda: open_source(server.url_for(STREAM), settings()), backoff_initial_s=0.05,
                              backoff_max_s=0.1, auth_max_attempts=3, auth_window_s=60.0, name='cam-wrong')
    try:
        assert wait_until(lambda: camera.stats().auth_failures >= 3, 5.0)
        time.sleep(2.0)  # ~25 attempts at this backoff without the login window
        stats = camera.stats()
    finally:
        camera.stop()
    assert stats.auth_failures == 3 and server.rejected_logins == 3
    assert stats.state == 'backoff' and stats.frames == 0
    assert "rejected user 'live'" in stats.last_error and 'a-wrong-one' not in stats.last_error
    with pytest.raises(AuthenticationError, match='check username and password'):
        open_source(server.url_for(STREAM), settings()).open()


def test_health_clock_offset_resolution_and_rate_changes(camera_server, password,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_client, 'CLOCK_CHECK_S', 0.5)
    server = camera_server(credentials=(USER, password), auth='digest', clock_offset_s=+10.0, fps=20)
    camera = SupervisedCamera(lambda: open_source(server.url_for(STREAM), settings()), rate_window_s=1.0,
                              clock_offset_warn_s=2.0, name='cam-health')
    try:
        assert wait_until(lambda: camera.stats().clock_offset_s is not None and camera.stats().frames > 30, 5.0)
        assert 8.4 < camera.stats().clock_offset_s < 11.6
        server.clock_offset_s = -30.0  # the camera lost its time sync while streaming: asked again, no login
        logins = len([h for _, h in server.requests if h])
        assert wait_until(lambda: camera.stats().clock_offset_s < -25, 3.0)
        assert len([h for _, h in server.requests if h]) == logins
        server.jpegs = [jpeg(160, 120, 200)]
        assert wait_until(lambda: camera.stats().resolution_changes == 1, 3.0)
        server.period_s = 1 / 5  # the camera drops from 20 to 5 fps
        assert wait_until(lambda: camera.stats().rate_changes >= 1, 6.0)
        stats = camera.stats()
    finally:
        camera.stop()
    assert -31.6 < stats.clock_offset_s < -28.4
    assert stats.resolution == '160x120'
    assert any(w.startswith('camera clock -') and 'NTP' in w for w in stats.warnings)
    # The window that spans the switch may already be lower than 20 fps.
    assert re.fullmatch(r'frame rate \d+\.\d -> \d+\.\d fps', stats.last_change)
    assert stats.health_fields()['resolution_changes'] == 1


@pytest.mark.ros
def test_link_refusals_login_failures_and_clock_offset_on_diagnostics(camera_server, password, tmp_path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Real camera driver nodes (in process) publish what the links did on /diagnostics."""
    import json

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.executors import SingleThreadedExecutor

    from kaiserslautern_vss.nodes.camera_driver import CameraDriverNode

    monkeypatch.setenv('VSS_TEST_WRONG_PASSWORD', 'not-the-password')
    cameras = {
        'camSkewed': camera_server(credentials=(USER, password), auth='digest', clock_offset_s=-30.0),
        'camBasic': camera_server(credentials=(USER, password), auth='basic'),
        'camWrong': camera_server(credentials=(USER, password), auth='digest'),
    }
    sections = {f'/vss/{camera}/camera_driver': {'ros__parameters': {
        'camera_id': camera, 'url': server.url_for(STREAM), 'username': USER, 'open_timeout_s': 3.0,
        'password_env': 'VSS_TEST_WRONG_PASSWORD' if camera == 'camWrong' else PASSWORD_ENV,
        'backoff_initial_s': 0.5, 'backoff_max_s': 2.0}} for camera, server in cameras.items()}
    (tmp_path / 'params.yaml').write_text(json.dumps(sections))
    rclpy.init(args=['--ros-args', '--params-file', str(tmp_path / 'params.yaml')])  # the nodes use the default context
    executor = SingleThreadedExecutor()
    nodes = [CameraDriverNode('camera_driver', f'/vss/{camera}') for camera in cameras]
    observer = rclpy.create_node('diagnostics_observer')
    latest: dict[str, DiagnosticStatus] = {}
    observer.create_subscription(DiagnosticArray, '/diagnostics',
                                 lambda msg: latest.update({s.hardware_id: s for s in msg.status}), 10)
    for node in [*nodes, observer]:
        executor.add_node(node)
    for node in nodes:
        node.start(lambda *frame: True)

    def value(camera: str, key: str) -> str:
        status = latest.get(camera)
        return next((kv.value for kv in status.values if kv.key == key), '') if status else ''

    try:
        # Between attempts a camera is in backoff (ERROR); while reconnecting it is briefly at WARN.
        assert wait_until(lambda: value('camSkewed', 'clock_offset_s').startswith('-')
                          and int(value('camBasic', 'refusals') or 0) >= 1 and value('camBasic', 'state') == 'backoff'
                          and int(value('camWrong', 'auth_failures') or 0) >= 1 and value('camWrong', 'state') == 'backoff',
                          15, step=lambda: executor.spin_once(timeout_sec=0.1))
    finally:
        for node in nodes:
            node.destroy_node()
        observer.destroy_node()
        rclpy.try_shutdown()
    skewed, basic, wrong = latest['camSkewed'], latest['camBasic'], latest['camWrong']
    assert skewed.level == DiagnosticStatus.WARN and 'camera clock -' in skewed.message and 'NTP' in skewed.message
    assert -31.6 < float(value('camSkewed', 'clock_offset_s')) < -28.4
    assert value('camSkewed', 'resolution') == '320x240' and '(unencrypted)' in value('camSkewed', 'source')
    assert basic.level == DiagnosticStatus.ERROR and 'Basic authentication over an unencrypted link' in basic.message
    assert wrong.level == DiagnosticStatus.ERROR and "rejected user 'live'" in value('camWrong', 'last_error')
    assert all(password not in s.message and 'not-the-password' not in s.message for s in latest.values())
    assert cameras['camBasic'].rejected_logins == 0 and all(h == '' for _, h in cameras['camBasic'].requests)
