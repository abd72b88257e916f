"""When a node process is started again: one policy for vss.launch.py and vss-bringup.

A crash is restarted; an end the node chose is not. A camera whose file source finished
exits 0 (restarting it would replay the file and record the same incident again), a node
that refuses its configuration exits :data:`EXIT_BAD_CONFIG` (restarting it fails the same
way, forever). Signals that ask a process to stop are no crash either: the same set that
systemd's ``Restart=on-failure`` treats as a clean stop.
"""

from __future__ import annotations

import signal

#: exit status of a node that refuses its configuration (kaiserslautern_vss.ros.node_main)
EXIT_BAD_CONFIG = 2
RESPAWN_DELAY_S = 2.0
_STOP_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})


def should_respawn(returncode: int) -> bool:
    """True when a process that ended with ``returncode`` (negative: killed by that signal,
    as subprocess and asyncio report it) crashed and is to be started again."""
    if returncode in (0, EXIT_BAD_CONFIG):
        return False
    return not (returncode < 0 and -returncode in _STOP_SIGNALS)
