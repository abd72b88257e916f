"""The camera_driver node in the real vision_pipeline process over real DDS, against a real RTSP
server, a real HTTP MJPEG server (with basic auth, stopped and restarted) and a video file, several
cameras in one process. The raw frames are watched through the commissioning switch publish_raw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import CameraInfo, Image
from servers.mjpeg_server import MjpegServer
from servers.rtsp_process import RtspServer, gstreamer_missing

from conftest import shared_file, wait_until
from kaiserslautern_vss.bringup.processes import ros_environment
from kaiserslautern_vss.camera.pacing import RateDecimator
from kaiserslautern_vss.camera.privacy_zones import parse_zone_texts
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.image_conversion import image_to_bgr
from pipeline_watch import SpinningNode

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PASSWORD = 'Geheim-Pw-4711'
WRONG_PASSWORD = 'Falsch-Pw-0815'
ZONES = ['0,0 200,0 200,150 0,150', '500,300 700,300 600,500']
NATIVE = (768, 576)
OUTAGES = 3
RETURN_LIMIT_S = 2.0
CALIBRATION = {'image_width': 768, 'image_height': 576, 'camera_name': 'camF',
               'camera_matrix': {'rows': 3, 'cols': 3, 'data': [600.0, 0.0, 384.0, 0.0, 610.0, 288.0, 0, 0, 1]},
               'distortion_model': 'plumb_bob',
               'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [-0.1, 0.01, 0.0, 0.0, 0.0]}}


@dataclass
class CameraLog:
    stamps_ns: list[int] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    zone_violations: int = 0
    info: CameraInfo | None = None


class Observer(SpinningNode):
    """In-process subscriber: checks every frame's zones on arrival, keeps stamps, sizes, diagnostics."""

    def __init__(self, cameras: list[str]) -> None:
        super().__init__('camera_observer')
        self.lock = threading.Lock()
        self.cameras = {camera: CameraLog() for camera in cameras}
        self.diagnostics: dict[str, DiagnosticStatus] = {}
        self.diagnostic_texts: list[str] = []
        zones = parse_zone_texts(ZONES, NATIVE)
        self.masks = {size: zones.mask(*size) for size in (NATIVE, (384, 288))}
        for camera in cameras:
            self.node.create_subscription(Image, f'/vss/{camera}/image_raw',
                                          lambda msg, c=camera: self._on_image(c, msg), qos.SENSOR)
            self.node.create_subscription(CameraInfo, f'/vss/{camera}/camera_info',
                                          lambda msg, c=camera: self._on_info(c, msg), qos.SENSOR)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.start()

    def _on_image(self, camera: str, msg: Image) -> None:
        image = image_to_bgr(msg)
        mask = self.masks[(msg.width, msg.height)]
        with self.lock:
            log = self.cameras[camera]
            log.stamps_ns.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
            log.sizes.add((msg.width, msg.height))
            log.zone_violations += int(not (image[mask] == 0).all())

    def _on_info(self, camera: str, msg: CameraInfo) -> None:
        with self.lock:
            self.cameras[camera].info = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                if not status.name.startswith('camera_driver:'):
                    continue  # the detector and privacy node report per camera too
                self.diagnostics[status.hardware_id] = status
                self.diagnostic_texts.append(f'{status.message} {[(v.key, v.value) for v in status.values]}')

    def frames(self, camera: str) -> list[int]:
        with self.lock:
            return list(self.cameras[camera].stamps_ns)

    def value(self, camera: str, key: str) -> str:
        with self.lock:
            status = self.diagnostics.get(camera)
            return next((v.value for v in status.values if v.key == key), '') if status else ''


def _clip(path: Path, frames: int) -> Path:
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, NATIVE)
    for _ in range(frames):
        writer.write(capture.read()[1])
    writer.release()
    return path


