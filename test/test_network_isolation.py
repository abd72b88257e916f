"""Network separation: no node process has a socket on anything but loopback, however started.

Fast DDS's UDP sockets, the unread send sockets included, must sit on 127.0.0.1 only (the
installed profile config/fastdds_localhost.xml, applied by kaiserslautern_vss.bringup.
dds_environment). Started from a developer shell that sets ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST and no profile, as the environment most likely to get this wrong.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys

import psutil
import pytest
import yaml
from conftest import REPO_ROOT, wait_until
from kaiserslautern_vss.bringup.arguments import derive_graph
from kaiserslautern_vss.bringup.graph import parameters_yaml
from kaiserslautern_vss.bringup.processes import GraphProcesses
from launched_graph import GraphProbe
from servers.alert_receivers import self_signed_cert
from servers.mjpeg_server import MjpegServer
from servers.rtsp_process import RtspServer, gstreamer_missing
from test_camera_auth_tls import server_tls
from test_camera_mjpeg import VTEST, jpegs  # noqa: F401 - a fixture

pytestmark = pytest.mark.ros


def sockets(process: psutil.Process) -> list[tuple[str, str, int]]:
    """(kind, address, port) of every IP socket of ``process``."""
    return sorted({(c.type.name.removeprefix('SOCK_'), c.laddr.ip, c.laddr.port)
                   for c in process.net_connections(kind='inet') if c.laddr})


def non_loopback_sockets(processes: list[psutil.Process]) -> list[str]:
    return [f'pid {process.pid} ({process.name()}): {kind} {address}:{port}'
            for process in processes for kind, address, port in sockets(process)
            if not ipaddress.ip_address(address).is_loopback]


def _developer_shell_environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != 'FASTDDS_DEFAULT_PROFILES_FILE'}
    return {**env, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}


def test_a_node_started_by_hand_binds_nothing_but_loopback(tmp_path, rclpy_context):
    """`python -m kaiserslautern_vss.nodes.event_manager`: no launch file, no vss-bringup."""
    spec = next(s for s in derive_graph(record_root=str(tmp_path / 'bags')) if s.executable == 'event_manager')
    params = tmp_path / 'event_manager.yaml'
    params.write_text(parameters_yaml(spec))
    node = subprocess.Popen([sys.executable, '-m', 'kaiserslautern_vss.nodes.event_manager', '--ros-args',
                             '-r', '__node:=event_manager', '-r', '__ns:=/vss', '--params-file', str(params)],
                            env=_developer_shell_environment())
    probe = GraphProbe(rclpy_context)
    try:
        assert wait_until(lambda: spec.fqn in probe.node_names() or node.poll() is not None, 60, step=probe.spin)
        assert node.poll() is None, 'the event manager did not come up'
        process = psutil.Process(node.pid)
        assert sockets(process), 'no DDS socket found: nothing was checked'
        assert non_loopback_sockets([process]) == []
    finally:
        probe.close()
        node.send_signal(signal.SIGINT)
        node.wait(timeout=30)


def test_every_process_vss_bringup_starts_binds_nothing_but_loopback(tmp_path, rclpy_context):
    bringup = subprocess.Popen([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup',
                                '--record-root', str(tmp_path / 'bags'), '--log-level', 'warn'],
                               env=_developer_shell_environment())
    probe = GraphProbe(rclpy_context)
    try:
        assert wait_until(lambda: '/vss/privacy' in probe.node_names() or bringup.poll() is not None, 90,
                          step=probe.spin)
        assert bringup.poll() is None, 'the graph did not come up'
        processes = psutil.Process(bringup.pid).children(recursive=True)
        assert len(processes) == 2 and all(sockets(p) for p in processes)  # vision pipeline, event manager
        assert non_loopback_sockets(processes) == []
    finally:
        probe.close()
        bringup.send_signal(signal.SIGINT)
        assert bringup.wait(timeout=60) == 0


@pytest.fixture
def rtsp_camera():
    missing = gstreamer_missing()
    if missing:
        pytest.skip(missing)
    server = RtspServer(VTEST)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def https_camera(jpegs, tmp_path):  # noqa: F811 - the fixture imported above
    cert = self_signed_cert(tmp_path)
    server = MjpegServer(jpegs, fps=10, tls=server_tls(cert))
    server.start()
    yield server, cert[0]
    server.stop()


def connected_to(process: psutil.Process, port: int) -> bool:
    return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
               for c in process.net_connections(kind='tcp'))


def test_the_vision_pipeline_with_rtsp_and_https_cameras_binds_nothing_but_loopback(tmp_path, rtsp_camera,
                                                                                    https_camera):
    """FFmpeg (RTSP, RTP interleaved over TCP) and the HTTPS reader open no socket of their own
    beyond loopback; the test servers are on 127.0.0.1, the camera network here."""
    https_server, https_cert = https_camera
    document = yaml.safe_load((REPO_ROOT / 'config' / 'vss.yaml').read_text())
    document['/vss/cam01/camera_driver']['ros__parameters'].update(url=rtsp_camera.url, realtime=False)
    document['/vss/cam02/camera_driver'] = {'ros__parameters': {
        'camera_id': 'cam02', 'url': https_server.url, 'tls_ca_file': str(https_cert)}}
    document['/vss/event_manager']['ros__parameters']['record_root'] = str(tmp_path / 'bags')
    config = tmp_path / 'graph.yaml'
    config.write_text(yaml.safe_dump(document))
    for name in ('rules_demo.yaml',):
        (tmp_path / name).write_text((REPO_ROOT / 'config' / name).read_text())
    graph = GraphProcesses(derive_graph(config), env={**os.environ, **_developer_shell_environment()})
    with graph:
        pipeline = graph.of_executable('vision_pipeline')[0]
        assert wait_until(lambda: pipeline.returncode is not None or (
            connected_to(psutil.Process(pipeline.process.pid), int(rtsp_camera.url.split(':')[2].split('/')[0]))
            and connected_to(psutil.Process(pipeline.process.pid), https_server.port)), 120)
        assert pipeline.returncode is None, 'the vision pipeline ended'
        processes = [psutil.Process(node.process.pid) for node in graph.nodes]
        seen: set[str] = set()
        for _ in range(20):  # FFmpeg's and the readers' sockets come and go: look a few times
            seen.update(non_loopback_sockets(processes))
            wait_until(lambda: False, 0.25)
        assert https_server.parts_sent > 0
        assert seen == set()
