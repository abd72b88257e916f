"""Log lines throttled per reason, so a frequent problem cannot hide a rare one.

rclpy throttles per call site: one line every few seconds for everything a callback logs,
whatever the cause. Here each key (camera and reason) has its own budget, and the line that
goes out says how many of its kind were held back since the last one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class ReasonThrottle:
    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last_s: dict[Hashable, float] = {}
        self._held_back: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def admit(self, key: Hashable) -> int | None:
        """None when this occurrence of ``key`` is held back; else how many were held back before it."""
        now = self._clock()
        with self._lock:
            last = self._last_s.get(key)
            if last is not None and now - last < self.period_s:
                self._held_back[key] = self._held_back.get(key, 0) + 1
                return None
            self._last_s[key] = now
            return self._held_back.pop(key, 0)
