"""Live cameras read through cv2.VideoCapture: RTSP (FFmpeg backend) and V4L2 (USB cameras).

A reader thread owns the capture: it grabs every frame (an H.264/H.265 decoder needs them all)
but converts to BGR only frames that are kept under ``max_fps``, and hands them over
newest-wins, so :meth:`read` never waits longer than its timeout and never returns a stale
frame while newer ones queue up. RTSP goes through an :class:`RtspGuard` on 127.0.0.1, which
verifies ``rtsps`` certificates and never lets a Basic answer out on a plain link.
"""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlsplit

import cv2

from kaiserslautern_vss.camera.credentials import inject_credentials, mask_url, resolve_password, split_credentials
from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.imaging import as_bgr, fit_to_max_size
from kaiserslautern_vss.camera.latest_slot import LatestSlot
from kaiserslautern_vss.camera.link_security import LinkPolicy
from kaiserslautern_vss.camera.pacing import RateDecimator
from kaiserslautern_vss.camera.probe import tcp_probe
from kaiserslautern_vss.camera.rtsp_guard import RtspGuard
from kaiserslautern_vss.camera.source_types import SourceCounters, SourceError, SourceSettings

# OpenCV reads FFmpeg options from this process-wide variable when a capture opens; the lock keeps
# cameras with different transports from seeing each other's options.
FFMPEG_OPTIONS_VARIABLE = 'OPENCV_FFMPEG_CAPTURE_OPTIONS'
_FFMPEG_OPTIONS_LOCK = threading.Lock()


class CaptureThreadSource:
    """Shared part: the reader thread, newest-wins hand-over, decimation and counters."""

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure = ''
        self._counters = SourceCounters()

    def _create_capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def open(self) -> None:
        capture = self._create_capture()
        if not capture.isOpened():
            capture.release()
            raise SourceError(f'cannot open {self.describe()}')
        self._thread = threading.Thread(target=self._run, args=(capture,), name='capture-reader', daemon=True)
        self._thread.start()

    def _run(self, capture: cv2.VideoCapture) -> None:
        decimator = RateDecimator(self.settings.max_fps)
        try:
            while not self._stop.is_set():
                if not capture.grab():
                    self._failure = f'{self.describe()}: no frame (stream ended, timed out or broken)'
                    return
                now = time.time_ns()
                if not decimator.keep(now):
                    self._counters.skipped_frames += 1
                    continue
                ok, image = capture.retrieve()
                if not ok or image is None:
                    self._counters.corrupt_frames += 1
                    continue
                image = fit_to_max_size(as_bgr(image), self.settings.max_width, self.settings.max_height)
                self._slot.put(Frame(image, now, self._counters.frames))
                self._counters.frames += 1
        finally:
            capture.release()
            self._slot.close()

    def read(self, timeout_s: float) -> Frame | None:
        if self._thread is None:
            raise SourceError(f'{self.describe()} is not open')
        frame = self._slot.take(timeout_s)
        if frame is None and self._slot.closed and not self._stop.is_set():
            raise SourceError(self._failure or f'{self.describe()}: reader stopped')
        return frame

    def close(self) -> None:
        """Stop the reader; it releases the capture itself (releasing under a running grab() crashes)."""
        self._stop.set()
        self._slot.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.settings.read_timeout_s + 1.0)

    def counters(self) -> SourceCounters:
        counters = SourceCounters(**vars(self._counters))
        counters.dropped_frames = self._slot.dropped
        return counters

    def describe(self) -> str:
        raise NotImplementedError


class RtspSource(CaptureThreadSource):
    """RTSP or RTSPS (H.264/H.265) through OpenCV's FFmpeg backend behind an :class:`RtspGuard`, TCP or UDP."""

    def __init__(self, url: str, settings: SourceSettings) -> None:
        super().__init__(settings)
        self.url, self._username, self._password = split_credentials(url)
        self._username = settings.username or self._username
        self.policy = LinkPolicy.for_url(urlsplit(self.url).scheme, settings)
        self._guard: RtspGuard | None = None

    def ffmpeg_options(self) -> str:
        # A short stream probe: opening takes ~0.6 s instead of ~3.4 s, and the stream does not start
        # with seconds of buffered backlog (measured against GStreamer's RTSP server, H.264 768x576).
        return f'rtsp_transport;{self.settings.rtsp_transport}|analyzeduration;500000|probesize;200000'

    def open(self) -> None:
        try:
            super().open()
        except SourceError:
            verdict = self._guard.verdict if self._guard else None
            self._close_guard()
            if verdict is not None:
                raise verdict from None
            raise

    def close(self) -> None:
        super().close()
        self._close_guard()

    def _close_guard(self) -> None:
        if self._guard is not None:
            self._guard.close()

    def counters(self) -> SourceCounters:
        counters = super().counters()
        counters.clock_offset_s = self._guard.clock_offset_s if self._guard else None
        return counters

    def _create_capture(self) -> cv2.VideoCapture:
        if self.settings.password_env or self.settings.password_file:
            self._password = resolve_password(self.settings.password_env, self.settings.password_file)
        self._guard = RtspGuard(self.url, self.policy, mask_url(self.url), self.settings.open_timeout_s)
        url = inject_credentials(self._guard.local_url, self._username, self._password)
        timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.settings.open_timeout_s * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.settings.read_timeout_s * 1000)]
        with _FFMPEG_OPTIONS_LOCK:
            previous = os.environ.get(FFMPEG_OPTIONS_VARIABLE)
            os.environ[FFMPEG_OPTIONS_VARIABLE] = self.ffmpeg_options()
            try:
                return cv2.VideoCapture(url, cv2.CAP_FFMPEG, timeouts)
            finally:
                if previous is None:
                    del os.environ[FFMPEG_OPTIONS_VARIABLE]
                else:
                    os.environ[FFMPEG_OPTIONS_VARIABLE] = previous

    def probe(self, timeout_s: float) -> bool:
        return tcp_probe(self.url, timeout_s)

    def describe(self) -> str:
        return f'RTSP {mask_url(self.url)} over {self.settings.rtsp_transport.upper()} ({self.policy.describe()})'


class V4l2Source(CaptureThreadSource):
    """A local V4L2 device; asks for MJPG so USB cameras reach full rate at high resolutions."""

    def __init__(self, device: str, settings: SourceSettings, width: int = 0, height: int = 0,
                 fps: float = 0.0) -> None:
        super().__init__(settings)
        self.device = device
        self.width, self.height, self.fps = width, height, fps

    def _create_capture(self) -> cv2.VideoCapture:
        if not os.path.exists(self.device):
            raise SourceError(f'V4L2 device {self.device} does not exist')
        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        requests: list[tuple[int, float]] = [(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*'MJPG'))]
        requests += [(prop, value) for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width),
                                                       (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                                                       (cv2.CAP_PROP_FPS, self.fps)) if value]
        for prop, value in requests:
            capture.set(prop, value)
        return capture

    def describe(self) -> str:
        mode = f' {self.width}x{self.height}' if self.width and self.height else ''
        return f'V4L2 {self.device}{mode}{f" @ {self.fps:g} fps" if self.fps else ""}'


