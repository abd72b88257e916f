"""One policy for a node process that ended (kaiserslautern_vss.bringup.respawn), the same in
`ros2 launch` and vss-bringup: a crash is restarted, a clean end is not, a configuration error
stops the graph."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO_ROOT, shared_file, wait_until
from graph_observer import vtest_clip
from kaiserslautern_vss.bringup.respawn import RESPAWN_DELAY_S, AfterExit, after_exit
from launched_graph import LaunchedGraph, require_launch_system

CONFIG = REPO_ROOT / 'config'


@pytest.mark.parametrize(('returncode', 'expected'), [
    (0, AfterExit.LEAVE),                      # finished file source, clean shutdown
    (2, AfterExit.STOP_GRAPH),                 # refused its configuration
    (1, AfterExit.RESPAWN),                    # uncaught exception
    (-signal.SIGKILL, AfterExit.RESPAWN),      # OOM killer, kill -9
    (-signal.SIGSEGV, AfterExit.RESPAWN),
    (-signal.SIGABRT, AfterExit.RESPAWN),
    (-signal.SIGINT, AfterExit.LEAVE),         # asked to stop
    (-signal.SIGTERM, AfterExit.LEAVE),
    (-signal.SIGHUP, AfterExit.LEAVE),
    (-signal.SIGPIPE, AfterExit.LEAVE),
])
def test_after_exit(returncode, expected):
    assert after_exit(returncode) is expected


def _demo_config(tmp_path, **detector: object) -> str:
    """The demo graph on a 3 s clip, played once; ``detector`` parameters on top."""
    document = yaml.safe_load((CONFIG / 'vss.yaml').read_text())
    document['/vss/cam01/camera_driver']['ros__parameters']['url'] = str(vtest_clip(tmp_path / 'clip.avi',
                                                                                    range(480, 510)))
    document['/vss/detector']['ros__parameters'].update(detector)
    document['/vss/event_manager']['ros__parameters'].update(rules_file=str(CONFIG / 'rules_demo.yaml'),
                                                             record_root=str(tmp_path / 'bags'))
    path = tmp_path / 'graph.yaml'
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.mark.ros
@pytest.mark.slow
def test_launch_leaves_a_finished_camera_ended(tmp_path):
    require_launch_system()
    config = _demo_config(tmp_path)
    with LaunchedGraph(['ros2', 'launch', 'kaiserslautern_vss', 'vss.launch.py', f'config:={config}'],
                       tmp_path) as launched:
        assert wait_until(lambda: 'process has finished cleanly' in launched.output(), 90), launched.output()[-3000:]
        time.sleep(2 * RESPAWN_DELAY_S)
        assert launched.processes_of('vision_pipeline') == []
        assert len(launched.processes_of('event_manager')) == 1  # the rest of the graph runs on
        launched.stop()
    assert 'vision_pipeline-2' not in launched.output()  # never started again


@pytest.mark.ros
@pytest.mark.slow
def test_launch_stops_when_a_node_refuses_its_configuration(tmp_path):
    require_launch_system()
    garbage = tmp_path / 'model.onnx'
    garbage.write_bytes(b'not a model')
    config = _demo_config(tmp_path, model_path=str(garbage))
    with LaunchedGraph(['ros2', 'launch', 'kaiserslautern_vss', 'vss.launch.py', f'config:={config}'],
                       tmp_path) as launched:
        launched.process.wait(timeout=90)
    output = launched.output()
    assert 'not a loadable ONNX model' in output and 'refused its configuration' in output, output[-3000:]
    assert 'vision_pipeline-2' not in output  # never restarted
    assert launched.process.returncode == 1  # a failure for systemd (Restart=on-failure, limited)
    assert launched.left_behind() == []


@pytest.mark.ros
@pytest.mark.slow
def test_vss_bringup_stops_when_a_node_refuses_its_configuration(tmp_path):
    shared_file('data/vtest.avi')
    garbage = tmp_path / 'model.onnx'
    garbage.write_bytes(b'not a model')
    bringup = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup',
                              '--config', _demo_config(tmp_path, model_path=str(garbage))],
                             capture_output=True, text=True, timeout=120)
    assert bringup.returncode == 2
    assert 'refused its configuration' in bringup.stderr and 'not a loadable ONNX model' in bringup.stderr
