"""Credential masking/resolution and static privacy zones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kaiserslautern_vss.camera.credentials import (CredentialsError, inject_credentials, mask_url,
                                                   resolve_password, split_credentials)
from kaiserslautern_vss.camera.privacy_zones import PrivacyZoneError, PrivacyZones


@pytest.mark.parametrize('url, masked', [
    ('rtsp://admin:geheim@10.0.0.5:554/stream1', 'rtsp://admin:***@10.0.0.5:554/stream1'),
    ('http://user:p%40ss@cam/mjpg?resolution=640x480', 'http://user:***@cam/mjpg?resolution=640x480'),
    ('http://cam/cgi-bin/snap.cgi?user=admin&pwd=geheim&ch=1', 'http://cam/cgi-bin/snap.cgi?user=admin&pwd=***&ch=1'),
    ('http://cam/video.cgi?Password=geheim', 'http://cam/video.cgi?Password=***'),
    ('rtsp://admin@cam/stream', 'rtsp://admin@cam/stream'),
    ('rtsp://cam/stream', 'rtsp://cam/stream'),
    ('/data/vtest.avi', '/data/vtest.avi'),
    ('http://u:geheim@[::1/broken', 'http:***'),
])
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert 'geheim' not in mask_url(url)


def test_inject_and_split_credentials_round_trip() -> None:
    url = inject_credentials('rtsp://old:pw@cam.local:554/s?x=1', 'admin', 'p@ss:w/rd')
    assert url == 'rtsp://admin:p%40ss%3Aw%2Frd@cam.local:554/s?x=1'
    assert split_credentials(url) == ('rtsp://cam.local:554/s?x=1', 'admin', 'p@ss:w/rd')
    assert mask_url(url) == 'rtsp://admin:***@cam.local:554/s?x=1'
    assert inject_credentials('rtsp://cam/s', '', 'ignored') == 'rtsp://cam/s'
    assert split_credentials('rtsp://cam/s') == ('rtsp://cam/s', '', '')


def test_resolve_password_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('VSS_TEST_CAM_PASSWORD', 'geheim')
    assert resolve_password('VSS_TEST_CAM_PASSWORD', '') == 'geheim'
    secret = tmp_path / 'cam.pw'
    secret.write_text('geheim2\n')
    assert resolve_password('', str(secret)) == 'geheim2'
    assert resolve_password('', '') == ''


def test_resolve_password_errors_name_the_source_not_the_secret(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('VSS_TEST_MISSING', raising=False)
    with pytest.raises(CredentialsError, match='password environment variable VSS_TEST_MISSING is not set'):
        resolve_password('VSS_TEST_MISSING', '')
    missing = tmp_path / 'missing.pw'
    with pytest.raises(CredentialsError, match=f'password file {missing} cannot be read: No such file'):
        resolve_password('', str(missing))
    empty = tmp_path / 'empty.pw'
    empty.write_text('\n')
    with pytest.raises(CredentialsError, match='is empty'):
        resolve_password('', str(empty))
    monkeypatch.setenv('VSS_TEST_CAM_PASSWORD', 'geheim')
    with pytest.raises(CredentialsError, match='either password_env or password_file') as error:
        resolve_password('VSS_TEST_CAM_PASSWORD', str(empty))
    assert 'geheim' not in str(error.value)


def noise(height: int, width: int) -> np.ndarray:
    # Values 1..254 so no pixel equals a fill value by chance.
    return np.random.default_rng(7).integers(1, 255, (height, width, 3), dtype=np.uint8)


def test_zone_pixels_are_exactly_the_fill_and_others_untouched() -> None:
    window = np.array([[100, 50], [300, 50], [300, 200], [100, 200]])
    triangle = np.array([[500, 300], [700, 300], [600, 500]])
    zones = PrivacyZones([window, triangle], (768, 576), fill=(0, 0, 255))
    image = noise(576, 768)
    original = image.copy()
    zones.apply(image)
    mask = zones.mask(768, 576)
    assert (image[mask] == (0, 0, 255)).all()
    assert (image[~mask] == original[~mask]).all()
    assert mask[50:201, 100:301].all() and mask[120, 99] == 0 and mask[120, 301] == 0
    assert mask[400, 600] and not mask[320, 502]
    assert mask.sum() == pytest.approx(201 * 151 + 0.5 * 200 * 200, rel=0.02)


def test_zones_scale_to_other_frame_sizes() -> None:
    zones = PrivacyZones([np.array([[384, 0], [768, 0], [768, 576], [384, 576]])], (768, 576))
    half = noise(288, 384)
    zones.apply(half)
    assert (half[:, 193:] == 0).all()
    assert (half[:, :191] != 0).any(axis=2).all()


def test_zone_validation() -> None:
    with pytest.raises(PrivacyZoneError, match=r'privacy_zones\[0\]: polygon needs at least 3 points, got 2'):
        PrivacyZones([np.array([[0, 0], [10, 10]])], (100, 100))
    with pytest.raises(PrivacyZoneError, match=r'privacy_zones\[1\]: point \(150, 5\) lies outside the 100x100 image'):
        PrivacyZones([np.array([[0, 0], [10, 0], [10, 10]]), np.array([[0, 0], [150, 5], [5, 5]])], (100, 100))
    with pytest.raises(PrivacyZoneError, match=r'polygon must have shape \(K, 2\), got \(3, 3\)'):
        PrivacyZones([np.zeros((3, 3))], (100, 100))
    with pytest.raises(PrivacyZoneError, match='fill must be three values 0..255'):
        PrivacyZones([], (100, 100), fill=(0, 0, 300))
    zones = PrivacyZones([np.array([[0, 0], [10, 0], [10, 10]])], (100, 100))
    with pytest.raises(PrivacyZoneError, match='expected an HxWx3 uint8 image'):
        zones.apply(np.zeros((100, 100), np.uint8))
    with pytest.raises(PrivacyZoneError, match='C-contiguous'):
        zones.apply(np.zeros((100, 200, 3), np.uint8)[:, ::2])
