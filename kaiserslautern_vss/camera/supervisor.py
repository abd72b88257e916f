"""Keeps one camera streaming: its own thread, stall detection, reconnects with backoff, health stats.

Written against the failures operators complain about most: cameras that drop and never come
back (any error or stall closes the source and reopens it, forever, with exponential backoff),
stalls nobody notices (no frame for ``stall_timeout_s`` counts as a failure and shows in
``stats().state``), and a camera that comes back but waits out a long backoff (while backing
off, a source that can :class:`ProbingSource.probe` is probed with a TCP connect every
``probe_interval_s``; when it turns from unreachable to reachable the wait ends at once). The
backoff restarts at ``backoff_initial_s`` after every connection that delivered frames, so
short outages are bridged by the first quick retries, long ones by the probe.
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
from kaiserslautern_vss.camera.source_types import CountingSource, EndOfStream, FrameSource, ProbingSource

_log = logging.getLogger(__name__)

STATES = ('connecting', 'streaming', 'stalled', 'backoff', 'ended', 'stopped')
FPS_WINDOW_S = 5.0
READ_SLICE_S = 0.25  # how often the thread looks at stop requests and stall timers


@dataclass(frozen=True)
class CameraStats:
    state: str
    fps: float  # frames received per second over the last few seconds
    frames: int  # frames received since start, all connections
    dropped: int  # frames replaced by newer ones before anyone took them (here and inside the sources)
    reconnects: int  # successful opens after the first
    last_error: str  # masked, never credentials
    corrupt_frames: int  # truncated/undecodable frames the sources skipped
    failures: int  # failed opens, errors and stalls


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
                 start: bool = True) -> None:
        if stall_timeout_s <= 0 or backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError(f'need stall_timeout_s > 0 and 0 < backoff_initial_s <= backoff_max_s, got '
                             f'{stall_timeout_s}, {backoff_initial_s}, {backoff_max_s}')
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

    def stats(self) -> CameraStats:
        with self._lock:
            now = self._clock()
            while self._arrivals and self._arrivals[0] < now - FPS_WINDOW_S:
                self._arrivals.popleft()
            span = now - self._arrivals[0] if len(self._arrivals) > 1 else 0.0
            fps = (len(self._arrivals) - 1) / span if span > 0 else 0.0
            source = self._source
            live = source.counters() if isinstance(source, CountingSource) else None
            return CameraStats(
                state=self._state, fps=fps, frames=self._frames,
                dropped=self._slot.dropped + self._closed_sources_dropped
                + (live.dropped_frames if live else 0),
                reconnects=self._reconnects, last_error=self._last_error,
                corrupt_frames=self._closed_sources_corrupt + (live.corrupt_frames if live else 0),
                failures=self._failures)

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

    def _fail(self, message: str) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = message
        _log.warning('camera %s: %s', self.name, message)

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        opened_before = False
        while not self._stop.is_set():
            self._set_state('connecting')
            source: FrameSource | None = None
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
            except Exception as error:  # noqa: BLE001 - the thread must survive any source bug
                # Source errors carry masked URLs (describe()); anything else is logged by type and text.
                self._fail(str(error) if str(error) else type(error).__name__)
            self._close(source)
            if self._stop.is_set():
                break
            if self._frames > frames_before:
                backoff = self.backoff_initial_s  # the connection delivered: a fresh failure starts small
            self._set_state('backoff')
            try:
                self._back_off(backoff, source)
            except Exception as error:  # noqa: BLE001
                self._fail(f'probing failed: {error!r}')
                self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    def _stream(self, source: FrameSource) -> None:
        """Read until stop, error (raised) or a stall (returns)."""
        self._set_state('streaming')
        last_frame = self._clock()
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
        if self.privacy_zones is not None:
            self.privacy_zones.apply(frame.image)
        self._slot.put(replace(frame, sequence=sequence))

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
