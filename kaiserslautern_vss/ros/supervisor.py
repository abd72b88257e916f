"""A node process ends with the process that started it (vss-bringup, ros2 launch), however
that one ends: a SIGKILLed supervisor leaves no orphan behind to run beside the copy its
restart starts."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

#: set by vss-bringup and vss.launch.py to their own pid for the node processes they start
SUPERVISOR_PID = 'VSS_SUPERVISOR_PID'
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_supervisor() -> None:
    """SIGTERM this process (a clean shutdown: bags are closed) when the process that started it
    ends. The supervisor may already have ended before this runs: then this process ends here."""
    if not sys.platform.startswith('linux'):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG) failed')
    supervisor = os.environ.get(SUPERVISOR_PID)
    if supervisor and os.getppid() != int(supervisor):
        print(f'[FATAL] the process that started this node (pid {supervisor}) has ended', file=sys.stderr,
              flush=True)
        raise SystemExit(1)
