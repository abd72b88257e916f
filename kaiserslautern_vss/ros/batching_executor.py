"""A single-threaded executor that waits at most once per period, for nodes with many inputs.

rclpy builds a new wait set over every subscription, service, timer and QoS-event handler of
the node in Python each time it waits. A node with dozens of camera-rate subscriptions whose
messages arrive one at a time pays that once per message. Waiting at most once per
``period_s`` lets the messages that arrived meanwhile be taken in one pass: a little latency
(at most ``period_s``) for much less CPU. Like rclpy's own executors it takes one message per
subscription and pass, so a topic may carry at most ``1 / period_s`` messages per second
(bursts up to its QoS depth). Meant for nodes whose inputs fit that (the event manager: per
camera topics at the camera rate, 10 fps on site, rules measured in seconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from rclpy.executors import SingleThreadedExecutor


class BatchingExecutor(SingleThreadedExecutor):
    def __init__(self, period_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.period_s = period_s
        self._next_wait = time.monotonic()

    # rclpy's generator of ready callbacks: it waits once, then yields every callback that was
    # ready at that moment; called again when they are all taken.
    def _wait_for_ready_callbacks(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        delay = self._next_wait - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_wait = time.monotonic() + self.period_s
        yield from super()._wait_for_ready_callbacks(*args, **kwargs)
