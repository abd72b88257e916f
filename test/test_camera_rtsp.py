"""RTSP through OpenCV's FFmpeg backend against a real GStreamer RTSP server (system Python + gi), and the
RTSP guard against a fake camera that records what it received (an attacker impersonating a camera)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest
from conftest import wait_until
from servers.alert_receivers import self_signed_cert
from servers.rtsp_process import RtspServer, gstreamer_missing
from servers.rtsp_recorder import RecordingRtspCamera
from test_camera_auth_tls import fingerprint_of, server_tls

from kaiserslautern_vss.camera import http_client
from kaiserslautern_vss.camera.link_security import LinkPolicy
from kaiserslautern_vss.camera.rtsp_guard import RtspGuard
from kaiserslautern_vss.camera.source_types import AuthenticationError, InsecureLinkError, SourceConfigError
from kaiserslautern_vss.camera.sources import RtspSource, SourceError, SourceSettings, open_source
from kaiserslautern_vss.camera.supervisor import SupervisedCamera

ROOT = Path(__file__).resolve().parents[1]
VTEST = ROOT / '..' / 'shared' / 'data' / 'vtest.avi'


@pytest.fixture(scope='module')
def gstreamer() -> None:
    if not VTEST.is_file():
        pytest.skip(f'{VTEST} not found: the shared test data (../shared beside the repository) is absent')
    missing = gstreamer_missing()
    if missing:
        pytest.skip(missing)


@pytest.fixture
def rtsp_server(gstreamer) -> RtspServer:
    server = RtspServer(VTEST)
    server.start()
    yield server
    server.stop()


def test_opencv_wheel_has_ffmpeg_with_rtsp() -> None:
    video_io = cv2.getBuildInformation().split('Video I/O:')[1]
    assert 'FFMPEG:                      YES' in video_io


def test_rtsp_frames_have_size_increasing_stamps_and_reads_honour_timeout(rtsp_server: RtspServer) -> None:
    source = open_source(rtsp_server.url, SourceSettings(open_timeout_s=30, read_timeout_s=5))
    assert isinstance(source, RtspSource)
    start = time.monotonic()
    source.open()
    open_s = time.monotonic() - start
    frames, slowest_read = [], 0.0
    cpu_start = time.process_time()
    deadline = time.monotonic() + 60
    while len(frames) < 30 and time.monotonic() < deadline:
        call = time.monotonic()
        frame = source.read(0.05)
        slowest_read = max(slowest_read, time.monotonic() - call)
        if frame is not None:
            frames.append(frame)
    cpu_per_frame_ms = (time.process_time() - cpu_start) / max(1, len(frames)) * 1e3
    counters = source.counters()
    source.close()
    assert len(frames) == 30
    assert {f.image.shape for f in frames} == {(576, 768, 3)}
    stamps = [f.capture_time_ns for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == 30
    assert [f.sequence for f in frames] == sorted(f.sequence for f in frames)
    assert slowest_read < 1.0  # read(0.05) never waits for the network (5 s read timeout); room for a busy box
    assert counters.corrupt_frames == 0
    print(f'\nRTSP open {open_s:.2f} s; decode+convert {cpu_per_frame_ms:.1f} ms CPU per 768x576 H.264 frame')


def test_rtsp_over_udp_is_refused() -> None:
    """RTP over UDP would open sockets on every interface (test_network_isolation.py)."""
    with pytest.raises(SourceConfigError, match=r"rtsp_transport must be one of \('tcp',\), got 'udp'"):
        SourceSettings(rtsp_transport='udp')


def test_rtsp_credentials_stay_out_of_descriptions(rtsp_server: RtspServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('VSS_TEST_RTSP_PASSWORD', 'geheim')
    url = rtsp_server.url.replace('rtsp://', 'rtsp://admin:inline@')
    source = RtspSource(url, SourceSettings(username='admin', password_env='VSS_TEST_RTSP_PASSWORD'))
    source.open()  # the test server ignores credentials; they still travel in the FFmpeg URL
    assert source.read(30.0) is not None
    source.close()
    assert 'geheim' not in source.describe() and 'inline' not in source.describe()


def test_unreachable_rtsp_raises_source_error_within_open_timeout(gstreamer) -> None:
    source = RtspSource('rtsp://127.0.0.1:9/none', SourceSettings(open_timeout_s=2))
    start = time.monotonic()
    with pytest.raises(SourceError, match='cannot open RTSP rtsp://127.0.0.1:9/none over TCP'):
        source.open()
    assert time.monotonic() - start < 8  # far below the 10 s default; room for a busy machine
    assert not source.probe(0.5)


def test_supervised_rtsp_camera_comes_back_after_server_restart(rtsp_server: RtspServer) -> None:
    camera = SupervisedCamera(lambda: RtspSource(rtsp_server.url, SourceSettings(open_timeout_s=30, read_timeout_s=2)),
                              stall_timeout_s=2.0, backoff_initial_s=0.25, backoff_max_s=5.0, name='rtsp-test')
    try:
        deadline = time.monotonic() + 60
        while camera.stats().frames < 5 and time.monotonic() < deadline:
            camera.wait_latest(0.5)
        assert camera.stats().state == 'streaming'
        rtsp_server.stop()
        deadline = time.monotonic() + 30
        while camera.stats().state == 'streaming' and time.monotonic() < deadline:
            camera.wait_latest(0.1)
        assert camera.stats().state != 'streaming'
        restarted_ns = time.time_ns()
        rtsp_server.start()
        deadline = time.monotonic() + 60
        frame = None
        while time.monotonic() < deadline:
            frame = camera.wait_latest(0.2)
            if frame is not None and frame.capture_time_ns > restarted_ns:
                break
        assert frame is not None and frame.capture_time_ns > restarted_ns
        stats = camera.stats()
        assert stats.reconnects >= 1 and stats.failures >= 1
        print(f'\nRTSP back {(time.time_ns() - restarted_ns) / 1e9:.2f} s after the server restart')
    finally:
        camera.stop()


USER, PASSWORD, PASSWORD_ENV = 'live', 'Kl-Rtsp-2026!', 'VSS_TEST_RTSP_PASSWORD'


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> SourceSettings:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    # generous: an RTSPS handshake plus FFmpeg's start take seconds on a busy machine
    return SourceSettings(username=USER, password_env=PASSWORD_ENV, open_timeout_s=30, read_timeout_s=10)


@pytest.fixture
def recorder():
    cameras: list[RecordingRtspCamera] = []

    def make(**options) -> RecordingRtspCamera:
        cameras.append(RecordingRtspCamera(**options))
        return cameras[-1]

    yield make
    for camera in cameras:
        camera.stop()


def test_basic_challenge_over_plain_rtsp_is_refused_and_the_password_never_sent(recorder, login) -> None:
    camera = recorder()
    with pytest.raises(InsecureLinkError, match='Basic authentication over an unencrypted link.*not sent'):
        open_source(camera.url(), login).open()
    assert camera.received.startswith(b'OPTIONS ') and b'DESCRIBE ' in camera.received  # FFmpeg did talk to it
    assert b'Authorization' not in camera.received and PASSWORD.encode() not in camera.received
    # The guard is what stops FFmpeg: allowed explicitly, FFmpeg hands the password over at once.
    allowed = recorder()
    with pytest.raises(SourceError):
        open_source(allowed.url(), SourceSettings(**{**vars(login), 'allow_basic_over_plain': True})).open()
    assert b'Authorization: Basic ' in allowed.received


def test_rtsps_with_the_pinned_certificate_only(recorder, login, tmp_path) -> None:
    for name in ('camera', 'impostor'):
        (tmp_path / name).mkdir()
    camera_cert, impostor_cert = self_signed_cert(tmp_path / 'camera'), self_signed_cert(tmp_path / 'impostor')
    pinned = SourceSettings(**{**vars(login), 'tls_fingerprint': fingerprint_of(camera_cert[0])})
    impostor = recorder(tls=server_tls(impostor_cert))
    with pytest.raises(InsecureLinkError, match='is not the pinned'):
        open_source(impostor.url(), pinned).open()
    assert impostor.received == b''  # TLS refused before FFmpeg's first byte went out
    camera = recorder(tls=server_tls(camera_cert))
    with pytest.raises(AuthenticationError, match='rejected the login'):  # the fake never lets anyone in
        open_source(camera.url(), pinned).open()
    assert b'Authorization: Basic ' in camera.received  # Basic is fine inside the verified TLS link


def test_digest_login_works_and_a_wrong_password_is_named(gstreamer, login, monkeypatch) -> None:
    server = RtspServer(VTEST, digest=f'{USER}:{PASSWORD}')
    server.start()
    try:
        source = open_source(server.url, login)
        source.open()
        frame = source.read(30.0)
        offset = source.counters().clock_offset_s
        source.close()
        assert frame is not None and frame.image.shape == (576, 768, 3)
        assert offset is not None and abs(offset) < 2.0  # from the server's Date header
        monkeypatch.setenv(PASSWORD_ENV, 'wrong')
        with pytest.raises(AuthenticationError, match='rejected the login') as error:
            open_source(server.url, login).open()
        assert 'wrong' not in str(error.value)
    finally:
        server.stop()


def test_the_guard_asks_the_camera_clock_regularly_without_credentials(recorder, monkeypatch) -> None:
    monkeypatch.setattr(http_client, 'CLOCK_CHECK_S', 0.2)
    camera = recorder(clock_offset_s=-30.0)
    guard = RtspGuard(camera.url(), LinkPolicy.for_url('rtsp', SourceSettings()), camera.url(), 2.0)
    try:
        assert wait_until(lambda: guard.clock_offset_s is not None, 30.0)
    finally:
        guard.close()
    assert -31.6 < guard.clock_offset_s < -28.4
    assert camera.received.startswith(b'OPTIONS ') and b'Authorization' not in camera.received
