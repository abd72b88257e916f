"""vss-bringup: start the configured graph as processes where launch_ros is not installed.

    vss-bringup [--config config/vss.yaml] [--cameras cam01,cam02] [--record-root DIR]
                [--set /vss/detector.score_threshold=0.4] [--log-level info]
                [--use-sim-time] [--no-camera-drivers] [--check]

The arguments are those of launch/vss.launch.py (kaiserslautern_vss.bringup.arguments).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from kaiserslautern_vss.bringup.arguments import LOG_LEVELS, START_ARGUMENTS, default_config, derive_graph
from kaiserslautern_vss.bringup.graph import GraphConfigError
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.process_hygiene import GraphBusy, GraphLock, clean_stale_shared_memory
from kaiserslautern_vss.bringup.processes import GraphProcesses, ros_environment
from kaiserslautern_vss.ros.exit_codes import EXIT_BAD_CONFIG

#: how long a start waits for the nodes of a previous graph (its supervisor killed) to end
PREVIOUS_GRAPH_TIMEOUT_S = 30.0
_HELP = {argument.name: argument.description for argument in START_ARGUMENTS}


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', type=Path, default=default_config(), help=_HELP['config'])
    parser.add_argument('--cameras', default='', help=_HELP['cameras'])
    parser.add_argument('--record-root', default='', help=_HELP['record_root'])
    parser.add_argument('--set', action='append', default=[], metavar='NODE.PARAM=VALUE',
                        help='override a parameter, e.g. /vss/cam01/camera_driver.url=video.mp4')
    parser.add_argument('--log-level', default='info', choices=LOG_LEVELS, help=_HELP['log_level'])
    parser.add_argument('--use-sim-time', action='store_true', help=_HELP['use_sim_time'])
    parser.add_argument('--no-camera-drivers', action='store_true', help=_HELP['camera_drivers'])


def parse_overrides(assignments: list[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        target, sep, value = assignment.partition('=')
        fqn, dot, name = target.rpartition('.')
        if not sep or not dot or not fqn.startswith('/'):
            raise GraphConfigError(f'--set {assignment!r}: expected /node/fqn.parameter=value')
        overrides.setdefault(fqn, {})[name] = yaml.safe_load(value)
    return overrides


def graph_from_arguments(args: argparse.Namespace) -> list[NodeSpec]:
    return derive_graph(args.config, cameras=args.cameras, record_root=args.record_root,
                        use_sim_time=args.use_sim_time, camera_drivers=not args.no_camera_drivers,
                        overrides=parse_overrides(args.set))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-bringup', description=__doc__.split('\n')[0])
    add_graph_arguments(parser)
    parser.add_argument('--check', action='store_true',
                        help='check the whole site configuration and exit (0: valid, 2: not); starts nothing')
    args = parser.parse_args(argv)
    try:
        specs = graph_from_arguments(args)
    except GraphConfigError as error:
        print(f'vss-bringup: {error}', file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.check:
        print(f'vss-bringup: {args.config}: valid ({len(specs)} nodes)')
        return 0
    env = ros_environment()
    lock = GraphLock(env.get('ROS_DOMAIN_ID', ''))
    try:
        lock.acquire(PREVIOUS_GRAPH_TIMEOUT_S)
        print(f'vss-bringup: {clean_stale_shared_memory()}', flush=True)
    except GraphBusy as error:
        print(f'vss-bringup: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # stopped before any node started
        return 0
    try:
        return _run(GraphProcesses(specs, log_level=args.log_level, env=env, lock=lock), specs)
    finally:
        lock.release()
        print(f'vss-bringup: {clean_stale_shared_memory()}', flush=True)


def _run(graph: GraphProcesses, specs: list[NodeSpec]) -> int:
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    graph.start()
    print(f'vss-bringup: started {len(specs)} nodes: {", ".join(s.fqn for s in specs)}', flush=True)
    while not stopping and not all(node.returncode is not None for node in graph.nodes):
        graph.poll()
        failed = graph.failed_at_startup()
        if failed:  # restarting it would fail the same way (bringup/respawn.py)
            print(f'vss-bringup: {", ".join(n.plan.name for n in failed)} refused its '
                  'configuration (see [FATAL] above); stopping the graph', file=sys.stderr, flush=True)
            graph.stop()
            return EXIT_BAD_CONFIG
        time.sleep(0.2)
    codes = graph.stop()
    return 0 if all(code in (0, None, -signal.SIGINT) for code in codes.values()) else 1


if __name__ == '__main__':
    raise SystemExit(main())
