"""The environment every node process runs in, however it is started: DDS on this host only.

vss.launch.py and vss-bringup start nodes with it, and kaiserslautern_vss.ros.node_main
applies it before rclpy starts (``ros2 run``, ``python -m``), so a node started by hand is
as separated from the network as one the launch file starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kaiserslautern_vss.paths import fastdds_profile

PROFILE = 'FASTDDS_DEFAULT_PROFILES_FILE'
DISCOVERY_RANGE = 'ROS_AUTOMATIC_DISCOVERY_RANGE'
#: set where the caller's environment sets nothing
_DEFAULTS = {'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp', 'PYTHONUNBUFFERED': '1'}


def node_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a node process needs, given the caller's environment ``base`` (default:
    this process's).

    The package's Fast DDS profile (config/fastdds_localhost.xml) unless ``base`` names another.
    With the package's profile the discovery range is ``SYSTEM_DEFAULT``, whatever ``base``
    says: the profile keeps discovery and data on 127.0.0.1, and rmw_fastrtps's ``LOCALHOST``
    range would add a UDP transport bound to every interface. With another profile the
    range is the caller's, ``LOCALHOST`` if unset.
    """
    base = os.environ if base is None else base
    profile = base.get(PROFILE) or str(fastdds_profile())
    own_profile = Path(profile).resolve() == fastdds_profile().resolve()
    return {
        **{name: base.get(name) or default for name, default in _DEFAULTS.items()},
        PROFILE: profile,
        DISCOVERY_RANGE: 'SYSTEM_DEFAULT' if own_profile else base.get(DISCOVERY_RANGE) or 'LOCALHOST',
    }


def apply_node_environment() -> None:
    """Put :func:`node_environment` into this process's environment (before rclpy.init)."""
    os.environ.update(node_environment())
