"""What happens when a node process ends: one policy for vss.launch.py and vss-bringup.

A crash is restarted (after :data:`RESPAWN_DELAY_S`). An end the node chose is not: a camera
whose file source finished exits 0 (restarting it would replay the file and record the same
incident again). A node that refuses its configuration exits :data:`EXIT_BAD_CONFIG`:
restarting it would fail the same way forever, and the rest of the graph would run on without
it (nothing recorded, say), so the whole graph stops with the node's message. Signals that
ask a process to stop are no crash either: the set systemd's ``Restart=on-failure`` treats
as a clean stop.
"""

from __future__ import annotations

import signal
from enum import Enum

from kaiserslautern_vss.ros.exit_codes import EXIT_BAD_CONFIG

RESPAWN_DELAY_S = 2.0
_STOP_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})


class AfterExit(Enum):
    RESPAWN = 'respawn'
    STOP_GRAPH = 'stop the graph'
    LEAVE = 'leave it ended'


def after_exit(returncode: int) -> AfterExit:
    """What to do about a process that ended with ``returncode`` (negative: killed by that
    signal, as subprocess and asyncio report it)."""
    if returncode == EXIT_BAD_CONFIG:
        return AfterExit.STOP_GRAPH
    if returncode == 0 or (returncode < 0 and -returncode in _STOP_SIGNALS):
        return AfterExit.LEAVE
    return AfterExit.RESPAWN
