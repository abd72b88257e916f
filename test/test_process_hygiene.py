"""Process hygiene: a SIGKILLed vss-bringup leaves no node process, no parameter folder and no
Fast DDS shared memory behind, and its restart never runs a second copy of a node."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import wait_until
from launched_graph import GraphProbe

from kaiserslautern_vss.bringup.process_hygiene import ParameterFiles
from kaiserslautern_vss.ros.supervisor import SUPERVISOR_PID

pytestmark = pytest.mark.ros

SHM = Path('/dev/shm')


def start_bringup(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup',
                             '--record-root', str(tmp_path / 'bags'), '--log-level', 'warn'])


def node_processes(bringup: subprocess.Popen) -> list[psutil.Process]:
    return [p for p in psutil.Process(bringup.pid).children(recursive=True) if alive(p)]


def alive(process: psutil.Process) -> bool:
    """Running, not a zombie (an orphan's exit status may never be collected here)."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def shared_memory_of(processes: list[psutil.Process]) -> set[Path]:
    """The Fast DDS segments these processes have mapped."""
    return {Path(m.path) for p in processes for m in p.memory_maps()
            if m.path.startswith(str(SHM / 'fastdds_'))}


def stale(segment: Path) -> bool:
    """Left behind: the segment is there, but nobody holds its lock file (Fast DDS's own test)."""
    lock = segment.with_name(segment.name + '_el')
    if not segment.exists() or not lock.exists():
        return False
    with open(lock, 'ab') as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(file, fcntl.LOCK_UN)
        return True


def own_segments(process: psutil.Process) -> set[Path]:
    """The segments ``process`` created: it holds their lock files open."""
    return {Path(f.path[:-len('_el')]) for f in process.open_files()
            if f.path.startswith(str(SHM / 'fastdds_')) and f.path.endswith('_el') and 'port' not in f.path}


def params_files(process: psutil.Process) -> list[str]:
    command = process.cmdline()
    return [command[i + 1] for i, arg in enumerate(command) if arg == '--params-file']


def test_parameter_files_live_in_memory_only() -> None:
    params = ParameterFiles()
    path = params.write('node.yaml', 'a: 1\n')
    assert path.startswith(f'/proc/{os.getpid()}/fd/')
    assert Path(path).read_text() == 'a: 1\n'  # any reader, as often as a respawn needs it
    params.close()
    assert not Path(path).exists()


def test_sigkill_of_bringup_leaves_no_process_folder_or_shared_memory(tmp_path, rclpy_context) -> None:
    bringup = start_bringup(tmp_path)
    probe = GraphProbe(rclpy_context)
    try:
        assert wait_until(lambda: {'/vss/privacy', '/vss/event_manager'} <= set(probe.node_names())
                          or bringup.poll() is not None, 120, step=probe.spin)
        assert bringup.poll() is None, 'the graph did not come up'
        nodes = node_processes(bringup)
        assert len(nodes) == 2  # vision pipeline, event manager
        assert all(node.environ()[SUPERVISOR_PID] == str(bringup.pid) for node in nodes)
        params = [path for node in nodes for path in params_files(node)]
        assert len(params) == 2 and all(path.startswith(f'/proc/{bringup.pid}/fd/') for path in params)
        segments = shared_memory_of(nodes)
        assert segments, 'no Fast DDS shared memory found: nothing was checked'

        bringup.send_signal(signal.SIGKILL)
        bringup.wait()
        restarted = start_bringup(tmp_path)  # at once, while the old nodes are still shutting down
        try:
            overlaps = []

            def restarted_up() -> bool:
                new = node_processes(restarted)
                if new and any(alive(node) for node in nodes):
                    overlaps.append([node.pid for node in new])
                return len(new) == 2 or restarted.poll() is not None
            assert wait_until(restarted_up, 120)
            assert restarted.poll() is None
            assert overlaps == [], 'the restart ran nodes beside the old ones'
            assert [node.pid for node in nodes if alive(node)] == [], 'orphans after SIGKILL of vss-bringup'
            assert [path for path in params if os.path.exists(path)] == []  # nothing on disk
            # The nodes ended on SIGTERM and released their segments; whatever a node could not
            # release, the restart removed (fastdds shm clean). Segments still there are in use
            # (the shared port segments, the restarted graph's, this test's).
            assert [s for s in segments if stale(s)] == []
        finally:
            restarted.send_signal(signal.SIGINT)
            assert restarted.wait(timeout=90) == 0
    finally:
        probe.close()
        if bringup.poll() is None:
            bringup.kill()


def test_a_second_bringup_on_the_same_domain_is_refused_while_the_first_runs(tmp_path) -> None:
    first = start_bringup(tmp_path / 'first')
    try:
        assert wait_until(lambda: len(node_processes(first)) == 2 or first.poll() is not None, 120)
        second = subprocess.run([sys.executable, '-c', 'import kaiserslautern_vss.tools.bringup as b; '
                                 'b.PREVIOUS_GRAPH_TIMEOUT_S = 0.5; raise SystemExit(b.main([]))'],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert 'another graph runs on this DDS domain' in second.stderr
        assert len(node_processes(first)) == 2
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=90) == 0


def test_the_shared_memory_of_a_killed_node_is_removed_when_the_graph_stops(tmp_path) -> None:
    bringup = start_bringup(tmp_path)
    try:
        def event_manager() -> psutil.Process | None:
            return next((p for p in node_processes(bringup) if 'nodes.event_manager' in ' '.join(p.cmdline())), None)
        assert wait_until(lambda: event_manager() and own_segments(event_manager()), 120)
        killed = event_manager()
        killed_segments = own_segments(killed)
        killed.kill()  # cannot release anything; vss-bringup respawns it
        killed.wait(timeout=30)
        assert all(stale(segment) for segment in killed_segments)
        assert wait_until(lambda: event_manager() and own_segments(event_manager()), 120)  # respawned
    finally:
        bringup.send_signal(signal.SIGINT)
        assert bringup.wait(timeout=90) == 0
    assert [segment for segment in killed_segments if segment.exists()] == []
