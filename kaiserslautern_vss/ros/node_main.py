"""Process entry point shared by all nodes: init, spin, clean shutdown, clear startup errors."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

from kaiserslautern_vss.parameters.spec import ParameterError
from kaiserslautern_vss.ros.dds_environment import apply_node_environment
from kaiserslautern_vss.ros.exit_codes import EXIT_BAD_CONFIG
from kaiserslautern_vss.ros.supervisor import die_with_supervisor

#: how long the teardown waits for callbacks still running
SHUTDOWN_TIMEOUT_S = 10.0


class StartupError(RuntimeError):
    """A node cannot start (missing model, unreadable rules, ...); the message says why."""


def run_node(make_node: Callable[[], Node | Sequence[Node]], args: list[str] | None = None,
             threads: int = 1, executor: Callable[[], Executor] | None = None) -> int:
    """Run one node (or several in one process) until shutdown; returns the process exit status.

    ``executor`` makes the executor (default: single-threaded, or multi-threaded with ``threads``).
    """
    die_with_supervisor()
    apply_node_environment()  # DDS on this host only, however the node was started
    rclpy.init(args=args)
    nodes: list[Node] = []
    spinner: Executor | None = None
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
    except RCLError:
        # SIGINT shuts the context down from the signal handler, possibly while the executor
        # builds its next wait set ("the given context is not valid"): that is the shutdown
        # asked for, not a failure.
        if rclpy.ok():
            raise
    finally:
        # Ctrl-C reaches every process of the terminal and launch then forwards another SIGINT:
        # the second must not cut the teardown (bags are closed here) short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if spinner is not None:
            spinner.shutdown(timeout_sec=SHUTDOWN_TIMEOUT_S)  # no callback runs on a node being destroyed
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
