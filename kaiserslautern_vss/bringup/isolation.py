"""Give each local run (test session, benchmark) a DDS domain no other local run uses."""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
from pathlib import Path
from typing import IO

#: Fast DDS maps domain ids to ports; 100..199 stays clear of the default 0 and site ids.
DOMAIN_RANGE = range(100, 200)
_held: list[IO] = []  # locks live as long as the process


def reserve_domain_id(lock_dir: Path | None = None) -> int:
    """Lock a free domain id for this process (released when it exits) and return it."""
    directory = Path(lock_dir or tempfile.gettempdir())
    for domain_id in random.sample(DOMAIN_RANGE, len(DOMAIN_RANGE)):
        lock = open(directory / f'kaiserslautern_vss-ros-domain-{domain_id}.lock', 'w')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held.append(lock)
        return domain_id
    raise RuntimeError(f'every ROS_DOMAIN_ID in {DOMAIN_RANGE.start}..{DOMAIN_RANGE.stop - 1} is in use')


def isolate_ros_domain() -> int:
    """Put this process (and the nodes it starts) on a reserved domain, discovery on this
    host only; an inherited ROS_DOMAIN_ID (e.g. a developer shell's) is replaced."""
    domain_id = reserve_domain_id()
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ['ROS_DOMAIN_ID'] = str(domain_id)
    return domain_id
