"""Log lines throttled per reason, so a frequent problem cannot hide a rare one.

rclpy throttles per call site: one line every few seconds for everything a callback logs,
whatever the cause. Here each key (camera and reason) has its own budget, and the line that
goes out says how many of its kind were held back since the last one. The servers' own
loggers (uvicorn, asyncio) get the same per-reason budget through :class:`ThrottleFilter`.
"""

from __future__ import annotations

import logging
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


class ThrottleFilter(logging.Filter):
    """A ``logging`` filter passing one record per logger and message template every ``period_s``
    (the next one says how many it stands for): a flood of connection errors from uvicorn or
    asyncio ('Too many open files' tracebacks, invalid requests) writes a line every few
    seconds, never fills the disk."""

    def __init__(self, period_s: float = 5.0) -> None:
        super().__init__()
        self._throttle = ReasonThrottle(period_s)

    def filter(self, record: logging.LogRecord) -> bool:
        held_back = self._throttle.admit((record.name, str(record.msg)))
        if held_back is None:
            return False
        if held_back:
            record.msg = f'{record.msg} ({held_back} more of this kind held back)'
        return True


def throttle_loggers(names: tuple[str, ...], period_s: float = 5.0) -> None:
    """Give each named logger one :class:`ThrottleFilter` (again: no second one)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ThrottleFilter) for f in logger.filters):
            logger.addFilter(ThrottleFilter(period_s))
