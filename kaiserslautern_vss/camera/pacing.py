"""Drift-free pacing of finite sources at a fixed rate."""

from __future__ import annotations

import time
from collections.abc import Callable


class FramePacer:
    """Releases frame ``i`` at ``start + i / rate_hz``.

    Due times are measured from the first frame, so sleep jitter never accumulates; a consumer
    that falls behind gets the next frames without any sleep until it has caught up.
    """

    def __init__(self, rate_hz: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate_hz <= 0:
            raise ValueError(f'rate_hz must be > 0, got {rate_hz}')
        self.period_s = 1.0 / rate_hz
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._index = 0

    def wait_next(self, timeout_s: float) -> bool:
        """Sleep until the next frame is due; False (after sleeping ``timeout_s``) if it is not due by then."""
        now = self._clock()
        if self._start is None:
            self._start = now
        delay = self._start + self._index * self.period_s - now
        if delay > timeout_s:
            self._sleep(max(timeout_s, 0.0))
            return False
        if delay > 0:
            self._sleep(delay)
        self._index += 1
        return True


class RateDecimator:
    """Keeps at most ``max_rate_hz`` frames per second, judged by capture time (0 keeps all).

    Kept frames sit on a grid of due times one period apart, with a quarter period of slack.
    A plain minimum spacing would turn capture jitter into lost rate: a 10 fps camera limited
    to 5 fps whose frame arrives 1 ms early keeps every third frame (3.3 fps), and a camera at
    exactly the limit loses every frame that is early at all. The grid advances from the due
    time, not the capture time, so early frames never raise the long-run rate above the limit;
    after a gap (a slow source or an outage) it restarts at the frame.

    Judging by capture stamps, not arrival, makes it agree exactly with the same limit applied
    inside the live sources (``SourceSettings.max_fps``): a frame a source kept is never
    dropped here because it arrived with a little jitter.
    """

    SLACK = 0.25  # of a period: how early a frame may be and still take its slot

    def __init__(self, max_rate_hz: float) -> None:
        if max_rate_hz < 0:
            raise ValueError(f'max_rate_hz must be >= 0, got {max_rate_hz}')
        self.period_ns = int(1e9 / max_rate_hz) if max_rate_hz else 0
        self._next_due_ns: int | None = None

    def keep(self, capture_time_ns: int) -> bool:
        if not self.period_ns:
            return True
        due_ns = self._next_due_ns
        if due_ns is not None and capture_time_ns < due_ns - self.period_ns * self.SLACK:
            return False
        if due_ns is None or capture_time_ns - due_ns >= self.period_ns:
            due_ns = capture_time_ns
        self._next_due_ns = due_ns + self.period_ns
        return True
