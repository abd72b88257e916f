"""Run a NodeSpec graph as OS processes (the launch_ros stand-in), planned as launch plans them.

Used by vss-bringup, vss-demo and the integration tests, so the processes the tests
start are the ones an operator starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kaiserslautern_vss.bringup.graph import group_command_arguments, group_executable, parameters_yaml, process_groups
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.process_hygiene import GraphLock, ParameterFiles
from kaiserslautern_vss.bringup.respawn import RESPAWN_DELAY_S, AfterExit, after_exit
from kaiserslautern_vss.ros.dds_environment import node_environment
from kaiserslautern_vss.ros.supervisor import SUPERVISOR_PID


def ros_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment for node processes: ``base`` (default: this process's) with
    :func:`~kaiserslautern_vss.ros.dds_environment.node_environment`."""
    env = dict(os.environ if base is None else base)
    return {**env, **node_environment(env)}


@dataclass(frozen=True)
class ProcessPlan:
    """One OS process of the graph, as both ``ros2 launch`` and vss-bringup start it."""

    executable: str
    nodes: tuple[NodeSpec, ...]
    #: everything after the executable: node names, --ros-args, the parameters file, log level
    arguments: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.nodes[0].fqn if len(self.nodes) == 1 else self.executable


def plan_processes(specs: list[NodeSpec], params: ParameterFiles, log_level: str = 'info') -> list[ProcessPlan]:
    """The graph's processes, each with its nodes' parameters written to a file in ``params``:
    a --params-file carries every value (empty lists too) the same way to every front end."""
    plans = []
    for group in process_groups(specs):
        executable = group_executable(group)
        params_file = params.write(f'{group[0].fqn.strip("/").replace("/", "__")}.yaml', parameters_yaml(*group))
        plans.append(ProcessPlan(executable, tuple(group), (
            *group_command_arguments(group), '--params-file', params_file, '--log-level', log_level)))
    return plans


@dataclass
class NodeProcess:
    plan: ProcessPlan
    command: list[str]
    process: subprocess.Popen | None = None
    exited_at: float | None = None
    restarts: int = 0

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()


@dataclass
class GraphProcesses:
    """Start, watch (respawning what crashed, see :mod:`~kaiserslautern_vss.bringup.respawn`)
    and stop a graph. The nodes die with this process however it ends (ros.supervisor); with a
    ``lock`` they hold it until the last has ended (bringup.process_hygiene)."""

    specs: list[NodeSpec]
    log_level: str = 'info'
    env: dict[str, str] = field(default_factory=ros_environment)
    respawn: bool = True
    cwd: Path | None = None
    lock: GraphLock | None = None
    nodes: list[NodeProcess] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._params = ParameterFiles()
        for plan in plan_processes(self.specs, self._params, self.log_level):
            command = [sys.executable, '-m', f'kaiserslautern_vss.nodes.{plan.executable}', *plan.arguments]
            self.nodes.append(NodeProcess(plan, command))

    def start(self) -> None:
        for node in self.nodes:
            self._spawn(node)

    def _spawn(self, node: NodeProcess) -> None:
        held = () if self.lock is None or self.lock.fd is None else (self.lock.fd,)
        node.process = subprocess.Popen(node.command, env={**self.env, SUPERVISOR_PID: str(os.getpid())},
                                        cwd=self.cwd, pass_fds=held)
        node.exited_at = None

    def poll(self) -> None:
        """Respawn, after a delay, the processes that crashed."""
        now = time.monotonic()
        for node in self.nodes:
            code = node.returncode
            if code is None or not self.respawn or after_exit(code) is not AfterExit.RESPAWN:
                continue
            if node.exited_at is None:
                node.exited_at = now
                print(f'[vss-bringup] {node.plan.name} exited with {code}; respawning in '
                      f'{RESPAWN_DELAY_S:.0f} s', file=sys.stderr, flush=True)
            elif now - node.exited_at >= RESPAWN_DELAY_S:
                node.restarts += 1
                self._spawn(node)

    def of_executable(self, executable: str) -> list[NodeProcess]:
        return [node for node in self.nodes if node.plan.executable == executable]

    def failed_at_startup(self) -> list[NodeProcess]:
        """Processes that refused their configuration: no point in waiting for them."""
        return [node for node in self.nodes
                if node.returncode is not None and after_exit(node.returncode) is AfterExit.STOP_GRAPH]

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
                print(f'[vss-bringup] {node.plan.name} did not stop in {timeout_s:.0f} s; killing',
                      file=sys.stderr, flush=True)
                node.process.kill()
                node.process.wait()
        self._params.close()
        return {node.plan.name: node.returncode for node in self.nodes}

    def __enter__(self) -> GraphProcesses:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
