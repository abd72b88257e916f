"""Everything a camera driver needs, built and checked once from its parameters (no ROS here).

Problems an operator must fix (a camera id that cannot name topics, an unknown URL scheme, a
password written into the URL, a missing password variable, zones outside the image or
crossing themselves, an unreadable calibration, a missing video file) raise
:class:`CameraConfigError` with the exact cause, so the driver refuses to start. Those found in
the values alone (:func:`config_problems`) are also checked by the bringup, for every camera,
before any process starts. Problems the camera may recover from (unreachable, unplugged, broken stream) are left
to :class:`SupervisedCamera`, which retries forever.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kaiserslautern_vss.camera.calibration import CalibrationError, CameraCalibration, load_calibration
from kaiserslautern_vss.camera.credentials import inline_secret, mask_url, resolve_password
from kaiserslautern_vss.camera.file_source import VideoFileSource
from kaiserslautern_vss.camera.image_directory_source import ImageDirectorySource
from kaiserslautern_vss.camera.privacy_zones import PrivacyZoneError, PrivacyZones, parse_zone_texts
from kaiserslautern_vss.camera.source_types import FrameSource, SourceConfigError, SourceError, SourceSettings
from kaiserslautern_vss.camera.sources import NETWORK_SCHEMES, open_source
from kaiserslautern_vss.camera.supervisor import SupervisedCamera
from kaiserslautern_vss.paths import resolve_sample_url


#: a camera id is one ROS name token: it becomes the namespace /vss/<camera_id> of the camera's topics
CAMERA_ID_PATTERN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


class CameraConfigError(ValueError):
    """A camera configuration the driver refuses to start with; the message names the camera and the cause."""


@dataclass(frozen=True)
class CameraDriverConfig:
    camera_id: str
    url: str  # never holds a password (rejected at build time)
    settings: SourceSettings
    frame_id: str
    max_rate_hz: float
    stall_timeout_s: float
    backoff_initial_s: float
    backoff_max_s: float
    privacy_zones: PrivacyZones | None
    calibration: CameraCalibration | None
    auth_max_attempts: int = 3
    auth_window_s: float = 900.0
    clock_offset_warn_s: float = 2.0

    def create_source(self) -> FrameSource:
        return open_source(self.url, self.settings)

    def supervise(self) -> SupervisedCamera:
        """A started camera thread that reopens the source on every failure."""
        return SupervisedCamera(self.create_source, stall_timeout_s=self.stall_timeout_s,
                                backoff_initial_s=self.backoff_initial_s, backoff_max_s=self.backoff_max_s,
                                name=self.camera_id, privacy_zones=self.privacy_zones,
                                auth_max_attempts=self.auth_max_attempts, auth_window_s=self.auth_window_s,
                                clock_offset_warn_s=self.clock_offset_warn_s)


def reject_inline_secrets(url: str) -> None:
    """A password in the URL would show in every parameter dump: refuse it, naming the fix."""
    where = inline_secret(url)
    if where:
        raise CameraConfigError(f'url {mask_url(url)} contains {where}; parameter dumps and logs would show it: '
                                f'remove it and set username plus password_env or password_file')


def check_camera_id(camera_id: str) -> None:
    if not CAMERA_ID_PATTERN.fullmatch(camera_id):
        raise CameraConfigError(f'camera_id {camera_id!r} cannot name the topics /vss/<camera_id>/...: use '
                                'letters, digits and _ only, not starting with a digit')


def _check_login(values: Mapping[str, Any]) -> None:
    if (values['password_env'] or values['password_file']) and not values['username']:
        raise CameraConfigError('password_env/password_file given without username')


def _check_backoff(values: Mapping[str, Any]) -> None:
    if values['backoff_max_s'] < values['backoff_initial_s']:
        raise CameraConfigError(f'backoff_max_s {values["backoff_max_s"]} is below backoff_initial_s '
                                f'{values["backoff_initial_s"]}')


def _privacy_zones(values: Mapping[str, Any]) -> PrivacyZones | None:
    zones_size = (values['privacy_zones_width'], values['privacy_zones_height'])
    zone_texts = [text for text in values['privacy_zones'] if text.strip()]
    if zone_texts and not all(zones_size):
        raise CameraConfigError('privacy_zones need privacy_zones_width and privacy_zones_height (the image '
                                'size their points refer to)')
    return parse_zone_texts(zone_texts, zones_size) if zone_texts else None


def _check_id(values: Mapping[str, Any]) -> None:
    check_camera_id(values['camera_id'])


def _settings(values: Mapping[str, Any]) -> SourceSettings:
    return SourceSettings(
        realtime=values['realtime'], loop=values['loop'], rtsp_transport=values['rtsp_transport'],
        snapshot_rate_hz=values['snapshot_rate_hz'], max_width=values['max_width'],
        max_height=values['max_height'], max_fps=values['max_rate_hz'], open_timeout_s=values['open_timeout_s'],
        read_timeout_s=values['read_timeout_s'], username=values['username'],
        password_env=values['password_env'], password_file=values['password_file'],
        tls_ca_file=values['tls_ca_file'], tls_fingerprint=values['tls_fingerprint'],
        allow_basic_over_plain=values['allow_basic_over_plain'])


def _check_source(values: Mapping[str, Any]) -> None:
    """URL and link settings (MxPEG instead of JPEG, a malformed fingerprint, TLS settings on a plain link)."""
    url = values['url']
    try:
        if inline_secret(url) or urlsplit(url).scheme.lower() not in NETWORK_SCHEMES:
            return  # secrets: reject_inline_secrets; local sources: opened when the driver is built
        open_source(url, _settings(values))
    except (SourceConfigError, ValueError) as error:
        raise CameraConfigError(str(error)) from None


_VALUE_CHECKS: tuple[Callable[[Mapping[str, Any]], object], ...] = (_check_id, _check_login, _check_backoff,
                                                                    _check_source,
                                                                    _privacy_zones)


def config_problems(values: Mapping[str, Any]) -> list[str]:
    """Every problem of validated catalogue values found without opening the source or reading a
    password (the URL's secrets are checked by :func:`reject_inline_secrets`)."""
    problems = []
    for check in _VALUE_CHECKS:
        try:
            check(values)
        except (CameraConfigError, PrivacyZoneError) as error:
            problems.append(str(error))
    return problems


def build_driver_config(values: Mapping[str, Any]) -> CameraDriverConfig:
    """The driver configuration from validated catalogue values (see parameters/camera_driver.py)."""
    camera_id = values['camera_id']
    try:
        return _build(camera_id, values)
    except (CameraConfigError, SourceConfigError, SourceError, PrivacyZoneError, CalibrationError,
            FileNotFoundError) as error:
        raise CameraConfigError(f'camera {camera_id}: {error}') from None


def _build(camera_id: str, values: Mapping[str, Any]) -> CameraDriverConfig:
    reject_inline_secrets(values['url'])
    problems = config_problems(values)
    if problems:
        raise CameraConfigError('; '.join(problems))
    url = resolve_sample_url(values['url'])
    settings = _settings(values)
    resolve_password(settings.password_env, settings.password_file)  # fail now, not on every reconnect
    _check_local_source(open_source(url, settings))
    return CameraDriverConfig(
        camera_id=camera_id, url=url, settings=settings,
        frame_id=values['frame_id'] or f'{camera_id}_optical_frame', max_rate_hz=values['max_rate_hz'],
        stall_timeout_s=values['stall_timeout_s'], backoff_initial_s=values['backoff_initial_s'],
        backoff_max_s=values['backoff_max_s'],
        privacy_zones=_privacy_zones(values),
        calibration=load_calibration(values['camera_info_url']) if values['camera_info_url'] else None,
        auth_max_attempts=values['auth_max_attempts'], auth_window_s=values['auth_window_s'],
        clock_offset_warn_s=values['clock_offset_warn_s'])


def _check_local_source(source: FrameSource) -> None:
    """Files and image folders are opened once now: a wrong path is a config error, not an outage."""
    if isinstance(source, (VideoFileSource, ImageDirectorySource)):
        try:
            source.open()
        finally:
            source.close()
