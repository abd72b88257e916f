"""Camera driver configuration without ROS: parameter checks, privacy zone strings, calibration files, rate limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from kaiserslautern_vss.camera.calibration import CalibrationError, load_calibration
from kaiserslautern_vss.camera.driver_config import CameraConfigError, build_driver_config
from kaiserslautern_vss.camera.pacing import RateDecimator
from kaiserslautern_vss.camera.privacy_zones import PrivacyZoneError, parse_zone_texts
from kaiserslautern_vss.camera.sources import HttpMjpegSource
from kaiserslautern_vss.parameters.camera_driver import PARAMETERS
from kaiserslautern_vss.parameters.spec import validate_parameters

CALIBRATION = {'image_width': 800, 'image_height': 600, 'camera_name': 'cam01', 'distortion_model': 'plumb_bob',
               'camera_matrix': {'rows': 3, 'cols': 3, 'data': [500, 0, 400, 0, 520, 300, 0, 0, 1]},
               'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [-0.2, 0.05, 0.0, 0.0, 0.0]},
               'rectification_matrix': {'rows': 3, 'cols': 3, 'data': [1, 0, 0, 0, 1, 0, 0, 0, 1]},
               'projection_matrix': {'rows': 3, 'cols': 4, 'data': [490, 0, 401, 0, 0, 515, 299, 0, 0, 0, 1, 0]}}


def values(**overrides) -> dict:
    return validate_parameters(PARAMETERS, {'camera_id': 'cam01', 'url': 'testpattern://', **overrides}, 'test')


def test_network_camera_config_carries_settings_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('VSS_TEST_PW', 'geheim')
    config = build_driver_config(values(url='http://10.0.0.5/mjpeg', username='admin', password_env='VSS_TEST_PW',
                                        max_width=640, max_rate_hz=5.0, stall_timeout_s=3.0))
    assert config.frame_id == 'cam01_optical_frame'
    assert (config.settings.max_width, config.settings.max_fps, config.settings.username) == (640, 5.0, 'admin')
    assert isinstance(config.create_source(), HttpMjpegSource)
    assert 'geheim' not in repr(config)
    camera = config.supervise()
    try:
        assert (camera.stall_timeout_s, camera.name) == (3.0, 'cam01')
    finally:
        camera.stop()


@pytest.mark.parametrize('overrides, message', [
    ({'url': 'rtsp://admin:geheim@cam/s'}, 'camera cam01: url rtsp://admin:\\*\\*\\*@cam/s contains a password in '
                                           'its user info; .* set username plus password_env or password_file'),
    ({'url': 'http://cam/snap.cgi?user=a&pwd=geheim'}, 'contains the secret query parameter\\(s\\) pwd'),
    ({'url': 'ftp://cam/x'}, 'camera cam01: unsupported source URL ftp://cam/x'),
    ({'url': '/nonexistent/video.mp4'}, 'camera cam01: video file not found: /nonexistent/video.mp4'),
    ({'url': 'http://cam/mjpeg', 'password_env': 'X'}, 'password_env/password_file given without username'),
    ({'url': 'http://cam/mjpeg', 'username': 'a', 'password_env': 'VSS_TEST_UNSET'},
     'camera cam01: password environment variable VSS_TEST_UNSET is not set or empty'),
    ({'backoff_initial_s': 5.0, 'backoff_max_s': 1.0}, 'backoff_max_s 1.0 is below backoff_initial_s 5.0'),
    ({'privacy_zones': ['1,1 5,1 5,5']}, 'privacy_zones need privacy_zones_width and privacy_zones_height'),
    ({'privacy_zones': ['1,1 5,1'], 'privacy_zones_width': 10, 'privacy_zones_height': 10},
     'privacy_zones\\[0\\]: polygon needs at least 3 points, got 2'),
    ({'camera_info_url': '/nonexistent/cal.yaml'}, 'calibration file /nonexistent/cal.yaml cannot be read'),
])
def test_bad_configs_are_refused_with_exact_messages(overrides: dict, message: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('VSS_TEST_UNSET', raising=False)
    with pytest.raises(CameraConfigError, match=message) as error:
        build_driver_config(values(**overrides))
    assert 'geheim' not in str(error.value)


def test_zone_strings_parse_to_polygons_and_fill_exactly() -> None:
    zones = parse_zone_texts(['0,0 10,0 10,10 0,10', ' 20.5,5  30,5 25,15 '], (40, 20))
    assert len(zones) == 2
    image = np.full((20, 40, 3), 200, np.uint8)
    zones.apply(image)
    mask = zones.mask(40, 20)
    assert (image[mask] == 0).all() and (image[~mask] == 200).all()
    assert mask[5, 5] and mask[7, 25] and not mask[15, 35]
    with pytest.raises(PrivacyZoneError, match="privacy_zones\\[1\\] '1,1 2;2 3,3': point 2 '2;2' is not \"x,y\""):
        parse_zone_texts(['0,0 1,0 1,1', '1,1 2;2 3,3'], (40, 20))
    with pytest.raises(PrivacyZoneError, match='privacy_zones\\[0\\]: point \\(50, 0\\) lies outside the 40x20'):
        parse_zone_texts(['0,0 50,0 1,1'], (40, 20))


def test_calibration_file_loads_and_scales_with_the_published_size(tmp_path: Path) -> None:
    path = tmp_path / 'cam01.yaml'
    path.write_text(yaml.safe_dump(CALIBRATION))
    calibration = load_calibration(f'file://{path}')
    assert (calibration.width, calibration.height, calibration.distortion_model) == (800, 600, 'plumb_bob')
    half = calibration.scaled_to(400, 300)
    assert half.k == pytest.approx((250, 0, 200, 0, 260, 150, 0, 0, 1))
    assert half.p == pytest.approx((245, 0, 200.5, 0, 0, 257.5, 149.5, 0, 0, 0, 1, 0))
    assert half.d == calibration.d and half.r == calibration.r
    minimal = {k: v for k, v in CALIBRATION.items() if k not in ('rectification_matrix', 'projection_matrix')}
    path.write_text(yaml.safe_dump(minimal))
    assert load_calibration(str(path)).p == (500, 0, 400, 0, 0, 520, 300, 0, 0, 0, 1, 0)


@pytest.mark.parametrize('change, message', [
    ({'camera_matrix': {'rows': 3, 'cols': 3, 'data': [1, 2]}}, 'camera_matrix has rows=3, cols=3 but 2 values'),
    ({'projection_matrix': {'rows': 3, 'cols': 3, 'data': [0] * 9}}, 'projection_matrix must be 3x4, got 3x3'),
    ({'image_width': 0}, 'image_width and image_height must be positive integers'),
    ({'camera_matrix': None}, 'camera_matrix must be a mapping with rows, cols and a data list'),
])
def test_calibration_errors_name_file_and_field(tmp_path: Path, change: dict, message: str) -> None:
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump({**CALIBRATION, **change}))
    with pytest.raises(CalibrationError, match=f'calibration file {path}: {message}'):
        load_calibration(str(path))
    with pytest.raises(CalibrationError, match='only file:// URLs and plain paths'):
        load_calibration('package://cams/cam01.yaml')


def test_rate_decimator_keeps_frames_by_capture_time() -> None:
    decimator = RateDecimator(5.0)  # 200 ms slots, 50 ms early is still on time
    stamps_ms = [0, 100, 149, 199, 200, 290, 420, 600, 620, 700, 1300, 1460]
    kept = [t for t in stamps_ms if decimator.keep(t * 1_000_000)]
    assert kept == [0, 199, 420, 600, 1300, 1460]  # 1300: after a gap the grid restarts there
    assert all(RateDecimator(0.0).keep(t) for t in (5, 5, 6))


@pytest.mark.parametrize('source_fps, limit_hz, expected_fps', [(10, 5, 5), (5, 5, 5), (30, 10, 10), (3, 5, 3)])
def test_rate_decimator_jitter_costs_no_rate(source_fps: float, limit_hz: float, expected_fps: float) -> None:
    """Capture jitter of a few ms (any real camera, a loaded box) never lowers the kept rate,
    and early frames never raise it above the limit."""
    rng = np.random.default_rng(7)
    seconds = 60
    stamps_ns = (np.arange(seconds * source_fps) / source_fps + rng.uniform(-0.004, 0.004, seconds * source_fps)) * 1e9
    decimator = RateDecimator(limit_hz)
    kept = [t for t in stamps_ns.astype(np.int64) if decimator.keep(int(t))]
    assert len(kept) == pytest.approx(seconds * expected_fps, abs=1)
