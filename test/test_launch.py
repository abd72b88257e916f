"""The shipped launch files, run with the real ROS 2 launch system (`ros2 launch` in a subprocess).

Each test starts a launch file as an operator does and checks from this process, over DDS,
what came up: node names, topics, parameter values, frames, an incident bag; then a crash is
respawned and SIGINT stops everything, leaving no process and no temporary folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from vision_msgs.msg import Detection2DArray

from conftest import REPO_ROOT, shared_file, wait_until
from kaiserslautern_vss.bringup.arguments import derive_graph
from kaiserslautern_vss.bringup.graph import load_graph
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.ros import qos
from launched_graph import GraphProbe, LaunchedGraph, require_launch_system
from site_support import require_model
from test_network_isolation import non_loopback_sockets

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CONFIG = REPO_ROOT / 'config'
SITE = CONFIG / 'site_rathausvorplatz.yaml'
PIPELINE_NODES = {'/vss/detector', '/vss/privacy'}


@pytest.fixture(autouse=True)
def _launch_system():
    require_launch_system()


def ros2_launch(launch_file: str, *arguments: str) -> list[str]:
    return ['ros2', 'launch', 'kaiserslautern_vss', launch_file, *arguments]


def _rate_hz(probe: GraphProbe, topic: str, window_s: float) -> float:
    """Messages per second on ``topic`` (detections: reliable) over ``window_s``."""
    arrivals: list[float] = []
    subscription = probe.node.create_subscription(Detection2DArray, topic, lambda _: arrivals.append(time.monotonic()),
                                                  qos.RELIABLE)
    try:
        wait_until(lambda: len(arrivals) >= 2, 60, step=probe.spin)
        first = len(arrivals)
        deadline = time.monotonic() + window_s
        while time.monotonic() < deadline:
            probe.spin()
        return (len(arrivals) - first) / window_s
    finally:
        probe.node.destroy_subscription(subscription)


def _bringup_parameters_files(specs, tmp_path: Path) -> dict[str, dict]:
    """What vss-bringup writes for each process: parameters file contents keyed by node fqn."""
    graph = GraphProcesses(specs)
    try:
        return {fqn: section for node in graph.nodes
                for fqn, section in yaml.safe_load(Path(
                    node.command[node.command.index('--params-file') + 1]).read_text()).items()}
    finally:
        graph.stop()


def _launched_parameters_files(launched: LaunchedGraph) -> dict[str, dict]:
    contents = {}
    for process in launched.node_processes():
        command = process.cmdline()
        if '--params-file' in command:
            contents.update(yaml.safe_load(Path(command[command.index('--params-file') + 1]).read_text()))
    return contents


def test_demo_as_shipped(tmp_path, rclpy_context):
    """`ros2 launch kaiserslautern_vss vss.launch.py` with only a record_root: the demo config."""
    record_root = tmp_path / 'bags'
    specs = derive_graph(record_root=str(record_root))
    probe = GraphProbe(rclpy_context)
    with LaunchedGraph(ros2_launch('vss.launch.py', f'record_root:={record_root}'), tmp_path) as launched:
        probe.wait_for_nodes({s.fqn for s in specs}, launched)
        started_s = time.monotonic() - launched.started_at
        topics = probe.topics()
        for topic in ('/vss/cam01/detections', '/vss/cam01/image_anonymized/compressed',
                      '/vss/cam01/camera_info', '/vss/events', '/diagnostics'):
            assert topic in topics, f'{topic} not published; topics: {sorted(topics)}'
        assert '/vss/cam01/image_raw' not in topics  # raw frames stay inside the pipeline process

        # Every node holds exactly the values the shared derivation gives, and the processes got
        # the same parameters files vss-bringup writes. (An empty list is declared typed but
        # without a value, kaiserslautern_vss.ros.parameters: `ros2 param get` says "not set".)
        for spec in specs:
            expected = {name: value for name, value in spec.parameters.items() if value != []}
            assert probe.parameters(spec.fqn, list(expected)) == expected, spec.fqn
        assert _launched_parameters_files(launched) == _bringup_parameters_files(specs, tmp_path)
        assert non_loopback_sockets(launched.node_processes()) == []
        rate = _rate_hz(probe, '/vss/cam01/detections', window_s=5.0)
        assert rate > 2.0, f'detections at {rate:.1f} Hz'

        response = probe.trigger('/vss/cam01/trigger_recording')
        assert response.success, response.message
        assert wait_until(lambda: any(record_root.glob('*')), 30), 'no incident bag started'

        # A crash is restarted: the event manager, SIGKILLed, comes back as a new process.
        [event_manager] = launched.processes_of('event_manager')
        event_manager.kill()
        assert wait_until(lambda: [p.pid for p in launched.processes_of('event_manager')] not in ([], [event_manager.pid]),
                          30), launched.output()[-3000:]
        assert probe.parameters('/vss/event_manager', ['record_root'])['record_root'] == str(record_root)

        stop_s = launched.stop()
    probe.close()
    assert launched.process.returncode == 0, launched.output()[-3000:]
    assert launched.left_behind() == []
    bags = [folder for folder in record_root.iterdir() if (folder / 'metadata.yaml').is_file()]
    assert bags, f'no finished incident bag in {record_root}: {list(record_root.iterdir())}'
    print(f'demo: up in {started_s:.1f} s, detections {rate:.1f} Hz, stopped in {stop_s:.1f} s')


def _ten_camera_site(tmp_path: Path) -> Path:
    """The site config with every camera a synthetic 1280x720 one (the cameras' sub-stream size,
    the privacy zones' frame) and nodes that need the site's network and keys left out."""
    require_model('ten cameras run on the site\'s privacy-grade detector')
    document = yaml.safe_load(SITE.read_text())
    site = {}
    for fqn, section in document.items():
        values = section['ros__parameters']
        if fqn.endswith('/camera_driver'):
            values = {name: value for name, value in values.items()
                      if name not in ('url', 'username', 'password_env', 'password_file', 'tls_ca_file')}
            values['url'] = 'testpattern://?width=1280&height=720&fps=5'
        elif fqn == '/vss/event_manager':
            values = {'rules_file': str(CONFIG / values['rules_file']), 'record_root': str(tmp_path / 'bags'),
                      'pre_event_s': 2.0, 'post_event_s': 1.0}
        elif not fqn.endswith(('/detector', '/privacy')):
            continue  # camera_events, operator_console: the site's own addresses and keys
        site[fqn] = {'ros__parameters': values}
    path = tmp_path / 'site_test.yaml'
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


def test_ten_camera_site(tmp_path, rclpy_context):
    shared_file('models/yolox_nano.onnx')  # the site refuses to start without a privacy-grade model
    config = _ten_camera_site(tmp_path)
    specs = load_graph(config)
    drivers = [s for s in specs if s.executable == 'camera_driver']
    assert len(drivers) == 10
    probe = GraphProbe(rclpy_context)
    with LaunchedGraph(ros2_launch('vss.launch.py', f'config:={config}', 'log_level:=warn'), tmp_path) as launched:
        probe.wait_for_nodes({s.fqn for s in specs}, launched)
        started_s = time.monotonic() - launched.started_at
        assert [p.name() for p in launched.node_processes()].count('vision_pipeline') <= 1
        assert any(d.parameters['privacy_zones'] for d in drivers)
        for driver in drivers:
            expected = {name: driver.parameters[name] for name in ('camera_id', 'url', 'privacy_zones')
                        if driver.parameters[name] != []}
            assert probe.parameters(driver.fqn, list(expected)) == expected
        cameras_seen: set[str] = set()
        subscriptions = [probe.node.create_subscription(
            Detection2DArray, f'/vss/{d.parameters["camera_id"]}/detections',
            lambda _, camera=d.parameters['camera_id']: cameras_seen.add(camera), qos.RELIABLE) for d in drivers]
        assert wait_until(lambda: len(cameras_seen) == 10, 120, step=probe.spin), sorted(cameras_seen)
        for subscription in subscriptions:
            probe.node.destroy_subscription(subscription)
        assert non_loopback_sockets(launched.node_processes()) == []
        stop_s = launched.stop()
    probe.close()
    assert launched.process.returncode == 0, launched.output()[-3000:]
    assert launched.left_behind() == []
    print(f'ten cameras: up in {started_s:.1f} s, stopped in {stop_s:.1f} s')


def test_camera_subset_of_the_site(tmp_path, rclpy_context):
    config = _ten_camera_site(tmp_path)
    probe = GraphProbe(rclpy_context)
    with LaunchedGraph(ros2_launch('vss.launch.py', f'config:={config}', 'cameras:=cam03,cam07',
                                   'log_level:=warn'), tmp_path) as launched:
        probe.wait_for_nodes({'/vss/cam03/camera_driver', '/vss/cam07/camera_driver', *PIPELINE_NODES,
                              '/vss/event_manager'}, launched)
        assert probe.parameters('/vss/detector', ['cameras']) == {'cameras': ['cam03', 'cam07']}
        assert not {f'/vss/cam{i:02d}/camera_driver' for i in (1, 2, 4, 5, 6, 8, 9, 10)} & probe.node_names()
        launched.stop()
    probe.close()
    assert launched.process.returncode == 0 and launched.left_behind() == []


def test_replay_launch_file(tmp_path, rclpy_context):
    bag = tmp_path / 'clip_bag'
    from kaiserslautern_vss.tools.bag_from_video import main as bag_from_video
    assert bag_from_video([str(shared_file('data/vtest.avi')), str(bag), '--first-frame', '480',
                           '--frames', '30']) == 0
    probe = GraphProbe(rclpy_context)
    with LaunchedGraph(ros2_launch('replay.launch.py', f'bag:={bag}', f'record_root:={tmp_path / "bags"}',
                                   'log_level:=warn'), tmp_path) as launched:
        probe.wait_for_nodes({*PIPELINE_NODES, '/vss/event_manager'}, launched)
        assert '/vss/cam01/camera_driver' not in probe.node_names()
        assert probe.parameters('/vss/privacy', ['use_sim_time']) == {'use_sim_time': True}
        seen = []
        probe.node.create_subscription(Detection2DArray, '/vss/cam01/detections', seen.append, qos.RELIABLE)
        assert wait_until(lambda: bool(seen), 90, step=probe.spin), launched.output()[-3000:]
        launched.stop()
    probe.close()
    assert launched.left_behind() == []


def test_invalid_config_stops_launch_before_any_node_starts(tmp_path):
    document = yaml.safe_load((CONFIG / 'vss.yaml').read_text())
    document['/vss/cam01/camera_driver']['ros__parameters']['camera_id'] = 'cam/01'
    document['/vss/event_manager']['ros__parameters']['rules_file'] = str(CONFIG / 'rules_demo.yaml')
    broken = tmp_path / 'broken.yaml'
    broken.write_text(yaml.safe_dump(document))
    with LaunchedGraph(ros2_launch('vss.launch.py', f'config:={broken}'), tmp_path) as launched:
        launched.process.wait(timeout=60)
    assert launched.process.returncode != 0
    assert 'invalid site configuration' in launched.output() and 'cam/01' in launched.output()
    assert 'process started' not in launched.output()
    assert launched.left_behind() == []
