"""The Rathausvorplatz site config: valid, credential-free, and started alike by launch_ros and vss-bringup."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import yaml

from kaiserslautern_vss.bringup.arguments import START_ARGUMENTS, derive_graph
from kaiserslautern_vss.bringup.graph import GraphConfigError
from kaiserslautern_vss.camera.driver_config import CameraConfigError, build_driver_config
from kaiserslautern_vss.events.rule_schema import load_rules_file
from kaiserslautern_vss.tools.bringup import add_graph_arguments, graph_from_arguments
from site_support import SITE_CONFIG as SITE
from site_support import load_site, require_model

CONFIG = Path(__file__).resolve().parents[1] / 'config'
CAMERAS = [f'cam{i:02d}' for i in range(1, 11)]
FRAME_SIZE = (1280, 720)  # every camera delivers its 1280x720 sub-stream


def _drivers() -> dict[str, dict]:
    return {s.parameters['camera_id']: s.parameters for s in load_site() if s.executable == 'camera_driver'}


def test_ten_camera_drivers_and_one_detector_privacy_and_event_manager_serving_all():
    nodes = {s.fqn: s for s in load_site()}
    assert set(nodes) == {f'/vss/{c}/camera_driver' for c in CAMERAS} | {
        '/vss/detector', '/vss/privacy', '/vss/event_manager', '/vss/operator_console', '/vss/camera_events'}
    for executable in ('detector', 'privacy', 'event_manager', 'operator_console', 'camera_events'):
        assert nodes[f'/vss/{executable}'].parameters['cameras'] == CAMERAS
    event_manager = nodes['/vss/event_manager'].parameters
    assert event_manager['retention_hours'] == 72.0 and event_manager['encryption'] is True
    assert nodes['/vss/privacy'].parameters['on_deadline'] == 'mask_all'


def test_camera_passwords_come_from_the_environment_only(monkeypatch):
    text = SITE.read_text()
    for camera, values in _drivers().items():
        assert values['password_env'] == f'VSS_{camera.upper()}_PASSWORD'
        assert values['username'] and '@' not in values['url']
        monkeypatch.setenv(values['password_env'], 'not-in-the-file')
        config = build_driver_config(values)  # rejects inline secrets, checks the zones
        assert config.url == values['url']
    assert 'not-in-the-file' not in text
    monkeypatch.delenv('VSS_CAM05_PASSWORD')
    with pytest.raises(CameraConfigError, match='cam05.*VSS_CAM05_PASSWORD'):
        build_driver_config(_drivers()['cam05'])


def test_mobotix_cameras_stream_full_jpeg_over_verified_tls_with_digest():
    for camera, values in _drivers().items():
        assert values['url'].startswith('https://') and '/control/faststream.jpg?stream=full&needlength' in values['url']
        assert values['tls_ca_file'] or values['tls_fingerprint'], camera
        assert not values['allow_basic_over_plain'] and values['username'] == 'vss-live'
    camera_events = next(s for s in load_site() if s.executable == 'camera_events').parameters
    assert camera_events['bind_address'].startswith('10.20.30.')  # the camera network, not every interface


def test_privacy_zones_and_rule_polygons_lie_inside_the_frames(monkeypatch):
    width, height = FRAME_SIZE
    for camera, values in _drivers().items():
        monkeypatch.setenv(values['password_env'], 'x')
        zones = build_driver_config(values).privacy_zones
        if values['privacy_zones']:
            assert zones is not None and len(zones) == len(values['privacy_zones'])
            assert zones.image_size == FRAME_SIZE
    rules = load_rules_file(CONFIG / 'rules_rathausvorplatz.yaml')
    assert sorted({rule.camera for rule in rules}) == CAMERAS  # every camera has a rule
    document = yaml.safe_load((CONFIG / 'rules_rathausvorplatz.yaml').read_text())
    for rule in document['rules']:
        for key in ('zone', 'line'):
            if key in rule:
                points = np.asarray(rule[key], float)
                assert (points >= 0).all() and (points[:, 0] <= width).all() and (points[:, 1] <= height).all()


def _bringup_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_graph_arguments(parser)
    return parser.parse_args(argv)


def _launch_values(**values: str) -> dict[str, str]:
    """What the launch file's LaunchConfigurations perform to: the declared defaults, overridden."""
    return {**{a.name: a.default for a in START_ARGUMENTS}, **values}


def test_vss_bringup_and_the_launch_arguments_derive_the_same_graph(tmp_path):
    require_model('vss-bringup takes the site as shipped')
    argv = ['--config', str(SITE), '--cameras', 'cam03,cam07', '--record-root', str(tmp_path / 'bags'),
            '--use-sim-time']
    from_bringup = graph_from_arguments(_bringup_args(argv))
    values = _launch_values(config=str(SITE), cameras='cam03,cam07', record_root=str(tmp_path / 'bags'),
                            use_sim_time='true')
    from_launch = derive_graph(values['config'], cameras=values['cameras'], record_root=values['record_root'],
                               use_sim_time=values['use_sim_time'] == 'true')
    assert from_bringup == from_launch
    assert [s.fqn for s in from_launch] == ['/vss/cam03/camera_driver', '/vss/cam07/camera_driver',
                                            '/vss/detector', '/vss/privacy', '/vss/camera_events',
                                            '/vss/event_manager', '/vss/operator_console']
    assert all(s.parameters['use_sim_time'] is True for s in from_launch)
    assert all(s.parameters['record_root'] == str(tmp_path / 'bags') for s in from_launch[-2:])
    # What each front end makes of these specs: test/test_launch_unit.py.


def test_no_camera_drivers_for_replay():
    require_model('vss-bringup takes the site as shipped')
    specs = graph_from_arguments(_bringup_args(['--config', str(SITE), '--no-camera-drivers']))
    assert [s.executable for s in specs] == ['detector', 'privacy', 'camera_events', 'event_manager',
                                             'operator_console']
    assert specs[0].parameters['cameras'] == CAMERAS


def test_invalid_site_config_names_the_node_and_parameter(tmp_path):
    document = yaml.safe_load(SITE.read_text())
    document['/vss/cam04/camera_driver']['ros__parameters']['max_rate_hz'] = 500.0
    broken = tmp_path / 'site.yaml'
    broken.write_text(yaml.safe_dump(document))
    (tmp_path / 'rules_rathausvorplatz.yaml').write_text((CONFIG / 'rules_rathausvorplatz.yaml').read_text())
    with pytest.raises(GraphConfigError, match="/vss/cam04/camera_driver: parameter 'max_rate_hz' = 500.0 is above"):
        derive_graph(broken)
