"""Periodic /diagnostics status for a node, from a callback that reports its counters (and
the messages its payload guard dropped)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from kaiserslautern_vss.ros.payload_guard import PayloadGuard

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class DiagnosticsReporter:
    """Publishes one DiagnosticStatus per entry that ``collect`` returns, every ``period_s``."""

    def __init__(self, node: Node,
                 collect: Callable[[], Mapping[str, tuple[bytes, str, Mapping[str, object]]]],
                 period_s: float = 1.0, guard: PayloadGuard | None = None) -> None:
        self._node = node
        self._collect = collect if guard is None else lambda: {**guard.diagnostics(), **collect()}
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = node.create_timer(period_s, self._publish)

    def _publish(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        for name, (level, message, values) in self._collect().items():
            msg.status.append(DiagnosticStatus(
                level=level, name=f'{self._node.get_name()}: {name}', message=message,
                hardware_id=name, values=[KeyValue(key=k, value=str(v)) for k, v in values.items()]))
        self._pub.publish(msg)
