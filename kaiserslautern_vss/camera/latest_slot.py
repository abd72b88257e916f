"""A one-item, newest-wins hand-over between a producer thread and a consumer."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar('T')


class LatestSlot(Generic[T]):
    """Holds at most one item: a newer ``put`` replaces an unread one (counted in ``dropped``)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._condition:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._condition.notify_all()

    def take(self, timeout_s: float) -> T | None:
        """The newest unread item, waiting up to ``timeout_s``; None on timeout or when closed and empty."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, max(timeout_s, 0.0))
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake every waiting ``take`` (the producer has ended)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
