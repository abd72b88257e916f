"""The start arguments of vss.launch.py and vss-bringup: one definition, one derivation.

Both front ends declare these arguments and hand their values to :func:`derive_graph`,
so ``ros2 launch kaiserslautern_vss vss.launch.py cameras:=cam01`` and
``vss-bringup --cameras cam01`` start the same nodes with the same parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kaiserslautern_vss.bringup.graph import config_sections, load_graph
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.paths import share_dir

#: the parameter rclpy declares in every node: run on /clock instead of the system clock
SIM_TIME = 'use_sim_time'
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
#: the executables whose record_root the ``record_root`` start argument sets
RECORD_ROOT_NODES = ('event_manager', 'operator_console')


@dataclass(frozen=True)
class StartArgument:
    name: str
    default: str
    description: str


def default_config() -> Path:
    return share_dir() / 'config' / 'vss.yaml'


START_ARGUMENTS = (
    StartArgument('config', '', 'Graph config YAML (ros__parameters keyed by node); '
                  'empty: the package\'s config/vss.yaml'),
    StartArgument('cameras', '', 'Comma-separated camera subset, e.g. cam01,cam02; empty: every configured camera'),
    StartArgument('record_root', '', 'Directory for incident bags; empty: the config\'s record_root'),
    StartArgument('log_level', 'info', f'ROS log level: {", ".join(LOG_LEVELS)}'),
    StartArgument('use_sim_time', 'false', 'true: every node runs on /clock (vss-replay --clock)'),
    StartArgument('camera_drivers', 'true', 'false: start no camera drivers (images come from vss-replay)'),
)


def parse_flag(name: str, value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    if value.strip().lower() in ('true', '1', 'yes'):
        return True
    if value.strip().lower() in ('false', '0', 'no'):
        return False
    raise ValueError(f'{name}: expected true or false, got {value!r}')


def derive_graph(config: str | Path = '', cameras: str = '', record_root: str = '',
                 use_sim_time: bool = False, camera_drivers: bool = True,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[NodeSpec]:
    """The validated node specs for these start arguments (raises GraphConfigError)."""
    config_path = Path(config) if config else default_config()
    if record_root:  # validated with the rest, so key files inside this record root are refused too
        overrides = _with_record_root(config_path, str(Path(record_root).expanduser().resolve()), overrides or {})
    specs = load_graph(config_path, cameras=[c.strip() for c in cameras.split(',') if c.strip()] or None,
                       overrides=overrides)
    derived = []
    for spec in specs:
        if spec.executable == 'camera_driver' and not camera_drivers:
            continue
        parameters = dict(spec.parameters)
        if use_sim_time:
            parameters[SIM_TIME] = True
        derived.append(replace(spec, parameters=parameters))
    return derived


def _with_record_root(config_path: Path, record_root: str,
                      overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``overrides`` plus ``record_root`` for every configured node that has one (the console shows them)."""
    merged = {fqn: dict(values) for fqn, values in overrides.items()}
    for fqn in config_sections(config_path):
        if fqn.rsplit('/', 1)[-1] in RECORD_ROOT_NODES:
            merged[fqn] = {**merged.get(fqn, {}), 'record_root': record_root}
    return merged
