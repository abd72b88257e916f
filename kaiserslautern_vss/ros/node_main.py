"""Process entry point shared by all nodes: init, spin, clean shutdown, clear startup errors."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

from kaiserslautern_vss.parameters.spec import ParameterError
from kaiserslautern_vss.ros.dds_environment import apply_node_environment
from kaiserslautern_vss.ros.exit_codes import EXIT_BAD_CONFIG


class StartupError(RuntimeError):
    """A node cannot start (missing model, unreadable rules, ...); the message says why."""


def run_node(make_node: Callable[[], Node | Sequence[Node]], args: list[str] | None = None,
             threads: int = 1, executor: Callable[[], Executor] | None = None) -> int:
    """Run one node (or several in one process) until shutdown; returns the process exit status.

    ``executor`` makes the executor (default: single-threaded, or multi-threaded with ``threads``).
    """
    apply_node_environment()  # DDS on this host only, however the node was started
    rclpy.init(args=args)
    nodes: list[Node] = []
    try:
        made = make_node()
        nodes = [made] if isinstance(made, Node) else list(made)
        if executor is None:
            executor = partial(MultiThreadedExecutor, num_threads=threads) if threads > 1 else SingleThreadedExecutor
        spinner = executor()
        for node in nodes:
            spinner.add_node(node)
        spinner.spin()
    except (ParameterError, StartupError) as error:
        print(f'[FATAL] {error}', file=sys.stderr, flush=True)
        return EXIT_BAD_CONFIG
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Ctrl-C reaches every process of the terminal and launch then forwards another SIGINT:
        # the second must not cut the teardown (bags are closed here) short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
