"""For the launch tests: `ros2 launch` run as an operator runs it, watched from another process.

LaunchedGraph starts the launch command in a subprocess and knows its node processes (psutil);
GraphProbe is an rclpy node in the test process that asks the running graph for its nodes,
topics and parameters, as `ros2 node list` / `ros2 param get` would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.task import Future
from std_srvs.srv import Trigger

from conftest import wait_until

#: generous: a loaded 2-core box starts Python, ONNX Runtime and ten cameras slowly
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0


def require_launch_system() -> None:
    """Skip unless `ros2 launch` works here (scripts/setup_env.sh installs it from ../shared)."""
    if importlib.util.find_spec('launch_ros') is None or shutil.which('ros2') is None:
        pytest.skip('the ROS 2 launch system is not installed: scripts/setup_env.sh installs it from '
                    '../shared/vendor/ros2_launch_stack when that folder is there')


def _default_sigint() -> None:
    # A shell's background job inherits SIGINT ignored; launch must see our SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LaunchedGraph:
    """``command`` (e.g. ``ros2 launch kaiserslautern_vss vss.launch.py``) in a subprocess with
    ``env`` (default: this process's environment) whose temporary files go to ``tmp_path/tmp``,
    so a test can see that none is left behind."""

    def __init__(self, command: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp_path / 'tmp'
        self.tmp.mkdir(exist_ok=True)
        self.log = tmp_path / 'launch.log'
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            command, env={**(os.environ if env is None else env), 'TMPDIR': str(self.tmp)},
            stdout=self.log.open('w'), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_default_sigint)
        self.seen: dict[int, psutil.Process] = {}

    def output(self) -> str:
        return self.log.read_text(errors='replace')

    def node_processes(self) -> list[psutil.Process]:
        """The running processes launch started (remembered, so a test can check they ended)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update({child.pid: child for child in children})
        return [child for child in children if child.is_running()]

    def processes_of(self, executable: str) -> list[psutil.Process]:
        found = []
        for process in self.node_processes():
            try:
                if any(Path(part).name == executable for part in process.cmdline()[:2]):
                    found.append(process)
            except psutil.NoSuchProcess:
                continue
        return found

    def stop(self) -> float:
        """SIGINT to launch, as Ctrl-C or the systemd unit sends it; seconds until it exited."""
        self.node_processes()
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        return time.monotonic() - started

    def left_behind(self) -> list[str]:
        """Processes launch started that still run, and the package's temporary folders
        (vss-launch-*, vss-params-*) left in TMPDIR."""
        alive = [f'pid {pid}: {" ".join(p.cmdline())}' for pid, p in self.seen.items()
                 if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        return alive + [str(path) for path in self.tmp.glob('vss-*')]

    def __enter__(self) -> LaunchedGraph:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.process.kill()
        for process in self.seen.values():  # never leave a node running, whatever failed
            if process.is_running():
                process.kill()


class GraphProbe:
    """An rclpy node in the test process: what ``ros2 node list``, ``ros2 topic list`` and
    ``ros2 param get`` see of the running graph."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node('launch_test_probe', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._parameter_clients: dict[str, AsyncParameterClient] = {}

    def spin(self) -> None:
        self.executor.spin_once(timeout_sec=0.1)

    def node_names(self) -> set[str]:
        return {f'{ns.rstrip("/")}/{name}' for name, ns in self.node.get_node_names_and_namespaces()}

    def topics(self) -> dict[str, list[str]]:
        return dict(self.node.get_topic_names_and_types())

    def wait_for_nodes(self, expected: set[str], launched: LaunchedGraph,
                       timeout_s: float = START_TIMEOUT_S) -> None:
        came_up = wait_until(lambda: expected <= self.node_names() or launched.process.poll() is not None,
                             timeout_s, step=self.spin)
        assert came_up and expected <= self.node_names(), \
            f'missing nodes {sorted(expected - self.node_names())}; launch output:\n{launched.output()[-4000:]}'

    def _call(self, send: Callable[[], Future], timeout_s: float) -> Any:
        """Send until answered: a request sent before the server's (re)start is never seen."""
        deadline = time.monotonic() + timeout_s
        while True:
            future = send()
            if wait_until(future.done, min(5.0, timeout_s), step=self.spin):
                return future.result()
            assert time.monotonic() < deadline, 'no answer from the graph'

    def parameters(self, fqn: str, names: list[str], timeout_s: float = 30.0) -> dict[str, Any]:
        if fqn not in self._parameter_clients:
            self._parameter_clients[fqn] = AsyncParameterClient(self.node, fqn)
        client = self._parameter_clients[fqn]
        assert client.wait_for_services(timeout_sec=timeout_s), f'{fqn} offers no parameter services'
        response = self._call(lambda: client.get_parameters(names), timeout_s)
        return {name: parameter_value_to_python(value) for name, value in zip(names, response.values)}

    def trigger(self, service: str, timeout_s: float = 30.0) -> Trigger.Response:
        client = self.node.create_client(Trigger, service)
        try:
            assert client.wait_for_service(timeout_sec=timeout_s), f'no service {service}'
            return self._call(lambda: client.call_async(Trigger.Request()), timeout_s)
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
