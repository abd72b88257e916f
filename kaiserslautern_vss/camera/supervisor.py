"""Keeps one camera streaming: its own thread, stall detection, reconnects with backoff, health stats.

Written against the failures operators complain about most: cameras that drop and never come
back (any error or stall closes the source and reopens it, forever, with exponential backoff),
stalls nobody notices (no frame for ``stall_timeout_s`` counts as a failure and shows in
``stats().state``), and a camera that comes back but waits out a long backoff (while backing
off, a source that can :class:`ProbingSource.probe` is probed with a TCP connect every
``probe_interval_s``; when it turns from unreachable to reachable the wait ends at once). The
backoff restarts at ``backoff_initial_s`` after every connection that delivered frames, so
short outages are bridged by the first quick retries, long ones by the probe.

A rejected login is different: cameras lock a user out after a few failed logins, so
authentication failures are spaced out: at most ``auth_max_attempts`` in any ``auth_window_s``
(and never shortened by the probe). Refusals of an insecure link (Basic over plain, wrong
certificate) count separately. Health beyond frames: the camera's clock offset (WARN above
``clock_offset_warn_s``), changes of resolution or frame rate (WARN for ``CHANGE_WARN_S``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.latest_slot import LatestSlot
from kaiserslautern_vss.camera.privacy_zones import PrivacyZones
from kaiserslautern_vss.camera.source_types import (AuthenticationError, CountingSource, EndOfStream, FrameSource,
                                                    InsecureLinkError, ProbingSource)

_log = logging.getLogger(__name__)

STATES = ('connecting', 'streaming', 'stalled', 'backoff', 'ended', 'stopped')
FPS_WINDOW_S = 5.0
READ_SLICE_S = 0.25  # how often the thread looks at stop requests and stall timers
RATE_CHANGE_FRACTION = 0.3  # a window's frame rate this far from the previous one is a rate change
CHANGE_WARN_S = 60.0  # how long a resolution or rate change keeps the camera at WARN


@dataclass(frozen=True)
class CaptureStats:
    state: str
    fps: float  # frames received per second over the last few seconds
    frames: int  # frames received since start, all connections
    dropped: int  # frames replaced by newer ones before anyone took them (here and inside the sources)
    reconnects: int  # successful opens after the first
    last_error: str  # masked, never credentials
    corrupt_frames: int  # truncated/undecodable frames the sources skipped
    failures: int  # failed opens, errors and stalls
    auth_failures: int = 0  # logins the camera rejected
    refusals: int = 0  # links refused before sending a secret (Basic over plain, certificate mismatch)
    clock_offset_s: float | None = None  # camera clock minus host clock, None: the camera tells no time
    resolution: str = ''  # of the latest frame, 'WxH'
    resolution_changes: int = 0
    rate_changes: int = 0
    last_change: str = ''  # e.g. 'resolution 1280x720 -> 640x360'
    warnings: tuple[str, ...] = ()  # health problems while frames still flow (clock, recent changes)

    def health_fields(self) -> dict[str, str | int]:
        """The camera-health part of this snapshot, as /diagnostics key-values."""
        return {'auth_failures': self.auth_failures, 'refusals': self.refusals,
                'clock_offset_s': 'unknown' if self.clock_offset_s is None else f'{self.clock_offset_s:+.1f}',
                'resolution': self.resolution, 'resolution_changes': self.resolution_changes,
                'rate_changes': self.rate_changes, 'last_change': self.last_change}


class SupervisedCamera:
    """Runs ``source_factory()`` sources one after another in a thread until :meth:`stop`.

    ``privacy_zones`` (optional) are filled into every frame inside this thread, before
    :meth:`latest` can hand it out. Frames are renumbered so ``sequence`` keeps increasing over
    reconnects. ``clock`` (monotonic seconds) drives stall detection, backoff and fps.
    """

    def __init__(self, source_factory: Callable[[], FrameSource], stall_timeout_s: float = 5.0,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, *, name: str = 'camera',
                 privacy_zones: PrivacyZones | None = None, probe_interval_s: float = 0.5,
                 auth_max_attempts: int = 3, auth_window_s: float = 900.0, clock_offset_warn_s: float = 2.0,
                 rate_window_s: float = 10.0, start: bool = True) -> None:
        if stall_timeout_s <= 0 or backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError(f'need stall_timeout_s > 0 and 0 < backoff_initial_s <= backoff_max_s, got '
                             f'{stall_timeout_s}, {backoff_initial_s}, {backoff_max_s}')
        if auth_max_attempts < 1 or auth_window_s < 0 or clock_offset_warn_s <= 0 or rate_window_s <= 0:
            raise ValueError(f'need auth_max_attempts >= 1, auth_window_s >= 0, clock_offset_warn_s > 0 and '
                             f'rate_window_s > 0, got {auth_max_attempts}, {auth_window_s}, {clock_offset_warn_s}, '
                             f'{rate_window_s}')
        self.auth_max_attempts = auth_max_attempts
        self.auth_window_s = auth_window_s
        self.clock_offset_warn_s = clock_offset_warn_s
        self.rate_window_s = rate_window_s
        self.source_factory = source_factory
        self.stall_timeout_s = stall_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.probe_interval_s = probe_interval_s
        self.name = name
        self.privacy_zones = privacy_zones
        self._clock = clock
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = 'connecting'
        self._frames = 0
        self._reconnects = 0
        self._failures = 0
        self._last_error = ''
        self._closed_sources_dropped = 0
        self._closed_sources_corrupt = 0
        self._source: FrameSource | None = None
        self._arrivals: deque[float] = deque()
        self._auth_failed_at: deque[float] = deque()  # clock() of rejected logins inside auth_window_s
        self._auth_failures = 0
        self._refusals = 0
        self._clock_offset_s: float | None = None  # last known, kept over reconnects
        self._resolution: tuple[int, int] | None = None  # (width, height)
        self._resolution_changes = 0
        self._rate_changes = 0
        self._last_change = ''
        self._last_change_at = float('-inf')
        self._rate_window: tuple[float, int] | None = None  # (start, frames) of the current rate window
        self._settled_rate = 0.0
        self._thread = threading.Thread(target=self._run, name=f'camera-{name}', daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        self._thread.start()

    # -- consumer side -------------------------------------------------------------------------

    def latest(self) -> Frame | None:
        """The newest frame not yet returned, or None when nothing new arrived."""
        return self._slot.take(0.0)

    def wait_latest(self, timeout_s: float) -> Frame | None:
        """Like :meth:`latest`, waiting up to ``timeout_s`` for a new frame."""
        return self._slot.take(timeout_s)

    def stats(self) -> CaptureStats:
        with self._lock:
            now = self._clock()
            while self._arrivals and self._arrivals[0] < now - FPS_WINDOW_S:
                self._arrivals.popleft()
            span = now - self._arrivals[0] if len(self._arrivals) > 1 else 0.0
            fps = (len(self._arrivals) - 1) / span if span > 0 else 0.0
            source = self._source
            live = source.counters() if isinstance(source, CountingSource) else None
            if live is not None and live.clock_offset_s is not None:
                self._clock_offset_s = live.clock_offset_s
            return CaptureStats(
                state=self._state, fps=fps, frames=self._frames,
                dropped=self._slot.dropped + self._closed_sources_dropped
                + (live.dropped_frames if live else 0),
                reconnects=self._reconnects, last_error=self._last_error,
                corrupt_frames=self._closed_sources_corrupt + (live.corrupt_frames if live else 0),
                failures=self._failures, auth_failures=self._auth_failures, refusals=self._refusals,
                clock_offset_s=self._clock_offset_s,
                resolution='x'.join(map(str, self._resolution)) if self._resolution else '',
                resolution_changes=self._resolution_changes, rate_changes=self._rate_changes,
                last_change=self._last_change, warnings=self._warnings(now))

    def _warnings(self, now: float) -> tuple[str, ...]:
        warnings = []
        if self._clock_offset_s is not None and abs(self._clock_offset_s) > self.clock_offset_warn_s:
            warnings.append(f'camera clock {self._clock_offset_s:+.1f} s off the host (limit '
                            f'{self.clock_offset_warn_s:g} s): evidence needs the right time, check NTP on the camera')
        if now - self._last_change_at < CHANGE_WARN_S:
            warnings.append(self._last_change)
        return tuple(warnings)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        with self._lock:
            self._state = 'stopped' if self._state != 'ended' else 'ended'

    # -- capture thread ------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def _fail(self, message: str, error: Exception | None = None) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = message
            if isinstance(error, AuthenticationError):
                self._auth_failures += 1
                self._auth_failed_at.append(self._clock())
            elif isinstance(error, InsecureLinkError):
                self._refusals += 1
        _log.warning('camera %s: %s', self.name, message)

    def _next_login_delay(self, backoff_s: float) -> float:
        """The wait after a rejected login: the backoff, or longer while the window holds auth_max_attempts."""
        now = self._clock()
        with self._lock:
            while self._auth_failed_at and self._auth_failed_at[0] <= now - self.auth_window_s:
                self._auth_failed_at.popleft()
            if len(self._auth_failed_at) < self.auth_max_attempts:
                return backoff_s
            return max(backoff_s, self._auth_failed_at[0] + self.auth_window_s - now)

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        opened_before = False
        while not self._stop.is_set():
            self._set_state('connecting')
            source: FrameSource | None = None
            error: Exception | None = None
            frames_before = self._frames
            try:
                source = self.source_factory()
                source.open()
                with self._lock:
                    self._source = source
                    self._reconnects += opened_before
                opened_before = True
                self._stream(source)
            except EndOfStream:
                self._set_state('ended')
                _log.info('camera %s: source ended', self.name)
                self._close(source)
                return
            except Exception as failure:  # noqa: BLE001 - the thread must survive any source bug
                # Source errors carry masked URLs (describe()); anything else is logged by type and text.
                error = failure
                self._fail(str(error) if str(error) else type(error).__name__, error)
            self._close(source)
            if self._stop.is_set():
                break
            if self._frames > frames_before:
                backoff = self.backoff_initial_s  # the connection delivered: a fresh failure starts small
            self._set_state('backoff')
            try:
                if isinstance(error, AuthenticationError):
                    self._stop.wait(self._next_login_delay(backoff))  # never cut short: each try is a login
                else:
                    self._back_off(backoff, source)
            except Exception as failure:  # noqa: BLE001
                self._fail(f'probing failed: {failure!r}')
                self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    def _stream(self, source: FrameSource) -> None:
        """Read until stop, error (raised) or a stall (returns)."""
        self._set_state('streaming')
        last_frame = self._clock()
        with self._lock:
            self._rate_window = None  # rates are compared within one connection
        while not self._stop.is_set():
            frame = source.read(READ_SLICE_S)
            now = self._clock()
            if frame is None:
                if now - last_frame > self.stall_timeout_s:
                    self._set_state('stalled')
                    self._fail(f'stalled: no frame for {now - last_frame:.1f} s from {source.describe()}')
                    return
                continue
            last_frame = now
            self._deliver(frame, now)

    def _deliver(self, frame: Frame, now: float) -> None:
        with self._lock:
            self._arrivals.append(now)
            sequence = self._frames
            self._frames += 1
            self._track_changes(frame, now)
        if self.privacy_zones is not None:
            self.privacy_zones.apply(frame.image)
        self._slot.put(replace(frame, sequence=sequence))

    def _track_changes(self, frame: Frame, now: float) -> None:
        """Count resolution changes and frame-rate changes between consecutive ``rate_window_s`` windows."""
        height, width = frame.image.shape[:2]
        if self._resolution is not None and self._resolution != (width, height):
            self._note_change(f'resolution {self._resolution[0]}x{self._resolution[1]} -> {width}x{height}', now)
            self._resolution_changes += 1
        self._resolution = (width, height)
        if self._rate_window is None:
            self._rate_window = (now, 0)
            return
        start, count = self._rate_window[0], self._rate_window[1] + 1
        if now - start < self.rate_window_s:
            self._rate_window = (start, count)
            return
        rate = count / (now - start)
        if self._settled_rate and abs(rate - self._settled_rate) > RATE_CHANGE_FRACTION * self._settled_rate:
            self._note_change(f'frame rate {self._settled_rate:.1f} -> {rate:.1f} fps', now)
            self._rate_changes += 1
        self._settled_rate, self._rate_window = rate, (now, 0)

    def _note_change(self, change: str, now: float) -> None:
        self._last_change, self._last_change_at = change, now
        _log.warning('camera %s: %s', self.name, change)

    def _close(self, source: FrameSource | None) -> None:
        if source is None:
            return
        try:
            counters = source.counters() if isinstance(source, CountingSource) else None
            source.close()
        except Exception as error:  # noqa: BLE001 - a broken source must not end the camera thread
            counters = None
            _log.warning('camera %s: closing %s failed: %r', self.name, source.describe(), error)
        with self._lock:
            if counters is not None:
                self._closed_sources_dropped += counters.dropped_frames
                self._closed_sources_corrupt += counters.corrupt_frames
            self._source = None

    def _back_off(self, delay_s: float, source: FrameSource | None) -> None:
        """Wait ``delay_s``; end early when a probed server turns from unreachable to reachable."""
        deadline = self._clock() + delay_s
        probing = isinstance(source, ProbingSource)
        unreachable = probing and not source.probe(self.probe_interval_s)
        while not self._stop.is_set():
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, self.probe_interval_s) if probing else remaining)
            if probing:
                reachable = source.probe(self.probe_interval_s)
                if reachable and unreachable:
                    return
                unreachable = not reachable
