"""Refusing replayed IP Notify requests.

IP Notify is plain HTTP with a fixed secret, so whoever captures one request can send it
again. Two checks, both over authenticated requests only:

- a **timestamp window** where the camera sends one: a ``ts`` parameter (Unix seconds,
  e.g. from the camera's time variable in the IP Notify profile) more than ``window_s``
  away from the receiver's clock is refused (stale, or a clock that needs fixing);
- a **duplicate-event window** always: the same camera with the same event type and the
  same parameters (everything but the secret) is accepted once within ``window_s``.

With ``ts`` every captured request is worthless after ``window_s`` and accepted at most
once within it; without it a captured request can be replayed once per window. Neither
stops someone who has read the secret off the wire from composing new requests: that
needs the camera network separated (docs/SITE.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

TIMESTAMP_FIELD = 'ts'
MAX_REMEMBERED = 4096  # requests within one window; the rate limit keeps real numbers far lower


class ReplayGuard:
    def __init__(self, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self._clock = clock
        self._seen: OrderedDict[tuple, float] = OrderedDict()  # request -> when first accepted
        self._lock = threading.Lock()

    def problem(self, camera_id: str, fields: Mapping[str, Sequence[str]]) -> str:
        """Why this authenticated request is a replay ('' if it is not); remembers it if not."""
        now = self._clock()
        stamps = fields.get(TIMESTAMP_FIELD)
        if stamps is not None:
            try:
                stamp = float(stamps[0])
            except (ValueError, IndexError):
                return f'{TIMESTAMP_FIELD} is not Unix seconds'
            if abs(now - stamp) > self.window_s:
                return f'{TIMESTAMP_FIELD} is {now - stamp:+.0f} s old (window {self.window_s:g} s)'
        request = (camera_id, tuple(sorted((name, tuple(values)) for name, values in fields.items())))
        with self._lock:
            while self._seen and (now - next(iter(self._seen.values())) > self.window_s
                                  or len(self._seen) >= MAX_REMEMBERED):
                self._seen.popitem(last=False)
            if request in self._seen:
                return f'the same event was accepted {now - self._seen[request]:.0f} s ago'
            self._seen[request] = now
        return ''
