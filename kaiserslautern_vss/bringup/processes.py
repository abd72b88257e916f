"""Run a NodeSpec graph as one OS process per node (the launch_ros stand-in).

Used by vss-bringup, vss-demo and the integration tests, so the processes the tests
start are the ones an operator starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kaiserslautern_vss.bringup.graph import NodeSpec, group_command_arguments, parameters_yaml, process_groups
from kaiserslautern_vss.paths import fastdds_profile

RESPAWNED = frozenset({'camera_driver'})
RESPAWN_DELAY_S = 2.0


def ros_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for node processes: DDS discovery limited to this host unless set."""
    env = dict(os.environ if base is None else base)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(fastdds_profile()))
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env


@dataclass
class NodeProcess:
    spec: NodeSpec
    command: list[str]
    process: subprocess.Popen | None = None
    exited_at: float | None = None
    restarts: int = 0

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()


@dataclass
class GraphProcesses:
    """Start, watch (respawning crashed camera drivers) and stop a graph."""

    specs: list[NodeSpec]
    log_level: str = 'info'
    env: dict[str, str] = field(default_factory=ros_environment)
    respawn: bool = True
    cwd: Path | None = None
    group_cameras: bool = False  # all camera drivers in one process
    nodes: list[NodeProcess] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._param_dir = tempfile.TemporaryDirectory(prefix='vss-params-')
        for group in process_groups(self.specs, self.group_cameras):
            spec = group[0]
            params_file = Path(self._param_dir.name) / f'{spec.fqn.strip("/").replace("/", "__")}.yaml'
            params_file.write_text(parameters_yaml(*group))
            command = [sys.executable, '-m', f'kaiserslautern_vss.nodes.{spec.executable}',
                       *group_command_arguments(group),
                       '--params-file', str(params_file), '--log-level', self.log_level]
            self.nodes.append(NodeProcess(spec, command))

    def start(self) -> None:
        for node in self.nodes:
            self._spawn(node)

    def _spawn(self, node: NodeProcess) -> None:
        node.process = subprocess.Popen(node.command, env=self.env, cwd=self.cwd)
        node.exited_at = None

    def poll(self) -> None:
        """Respawn camera drivers that crashed (a finished file source exits 0 and stays down)."""
        now = time.monotonic()
        for node in self.nodes:
            code = node.returncode
            if code is None or code == 0 or not self.respawn or node.spec.executable not in RESPAWNED:
                continue
            if node.exited_at is None:
                node.exited_at = now
                print(f'[vss-bringup] {node.spec.fqn} exited with {code}; respawning in '
                      f'{RESPAWN_DELAY_S:.0f} s', file=sys.stderr, flush=True)
            elif now - node.exited_at >= RESPAWN_DELAY_S:
                node.restarts += 1
                self._spawn(node)

    def of_executable(self, executable: str) -> list[NodeProcess]:
        return [node for node in self.nodes if node.spec.executable == executable]

    def failed_at_startup(self) -> list[NodeProcess]:
        """Nodes that exited with the bad-config status (2): no point in waiting for them."""
        return [node for node in self.nodes if node.returncode == 2]

    def stop(self, timeout_s: float = 15.0) -> dict[str, int | None]:
        """SIGINT every node (they flush bags and close cleanly), SIGKILL what hangs."""
        for node in self.nodes:
            if node.process is not None and node.returncode is None:
                node.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f'[vss-bringup] {node.spec.fqn} did not stop in {timeout_s:.0f} s; killing',
                      file=sys.stderr, flush=True)
                node.process.kill()
                node.process.wait()
        self._param_dir.cleanup()
        return {node.spec.fqn: node.returncode for node in self.nodes}

    def __enter__(self) -> GraphProcesses:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
