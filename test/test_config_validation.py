"""The whole site configuration is checked before any process starts (issue #10, item 5).

Each case breaks one thing in an otherwise valid site and expects load_graph, which both
``ros2 launch`` and ``vss-bringup`` go through, to name the file, node, rule and field.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from kaiserslautern_vss.bringup.arguments import derive_graph
from kaiserslautern_vss.bringup.graph import GraphConfigError, load_graph
from kaiserslautern_vss.camera.privacy_zones import PrivacyZoneError, PrivacyZones
from kaiserslautern_vss.events.rule_schema import RuleConfigError, parse_rule
from kaiserslautern_vss.events.zones import Zone, ZoneConfigError
from site_support import SITE_CONFIG, site_overrides

REPO = Path(__file__).resolve().parents[1]
SHIPPED_GRAPHS = [REPO / 'config' / 'vss.yaml', SITE_CONFIG]
LAWN = {'name': 'lawn_intrusion', 'kind': 'zone_intrusion', 'camera': 'cam01', 'classes': ['person'],
        'zone': [[0, 430], [330, 430], [600, 576], [0, 576]], 'min_duration_s': 0.5}
BOWTIE = [[0, 0], [100, 100], [100, 0], [0, 100]]  # edges cross at (50, 50)

Site = dict[str, dict]


def _site(tmp_path: Path) -> tuple[Site, list[dict]]:
    """A valid two-camera site (graph sections by fqn) and its rules."""
    graph = {
        '/vss/cam01/camera_driver': {'camera_id': 'cam01', 'url': 'testpattern://'},
        '/vss/cam02/camera_driver': {'camera_id': 'cam02', 'url': 'testpattern://'},
        '/vss/detector': {},
        '/vss/privacy': {},
        '/vss/event_manager': {'rules_file': 'rules.yaml', 'record_root': str(tmp_path / 'recordings'),
                               'signing_key_file': str(tmp_path / 'keys' / 'signing_key.pem')},
    }
    rules = [dict(LAWN), {'name': 'left_luggage', 'kind': 'object_left_behind', 'camera': 'cam02',
                          'stationary_s': 60.0}]
    return graph, rules


def _write(tmp_path: Path, graph: Site, rules: list[dict]) -> Path:
    path = tmp_path / 'site.yaml'
    path.write_text(yaml.safe_dump({fqn: {'ros__parameters': values} for fqn, values in graph.items()}))
    (tmp_path / 'rules.yaml').write_text(yaml.safe_dump({'rules': rules}))
    return path


def _problems(tmp_path: Path, mutate: Callable[[Site, list[dict]], None]) -> str:
    """The error message of the site after ``mutate``."""
    graph, rules = _site(tmp_path)
    mutate(graph, rules)
    config = _write(tmp_path, graph, rules)
    with pytest.raises(GraphConfigError) as error:
        load_graph(config)
    return str(error.value)


def _rule(rules: list[dict], **fields) -> None:
    rules[0].update(fields)


def test_the_valid_site_and_the_shipped_configs_pass(tmp_path):
    graph, rules = _site(tmp_path)
    assert len(load_graph(_write(tmp_path, graph, rules))) == 5
    for config in SHIPPED_GRAPHS:  # the site's model requirement is test_privacy_fallback's
        assert load_graph(config, overrides=site_overrides() if config == SITE_CONFIG else None)


def test_missing_rules_file(tmp_path):
    message = _problems(tmp_path, lambda graph, rules: graph['/vss/event_manager'].update(rules_file='rulez.yaml'))
    assert message == (f'{tmp_path / "site.yaml"}: /vss/event_manager: rules_file: cannot read rules file '
                       f'{tmp_path / "rulez.yaml"}: No such file or directory')


@pytest.mark.parametrize('zone, problem', [
    ([[0, 0], [10, 10]], 'polygon needs at least 3 points, got 2'),
    ([[0, 0], [10, 'x'], [0, 10]], 'could not convert string to float'),
    ([[0, 0], [5, 5], [10, 10]], 'polygon is degenerate \\(all points on one line\\)'),
])
def test_bad_polygon(tmp_path, zone, problem):
    message = _problems(tmp_path, lambda graph, rules: _rule(rules, zone=zone))
    assert message.startswith(f"{tmp_path / 'site.yaml'}: /vss/event_manager: rules_file {tmp_path / 'rules.yaml'}: "
                              "rule 'lawn_intrusion': field 'zone': ")
    assert len(message.splitlines()) == 1
    assert re.search(problem, message)


def test_self_intersecting_zone(tmp_path):
    message = _problems(tmp_path, lambda graph, rules: _rule(rules, zone=BOWTIE))
    assert f"rules_file {tmp_path / 'rules.yaml'}: rule 'lawn_intrusion': field 'zone': zone 'lawn_intrusion': " \
           'polygon self-intersects at (50, 50)' in message
    with pytest.raises(ZoneConfigError, match='self-intersects at \\(50, 50\\)'):  # the event manager refuses it too
        Zone('lawn', np.array(BOWTIE, float))


@pytest.mark.parametrize('mutate, problem', [
    (lambda graph, rules: _rule(rules, min_duration_s=-1.0),
     "rule 'lawn_intrusion': field 'min_duration_s': must be >= 0, got -1.0"),
    (lambda graph, rules: rules[1].update(stationary_s=-5),
     "rule 'left_luggage': field 'stationary_s': must be >= 0, got -5"),
    (lambda graph, rules: graph['/vss/event_manager'].update(post_event_s=-2.0),
     "/vss/event_manager: parameter 'post_event_s' = -2.0 is below 0.0"),
])
def test_negative_duration(tmp_path, mutate, problem):
    assert problem in _problems(tmp_path, mutate)


def test_unknown_class_gets_a_suggestion(tmp_path):
    message = _problems(tmp_path, lambda graph, rules: _rule(rules, classes=['persn']))
    assert message.endswith("rule 'lawn_intrusion': field 'classes': 'persn' is not a class of the detector's "
                            "model; did you mean 'person'?")


def test_classes_come_from_the_configured_model(tmp_path):
    (tmp_path / 'classes.txt').write_text('person\ncar\n')

    def custom_model(graph: Site, rules: list[dict]) -> None:
        graph['/vss/detector'].update(class_names_path='classes.txt', class_allowlist=['person', 'cars'])
        rules[0]['classes'] = ['car']
    message = _problems(tmp_path, custom_model)
    assert "/vss/detector: class_allowlist: 'cars' is not a class of the model; did you mean 'car'?" in message
    assert "rule 'lawn_intrusion': field 'classes': 'car' is never published: the detector's class_allowlist " \
           'lacks it' in message
    # object_left_behind defaults to backpack, handbag, suitcase: none of them in this model
    assert "rule 'left_luggage': field 'classes': 'backpack' is not a class of the detector's model" in message


def test_unknown_camera_in_a_rule(tmp_path):
    message = _problems(tmp_path, lambda graph, rules: _rule(rules, camera='cam1'))
    assert message.endswith("rule 'lawn_intrusion': field 'camera': no camera driver in site.yaml has camera_id "
                            "'cam1' (configured: cam01, cam02); did you mean 'cam01'?")


@pytest.mark.parametrize('camera_id', ['north/cam03', '3cam', 'cam-03'])
def test_camera_id_must_be_usable_in_topic_names(tmp_path, camera_id):
    def add_camera(graph: Site, rules: list[dict]) -> None:
        graph['/vss/cam03/camera_driver'] = {'camera_id': camera_id, 'url': 'testpattern://'}
    message = _problems(tmp_path, add_camera)
    assert message == (f"{tmp_path / 'site.yaml'}: /vss/cam03/camera_driver: camera_id {camera_id!r} cannot name "
                       'the topics /vss/<camera_id>/...: use letters, digits and _ only, not starting with a digit')


def test_camera_id_used_twice(tmp_path):
    message = _problems(tmp_path, lambda graph, rules: graph['/vss/cam02/camera_driver'].update(camera_id='cam01'))
    assert "camera_id 'cam01' is configured for 2 camera drivers" in message


@pytest.mark.parametrize('node, parameter, inside', [
    ('/vss/event_manager', 'signing_key_file', 'keys/signing_key.pem'),
    ('/vss/event_manager', 'mqtt_password_file', 'mqtt.pw'),
    ('/vss/event_manager', 'webhook_secret_file', 'hooks/webhook.secret'),
    ('/vss/cam01/camera_driver', 'password_file', 'cam01.pw'),
    ('/vss/camera_events', 'secrets_dir', 'ipnotify'),
])
def test_key_file_inside_the_record_root(tmp_path, node, parameter, inside):
    def move_inside(graph: Site, rules: list[dict]) -> None:
        graph.setdefault(node, {})[parameter] = str(tmp_path / 'recordings' / inside)
        graph['/vss/cam01/camera_driver']['username'] = 'vss'
    message = _problems(tmp_path, move_inside)
    assert message == (f"{tmp_path / 'site.yaml'}: {node}: {parameter} {tmp_path / 'recordings' / inside} lies "
                       f"inside the recordings (/vss/event_manager record_root {tmp_path / 'recordings'}); whoever "
                       'can alter or export them would get it: keep it outside')


def test_key_file_inside_a_record_root_given_at_start_is_refused(tmp_path):
    """``record_root:=`` / ``--record-root`` is validated with the file, not applied afterwards."""
    graph, rules = _site(tmp_path)
    config = _write(tmp_path, graph, rules)
    keys = tmp_path / 'keys'  # where the site's signing key lies: fine for the file's record root
    with pytest.raises(GraphConfigError, match=re.escape(f'signing_key_file {keys / "signing_key.pem"} lies inside '
                                                         f'the recordings (/vss/event_manager record_root {keys})')):
        derive_graph(config, record_root=str(keys))
    check = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup', '--check', '--config',
                            str(config), '--record-root', str(keys)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 2, check.stdout + check.stderr
    assert f'signing_key_file {keys / "signing_key.pem"} lies inside the recordings' in check.stderr


@pytest.mark.parametrize('node, parameter, value, shown', [
    ('/vss/cam01/camera_driver', 'url', 'rtsp://vss:geheim@10.20.30.11:554/stream2',
     'url rtsp://vss:***@10.20.30.11:554/stream2 contains a password in its user info'),
    ('/vss/cam01/camera_driver', 'camera_info_url', 'https://cams.local/cal.yaml?token=geheim',
     'camera_info_url https://cams.local/cal.yaml?token=*** contains the secret query parameter(s) token'),
    ('/vss/event_manager', 'mqtt_host', 'vss:geheim@leitstelle.local',
     'mqtt_host mqtt://vss:***@leitstelle.local contains a password in its user info'),
    ('/vss/event_manager', 'webhook_url', 'https://ops:geheim@hooks.local/vss',
     'webhook_url https://ops:***@hooks.local/vss contains a password in its user info'),
])
def test_password_in_a_url(tmp_path, node, parameter, value, shown):
    message = _problems(tmp_path, lambda graph, rules: graph[node].update({parameter: value}))
    assert f'{node}: {shown}; parameter dumps and logs would show it' in message
    assert 'geheim' not in message


def test_what_cannot_start_is_refused_by_the_check(tmp_path):
    """A webhook without its secret file crash-looped the event manager after passing --check;
    a rule name is an identifier (it becomes folder names and incident ids)."""
    def break_it(graph: Site, rules: list[dict]) -> None:
        graph['/vss/event_manager'].update(webhook_url='https://hooks.local/vss', webhook_secret_file='')
        rules[0]['name'] = '../../x'
    message = _problems(tmp_path, break_it)
    assert ('/vss/event_manager: webhook_url is set but webhook_secret_file is not: every alert is signed with '
            'that secret') in message
    assert "field 'name': must be a letter, then up to 63 letters, digits, _ or -; got '../../x'" in message


@pytest.mark.parametrize('zones, size, problem', [
    (['0,0 100,100 100,0 0,100'], 1280, 'privacy_zones[0]: polygon self-intersects at (50, 50)'),
    (['0,0 1300,0 1300,100'], 1280, 'privacy_zones[0]: point (1300, 0) lies outside the 1280x720 image'),
    (['0,0 100,0'], 1280, 'privacy_zones[0]: polygon needs at least 3 points, got 2'),
    (['0,0 100,0 100,100'], 0, 'privacy_zones need privacy_zones_width and privacy_zones_height'),
])
def test_bad_privacy_zone(tmp_path, zones, size, problem):
    def add_zones(graph: Site, rules: list[dict]) -> None:
        graph['/vss/cam01/camera_driver'].update(privacy_zones=zones, privacy_zones_width=size,
                                                 privacy_zones_height=720)
    assert f'/vss/cam01/camera_driver: {problem}' in _problems(tmp_path, add_zones)
    if size:  # the driver refuses it too: a crossing outline would leave part of the zone visible
        with pytest.raises(PrivacyZoneError):
            PrivacyZones([np.array(BOWTIE, float)], (1280, 720))


def test_every_problem_is_reported_at_once(tmp_path):
    def break_everything(graph: Site, rules: list[dict]) -> None:
        graph['/vss/cam02/camera_driver'].update(url='rtsp://vss:geheim@cam02/s', privacy_zones=['0,0 9,9 9,0 0,9'],
                                                 privacy_zones_width=1280, privacy_zones_height=720)
        graph['/vss/event_manager']['signing_key_file'] = str(tmp_path / 'recordings' / 'key.pem')
        rules[0].update(classes=['persn'])
        rules[1].update(camera='cam3')
        rules.append({**LAWN, 'name': 'bowtie', 'zone': BOWTIE, 'camera': 'cam9', 'min_duration_s': -1})
        graph['/vss/cam01/camera_driver']['max_rate_hz'] = 500.0  # the parameter catalogue's problems come too
    lines = _problems(tmp_path, break_everything).splitlines()
    assert len(lines) == 9, lines
    for expected in ("/vss/cam01/camera_driver: parameter 'max_rate_hz' = 500.0 is above 240.0",
                     "/vss/cam02/camera_driver: url rtsp://vss:***@cam02/s", '/vss/cam02/camera_driver: privacy_zones[0]',
                     '/vss/event_manager: signing_key_file', "rule 'lawn_intrusion': field 'classes': 'persn'",
                     "rule 'left_luggage': field 'camera'", "rule 'bowtie': field 'zone'",
                     "rule 'bowtie': field 'camera'", "rule 'bowtie': field 'min_duration_s'"):
        assert any(expected in line for line in lines), expected


def test_every_problem_of_one_rule_is_reported():
    with pytest.raises(RuleConfigError) as error:
        parse_rule({**LAWN, 'zone': BOWTIE, 'min_duration_s': -1, 'time_windows': ['22-6'], 'colour': 'red'})
    assert [problem.split(': ')[1] for problem in error.value.problems] == [
        "field 'time_windows'", "field 'min_duration_s'", "field 'zone'", "unknown field(s) 'colour'"]


def _broken_site(tmp_path: Path) -> Path:
    graph, rules = _site(tmp_path)
    rules[0]['classes'] = ['persn']
    return _write(tmp_path, graph, rules)


def test_vss_bringup_exits_2_before_starting_anything(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup', '--config',
                             str(_broken_site(tmp_path))], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "field 'classes': 'persn' is not a class of the detector's model; did you mean 'person'?" in result.stderr
    assert 'started' not in result.stdout


def test_vss_bringup_check_validates_without_starting(tmp_path):
    graph, rules = _site(tmp_path)
    valid = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup', '--check', '--config',
                            str(_write(tmp_path, graph, rules))], capture_output=True, text=True, timeout=120)
    assert (valid.returncode, valid.stdout) == (0, f'vss-bringup: {tmp_path / "site.yaml"}: valid (5 nodes)\n')
    broken = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup', '--check', '--config',
                             str(_broken_site(tmp_path))], capture_output=True, text=True, timeout=120)
    assert broken.returncode == 2 and "'persn'" in broken.stderr


def test_ros2_launch_fails_before_any_node_starts(tmp_path):
    if shutil.which('ros2') is None:
        pytest.skip('ros2 is not installed (scripts/setup_env.sh installs the launch stack from '
                    '../shared/vendor/ros2_launch_stack)')
    result = subprocess.run(['ros2', 'launch', str(REPO / 'launch' / 'vss.launch.py'),
                             f'config:={_broken_site(tmp_path)}'],
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "'persn' is not a class of the detector's model; did you mean 'person'?" in output
    assert 'process started' not in output


@pytest.mark.parametrize('address', ['0.0.0.0', '::'])
def test_the_console_never_listens_on_every_interface(address: str) -> None:
    """The Leitstelle console serves recordings: it listens on the operator network only."""
    overrides = {**site_overrides(), '/vss/operator_console': {'bind_address': address}}
    with pytest.raises(GraphConfigError, match=f'/vss/operator_console: bind_address {re.escape(address)} would '
                                               'listen on every interface; give the address of the operator network'):
        load_graph(SITE_CONFIG, overrides=overrides)
