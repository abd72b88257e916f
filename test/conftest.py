"""Shared test fixtures: ../shared data, a private DDS domain, spinning with a deadline."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kaiserslautern_vss.bringup.isolation import isolate_ros_domain

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared, or where VSS_SHARED_DIR points as for the nodes (VSS_SHARED_DIR=/nonexistent: a fresh machine)
SHARED = Path(os.environ.get('VSS_SHARED_DIR') or REPO_ROOT.parent / 'shared')

# DDS discovery never leaves this host, and this run never sees another run's nodes.
isolate_ros_domain()
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(REPO_ROOT / 'config' / 'fastdds_localhost.xml'))  # the venv is an ament prefix
# Node subprocesses import this checkout, not whatever else is installed.
os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get('PYTHONPATH')]))


def shared_file(relative: str) -> Path:
    """A file from ../shared, or skip the test with where to put it."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f'{path} is missing: put the project\'s shared data folder next to the checkout')
    return path


def wait_until(predicate: Callable[[], bool], timeout_s: float, step: Callable[[], None] | None = None,
               interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` (running ``step`` between polls, e.g. a spin_once) until true or timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        if step is not None:
            step()
        else:
            time.sleep(interval_s)
    return predicate()


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context for in-process nodes, shut down afterwards."""
    import rclpy
    from rclpy.context import Context
    context = Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
