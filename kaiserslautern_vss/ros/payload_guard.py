"""Subscriptions and services that take whatever anyone on the bus sends.

An exception in a callback ends rclpy's spin, and with it the node process: one forged message
on a latched topic would crash every respawn of the node again. Callbacks made here drop what
they cannot handle instead: malformed CDR, absurd sizes, deep nesting, wrong types. Each drop
is counted per topic and reason (the exception's type) for /diagnostics and logged, throttled
per topic and reason (log_throttle). Subscriptions take the serialized message and
deserialize it here, so even a payload that is not CDR of the topic's type is counted, not
silently discarded by the middleware. rclpy's own services (parameters, type descriptions)
are guarded too: a SetParameters request with an unknown parameter type raises in rclpy.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from rclpy.subscription import Subscription

from kaiserslautern_vss.log_throttle import ReasonThrottle

UNDECODABLE = 'undecodable'
DETAIL_CHARS = 200  # of the exception's text in a log line: a payload can make that text huge


class PayloadGuard:
    """Makes one node's subscriptions and services outlive any payload; made right after the
    node, it guards the services rclpy created for it."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._throttle = ReasonThrottle()
        self._dropped: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        for service in node.services:
            service.callback = self.guarded(service.srv_name, service.callback, fallback=_default_response)

    def subscribe(self, msg_type: type, topic: str, callback: Callable[[Any], None], qos: QoSProfile | int,
                  raw: bool = False, **kwargs: Any) -> Subscription:
        """Like ``node.create_subscription``; ``callback`` gets the message (``raw``: its CDR bytes)."""
        def deliver(data: bytes) -> None:
            if raw:
                callback(data)
                return
            try:
                message = deserialize_message(data, msg_type)
            except Exception as error:  # noqa: BLE001 - rclpy raises RMWError, UnicodeDecodeError, ...
                self.drop(topic, UNDECODABLE, error)
                return
            callback(message)
        return self._node.create_subscription(msg_type, topic, self.guarded(topic, deliver), qos, raw=True,
                                              **kwargs)

    def serve(self, srv_type: type, name: str, handler: Callable[[Any, Any], Any]) -> Any:
        """Like ``node.create_service``; a request ``handler`` fails on is answered with the default response."""
        return self._node.create_service(srv_type, name, self.guarded(name, handler, fallback=_default_response))

    def guarded(self, topic: str, callback: Callable[..., Any],
                fallback: Callable[..., Any] = lambda *_: None) -> Callable[..., Any]:
        """``callback``, but what it raises is counted and logged, and ``fallback`` answers instead."""
        def call(*args: Any) -> Any:
            try:
                return callback(*args)
            except Exception as error:  # noqa: BLE001 - RecursionError, MemoryError from a hostile payload too
                self.drop(topic, type(error).__name__, error)
                return fallback(*args)
        return call

    def drop(self, topic: str, reason: str, error: BaseException) -> None:
        with self._lock:
            self._dropped[(topic, reason)] += 1
        held_back = self._throttle.admit((topic, reason))
        if held_back is not None:
            self._node.get_logger().warning(
                f'{topic}: dropped a message ({reason}: {str(error)[:DETAIL_CHARS]})'
                f'{f"; {held_back} more since the last report" if held_back else ""}')

    def diagnostics(self) -> dict[str, tuple[bytes, str, dict[str, int]]]:
        """One /diagnostics entry: dropped messages per topic and reason."""
        with self._lock:
            dropped = dict(self._dropped)
        total = sum(dropped.values())
        message = f'{total} messages dropped' if total else 'no message dropped'
        return {'dropped messages': (DiagnosticStatus.WARN if total else DiagnosticStatus.OK, message,
                                     {f'{topic}: {reason}': n for (topic, reason), n in sorted(dropped.items())})}


def _default_response(_: Any, response: Any) -> Any:
    return response
