"""How many inference sessions and threads a machine can take without fighting itself.

On a small edge computer the cores are shared by ten decoders, the masking and the event
manager. An ONNX Runtime session with several intra-op threads then pays for waking and
synchronising its pool on every operator (and, by default, spins while waiting), for no
gain in throughput. So many cameras get parallel single-thread sessions, one per core;
only where cores outnumber cameras does a session get several threads (for latency).
"""

from __future__ import annotations

import os

#: ONNX Runtime session config entries that stop idle pool threads from busy-waiting
NO_SPINNING = {'session.intra_op.allow_spinning': '0', 'session.inter_op.allow_spinning': '0'}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a cgroup cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # platforms without sched_getaffinity
        return os.cpu_count() or 1


def intra_op_threads_for(cameras: int, cores: int | None = None) -> int:
    """Threads per session: the cores left per camera, at least one."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, cameras))


def session_count_for(intra_op_threads: int, cameras: int | None = None, cores: int | None = None) -> int:
    """Sessions: one per ``intra_op_threads`` cores, at least one, no more than cameras."""
    cores = available_cores() if cores is None else cores
    sessions = max(1, cores // max(1, intra_op_threads))
    return sessions if cameras is None else max(1, min(sessions, cameras))
