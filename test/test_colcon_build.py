"""The on-site route (README, docs/SITE.md): `colcon build` the package in a workspace, source
install/setup.bash, `ros2 launch kaiserslautern_vss vss.launch.py`; the installed files alone
(launch file, config, DDS profile) start the graph."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SHARED, shared_file
from launched_graph import GraphProbe, LaunchedGraph, require_launch_system
from test_network_isolation import non_loopback_sockets

pytestmark = [pytest.mark.ros, pytest.mark.slow]

#: what the checkout holds besides the package: environments, build output, results
NOT_SOURCES = ('.git', '.venv', 'build', 'install', 'log', '__pycache__', '*.egg-info', 'recordings',
               'bench-results', '.pytest_cache')


def _workspace_environment() -> dict[str, str]:
    """This shell's environment without what points into the checkout: the installed package
    must find its launch file, config and DDS profile by itself."""
    env = dict(os.environ)
    for name in ('PYTHONPATH', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        env.pop(name, None)
    env['VSS_SHARED_DIR'] = str(SHARED)  # model and sample video; an install has no ../shared
    return env


def test_colcon_build_and_launch_from_the_install(tmp_path, rclpy_context):
    require_launch_system()
    if shutil.which('colcon') is None:
        pytest.skip('colcon is not installed (requirements-launch.txt; scripts/setup_env.sh installs it)')
    shared_file('data/vtest.avi')
    workspace = tmp_path / 'ws'
    shutil.copytree(REPO_ROOT, workspace / 'src' / 'kaiserslautern_vss', ignore=shutil.ignore_patterns(*NOT_SOURCES))
    env = _workspace_environment()
    build = subprocess.run(['colcon', 'build'], cwd=workspace, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    share = workspace / 'install' / 'kaiserslautern_vss' / 'share' / 'kaiserslautern_vss'
    for installed in ('launch/vss.launch.py', 'launch/replay.launch.py', 'config/vss.yaml',
                      'config/fastdds_localhost.xml', 'systemd/kaiserslautern-vss.service'):
        assert (share / installed).is_file(), installed

    record_root = tmp_path / 'bags'
    command = ['bash', '-c', f'source {workspace}/install/setup.bash && '
               f'exec ros2 launch kaiserslautern_vss vss.launch.py record_root:={record_root}']
    probe = GraphProbe(rclpy_context)
    with LaunchedGraph(command, tmp_path, env=env) as launched:
        probe.wait_for_nodes({'/vss/cam01/camera_driver', '/vss/detector', '/vss/privacy', '/vss/event_manager'},
                             launched)
        processes = launched.node_processes()
        for process in processes:
            assert Path(process.cmdline()[1]).is_relative_to(workspace / 'install'), process.cmdline()
            assert process.environ()['FASTDDS_DEFAULT_PROFILES_FILE'] == str(share / 'config' / 'fastdds_localhost.xml')
        assert non_loopback_sockets(processes) == []
        launched.stop()
    probe.close()
    assert launched.process.returncode == 0, launched.output()[-3000:]
    assert launched.left_behind() == []
    assert 'XMLPARSER' not in launched.output()  # the profile was found and parsed
