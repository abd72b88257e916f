"""Bounded in-memory history of serialized messages: the pre-event seconds of a snippet."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


class RingBufferConfigError(ValueError):
    """The ring buffer's bounds are unusable."""


@dataclass(frozen=True)
class BufferedMessage:
    """One serialized (CDR) message as received, with its header/receive stamp."""

    topic: str
    stamp_ns: int
    payload: bytes


class RingBuffer:
    """Keeps the last ``max_seconds`` of messages, never more than ``max_bytes`` of payload.

    Age is measured against the newest stamp seen, not the wall clock, so replayed or
    simulated time works the same. The byte bound is strict: a single message larger than
    ``max_bytes`` is not kept at all (memory is the promise, completeness is not).
    """

    def __init__(self, max_seconds: float, max_bytes: int) -> None:
        if not (isinstance(max_seconds, (int, float)) and math.isfinite(max_seconds)
                and max_seconds > 0):
            raise RingBufferConfigError(f'max_seconds must be a finite number > 0, got {max_seconds!r}')
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise RingBufferConfigError(f'max_bytes must be an integer > 0, got {max_bytes!r}')
        self.max_seconds = float(max_seconds)
        self.max_bytes = max_bytes
        self._window_ns = int(round(max_seconds * 1e9))
        self._messages: deque[BufferedMessage] = deque()
        self._nbytes = 0
        self._newest_ns: int | None = None

    def push(self, message: BufferedMessage) -> None:
        self._messages.append(message)
        self._nbytes += len(message.payload)
        if self._newest_ns is None or message.stamp_ns > self._newest_ns:
            self._newest_ns = message.stamp_ns
        oldest_allowed = self._newest_ns - self._window_ns
        # Arrival order is close to stamp order; a slightly late message behind the head
        # simply ages out with its neighbours.
        while self._messages and (self._nbytes > self.max_bytes
                                  or self._messages[0].stamp_ns < oldest_allowed):
            self._nbytes -= len(self._messages.popleft().payload)

    def since(self, stamp_ns: int) -> list[BufferedMessage]:
        """Buffered messages stamped at or after ``stamp_ns``, in stamp order (stable)."""
        return sorted((m for m in self._messages if m.stamp_ns >= stamp_ns),
                      key=lambda m: m.stamp_ns)

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._messages)

    def clear(self) -> None:
        self._messages.clear()
        self._nbytes = 0
        self._newest_ns = None