def _jpegs(count: int) -> list[bytes]:
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    return [cv2.imencode('.jpg', capture.read()[1], [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes()
            for _ in range(count)]


def _start_driver(tmp_path: Path, sections: dict[str, dict], env: dict[str, str], name: str) -> subprocess.Popen:
    """vision_pipeline hosting every section's camera driver (raw frames on the bus), a detector and
    a privacy node for their cameras; output captured in <name>.log."""
    cameras = [values['camera_id'] for values in sections.values()]
    nodes = {**{fqn: {**values, 'publish_raw': True} for fqn, values in sections.items()},
             '/vss/detector': {'cameras': cameras, 'model_path': str(shared_file('models/yolox_nano.onnx'))},
             '/vss/privacy': {'cameras': cameras, 'face_detection': False}}
    params = tmp_path / f'{name}.yaml'
    # JSON is YAML without anchors/aliases, which rcl's parser refuses.
    params.write_text(json.dumps({fqn: {'ros__parameters': values} for fqn, values in nodes.items()}))
    log = open(tmp_path / f'{name}.log', 'w')
    return subprocess.Popen([sys.executable, '-m', 'kaiserslautern_vss.nodes.vision_pipeline', *nodes,
                             '--ros-args', '--params-file', str(params)],
                            env=ros_environment({**os.environ, **env}), stdout=log, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(subprocess.signal.SIGINT)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.fixture(scope='module')
def running(tmp_path_factory):
    missing = gstreamer_missing()
    if missing:
        pytest.skip(missing)
    tmp_path = tmp_path_factory.mktemp('camera_driver')
    rtsp = RtspServer(shared_file('data/vtest.avi'))
    rtsp.start()
    mjpeg = MjpegServer(_jpegs(20), fps=10.0, credentials=('admin', PASSWORD))
    mjpeg.start()
    (tmp_path / 'calibration.yaml').write_text(yaml.safe_dump(CALIBRATION))
    zones = {'privacy_zones': ZONES, 'privacy_zones_width': NATIVE[0], 'privacy_zones_height': NATIVE[1]}
    recovery = {'stall_timeout_s': 2.0, 'backoff_initial_s': 0.25, 'backoff_max_s': 4.0, 'open_timeout_s': 3.0,
                'read_timeout_s': 2.0}
    sections = {
        '/vss/camR/camera_driver': {'camera_id': 'camR', 'url': rtsp.url, **zones, **recovery},
        '/vss/camM/camera_driver': {'camera_id': 'camM', 'url': mjpeg.url, 'username': 'admin',
                                    'password_env': 'VSS_TEST_CAM_PASSWORD', 'max_width': 384, **zones, **recovery},
        '/vss/camF/camera_driver': {'camera_id': 'camF', 'url': str(_clip(tmp_path / 'clip.avi', 30)),
                                    'loop': True, 'max_rate_hz': 5.0, 'max_width': 384,
                                    'camera_info_url': str(tmp_path / 'calibration.yaml'), **zones},
        '/vss/camW/camera_driver': {'camera_id': 'camW', 'url': mjpeg.url, 'username': 'admin',
                                    'password_env': 'VSS_TEST_WRONG_PASSWORD', **recovery},
    }
    observer = Observer(['camR', 'camM', 'camF', 'camW'])
    driver = _start_driver(tmp_path, sections, {'VSS_TEST_CAM_PASSWORD': PASSWORD,
                                                'VSS_TEST_WRONG_PASSWORD': WRONG_PASSWORD}, 'group')
    try:
        yield observer, driver, mjpeg, tmp_path / 'group.log'
    finally:
        code = _stop(driver)
        observer.close()
        mjpeg.stop()
        rtsp.stop()
    assert code == 0, (tmp_path / 'group.log').read_text()[-3000:]


def test_frames_from_rtsp_mjpeg_and_file_with_increasing_stamps_and_configured_size(running) -> None:
    observer, driver, _, log = running
    assert wait_until(lambda: all(len(observer.frames(c)) >= 15 for c in ('camR', 'camM', 'camF'))
                      or driver.poll() is not None, 120), log.read_text()[-3000:]
    assert driver.poll() is None
    expected = {'camR': {NATIVE}, 'camM': {(384, 288)}, 'camF': {(384, 288)}}
    for camera, sizes in expected.items():
        stamps = observer.frames(camera)
        assert all(b > a for a, b in zip(stamps, stamps[1:])), camera
        assert abs(stamps[-1] - time.time_ns()) < 5e9, camera  # capture time, not a file time
        assert observer.cameras[camera].sizes == sizes, camera
    # max_rate_hz 5 on a 10 fps file: kept frames sit on a 200 ms grid and may be a quarter
    # period early (camera.pacing.RateDecimator), never faster than 5 Hz in the long run
    file_stamps = observer.frames('camF')
    period_ns, slack_ns = 1e9 / 5, RateDecimator.SLACK * 1e9 / 5
    assert min(np.diff(file_stamps)) >= period_ns - slack_ns
    assert file_stamps[-1] - file_stamps[0] >= (len(file_stamps) - 1) * period_ns - slack_ns


def test_raw_frames_on_the_bus_keep_the_camera_at_warn_and_say_why(running) -> None:
    observer, _, _, log = running
    assert wait_until(lambda: observer.value('camF', 'state') == 'streaming', 60)
    status = observer.diagnostics['camF']
    assert status.level == DiagnosticStatus.WARN
    assert 'publish_raw is on: unmasked frames on /vss/camF/image_raw (commissioning only)' in status.message
    assert 'publish_raw is on' in log.read_text()


def test_camera_info_is_the_calibration_scaled_to_the_published_size(running) -> None:
    observer, _, _, _ = running
    assert wait_until(lambda: observer.cameras['camF'].info is not None, 60)
    info = observer.cameras['camF'].info
    assert (info.width, info.height, info.distortion_model) == (384, 288, 'plumb_bob')
    assert list(info.k) == pytest.approx([300.0, 0.0, 192.0, 0.0, 305.0, 144.0, 0.0, 0.0, 1.0])
    assert list(info.d) == pytest.approx([-0.1, 0.01, 0.0, 0.0, 0.0])
    assert info.header.frame_id == 'camF_optical_frame'
    assert list(observer.cameras['camR'].info.k) == [0.0] * 9  # uncalibrated: size only
    assert (observer.cameras['camR'].info.width, observer.cameras['camR'].info.height) == NATIVE


def test_mjpeg_outages_never_kill_the_node_and_frames_resume_within_2_s(running) -> None:
    observer, driver, mjpeg, log = running
    return_times = []
    for _ in range(OUTAGES):
        assert wait_until(lambda: observer.value('camM', 'state') == 'streaming', 60)
        mjpeg.stop()
        assert wait_until(lambda: observer.value('camM', 'state') in ('backoff', 'connecting', 'stalled'), 60)
        wait_until(lambda: False, 1.5)  # the outage lasts a while (backoff grows meanwhile)
        mjpeg.start()
        back_ns = time.time_ns()
        assert wait_until(lambda: observer.frames('camM')[-1] > back_ns, 60), log.read_text()[-3000:]
        return_times.append((observer.frames('camM')[-1] - back_ns) / 1e9)
        assert driver.poll() is None
    assert max(return_times) < RETURN_LIMIT_S, return_times
    assert wait_until(lambda: int(observer.value('camM', 'reconnects') or 0) >= OUTAGES, 60)
    assert observer.frames('camR')[-1] > back_ns  # the other cameras kept streaming
    print(f'\nMJPEG frames back after a server restart: {", ".join(f"{t:.2f} s" for t in return_times)}')


def test_privacy_zone_pixels_are_exactly_the_fill_value_in_every_frame(running) -> None:
    observer, _, _, _ = running
    assert wait_until(lambda: len(observer.frames('camM')) >= 5, 60)
    for camera in ('camR', 'camM', 'camF'):
        assert len(observer.frames(camera)) >= 5
        assert observer.cameras[camera].zone_violations == 0, camera


def test_wrong_password_is_reported_and_no_password_appears_anywhere(running) -> None:
    observer, driver, _, log = running
    assert wait_until(lambda: '401' in observer.value('camW', 'last_error'), 60)
    status = observer.diagnostics['camW']
    assert status.level == DiagnosticStatus.ERROR and observer.frames('camW') == []
    assert driver.poll() is None
    client = AsyncParameterClient(observer.node, '/vss/camM/camera_driver')
    assert client.wait_for_services(10)
    future = client.get_parameters(['url', 'username', 'password_env', 'password_file'])
    assert wait_until(future.done, 60)
    dumped = [str(value) for value in future.result().values]
    assert any('VSS_TEST_CAM_PASSWORD' in text for text in dumped)
    wait_until(lambda: False, 1.5)  # let the last log lines reach the file
    texts = [log.read_text(), *dumped, *observer.diagnostic_texts]
    assert 'HTTP 401' in texts[0]  # the failures were logged, ...
    for secret in (PASSWORD, WRONG_PASSWORD):
        assert not any(secret in text for text in texts), secret  # ... without any password


def _refused(tmp_path: Path, values: dict, name: str) -> tuple[int, str]:
    process = _start_driver(tmp_path, {'/vss/camX/camera_driver': {'camera_id': 'camX', **values}}, {}, name)
    code = process.wait(timeout=30)
    return code, (tmp_path / f'{name}.log').read_text()


def test_bad_configurations_are_refused_at_startup_with_exact_messages(tmp_path: Path) -> None:
    code, out = _refused(tmp_path, {'url': f'rtsp://admin:{PASSWORD}@127.0.0.1:8554/s'}, 'inline')
    assert code == 2
    assert ('camera camX: url rtsp://admin:***@127.0.0.1:8554/s contains a password in its user info; '
            'parameter dumps and logs would show it') in out
    assert PASSWORD not in out
    code, out = _refused(tmp_path, {'url': 'testpattern://', 'privacy_zones': ['10,10 900,10 10,50'],
                                    'privacy_zones_width': 768, 'privacy_zones_height': 576}, 'zone')
    assert code == 2 and 'privacy_zones[0]: point (900, 10) lies outside the 768x576 image' in out


def test_a_finite_file_without_loop_ends_the_node_with_status_0(tmp_path: Path) -> None:
    clip = _clip(tmp_path / 'short.avi', 10)
    process = _start_driver(tmp_path, {'/vss/camE/camera_driver': {'camera_id': 'camE', 'url': str(clip),
                                                                    'realtime': False}}, {}, 'finite')
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert 'end of video file' in (tmp_path / 'finite.log').read_text()
