"""What a graph leaves behind, however its supervisor (vss-bringup, ros2 launch) ends: nothing.

- Node processes die with the process that started them (ros.supervisor, ``PR_SET_PDEATHSIG``),
  so a SIGKILLed supervisor leaves no orphan to run beside the copy its restart starts.
- Parameter files live in memory of the supervisor (memfd), reached by the nodes through
  ``/proc/<pid>/fd/<n>``: they vanish with it, and no ``/tmp`` folder outlives a SIGKILL.
- One graph per DDS domain: vss-bringup holds a lock that its node processes inherit, so a
  restart waits until every node of the previous graph has ended.
- Fast DDS shared-memory segments whose owner has gone (a SIGKILLed node cannot remove its
  own) are removed by Fast DDS's own cleaner, which removes only segments nobody holds locked.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHM_CLEAN_TIMEOUT_S = 30.0


class ParameterFiles:
    """Parameter files held in this process's memory; a path is valid while it runs."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def write(self, name: str, text: str) -> str:
        fd = os.memfd_create(name)
        os.write(fd, text.encode())
        self._fds.append(fd)
        return f'/proc/{os.getpid()}/fd/{fd}'

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


class GraphBusy(RuntimeError):
    """Another graph (or the nodes of an ended one) still runs on this DDS domain."""


class GraphLock:
    """One graph per DDS domain on this host. The lock's file descriptor is passed to every node
    process (``pass_fds``): the lock is held until the supervisor and all its nodes have ended."""

    def __init__(self, domain_id: str, lock_dir: Path | None = None) -> None:
        self.path = Path(lock_dir or tempfile.gettempdir()) / f'kaiserslautern_vss-graph-domain-{domain_id or 0}.lock'
        self.fd: int | None = None

    def acquire(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` (for the nodes of a killed supervisor to finish); else GraphBusy."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise GraphBusy(f'another graph runs on this DDS domain ({self.path} is locked); '
                                    'stop it first') from None
                time.sleep(0.2)
        os.set_inheritable(fd, True)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def clean_stale_shared_memory() -> str:
    """Run Fast DDS's ``fastdds shm clean`` (installed with the Fast DDS wheels); its summary,
    or why it did not run."""
    tool = shutil.which('fastdds', path=f'{Path(sys.executable).parent}{os.pathsep}{os.environ.get("PATH", "")}')
    if tool is None:
        return 'fastdds tool not installed; stale shared-memory segments not cleaned'
    try:
        done = subprocess.run([tool, 'shm', 'clean'], capture_output=True, text=True, timeout=SHM_CLEAN_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f'fastdds shm clean failed: {error}'
    return ' '.join(done.stdout.split()) or done.stderr.strip()
