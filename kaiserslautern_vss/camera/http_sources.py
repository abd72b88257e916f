"""HTTP cameras: MJPEG multipart streams and polled JPEG snapshots (MOBOTIX ``faststream`` / ``current.jpg``).

Both receive JPEG bytes in a background thread and keep only the newest; :meth:`read` decodes
just the image it returns, so frames that nobody reads cost no decoding. Requests go through
:class:`CameraHttpClient`: certificates checked (site CA or pinned fingerprint), Digest
answered, Basic over plain HTTP refused unless allowed, a wrong password reported once, not
retried. Credentials come from the settings or the URL's user info. Connecting and every
blocking socket read time out after ``open_timeout_s``; shorter stalls are the supervisor's
business.
"""

from __future__ import annotations

import http.client
import threading
import time
from email.message import Message
from urllib.parse import urlsplit

from kaiserslautern_vss.camera import http_client
from kaiserslautern_vss.camera.credentials import mask_url, resolve_password, split_credentials
from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.http_client import CameraHttpClient
from kaiserslautern_vss.camera.imaging import decode_jpeg
from kaiserslautern_vss.camera.latest_slot import LatestSlot
from kaiserslautern_vss.camera.link_security import LinkPolicy
from kaiserslautern_vss.camera.mjpeg import SOI, MjpegStreamParser
from kaiserslautern_vss.camera.pacing import FramePacer, RateDecimator
from kaiserslautern_vss.camera.probe import tcp_probe
from kaiserslautern_vss.camera.source_types import SourceCounters, SourceError, SourceSettings

CHUNK_BYTES = 64 * 1024
MOBOTIX_FULL_JPEG_HINT = ('ask for full JPEG frames instead: /control/faststream.jpg?stream=full&needlength&fps=<rate> '
                          '(MxPEG, the faststream default, only MOBOTIX software decodes)')


class _HttpJpegSource:
    """Shared part: connection, credentials, producer thread, newest-wins slot, decoding on read."""

    kind = 'http'

    def __init__(self, url: str, settings: SourceSettings) -> None:
        self.url, url_user, url_password = split_credentials(url)
        self.settings = settings
        self._username = settings.username or url_user
        self._password = url_password
        self._slot: LatestSlot[tuple[bytes, int]] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure = ''
        self._counters = SourceCounters()
        self._decimator = RateDecimator(settings.max_fps)
        self.policy = LinkPolicy.for_url(urlsplit(self.url).scheme, settings)
        self._client: CameraHttpClient | None = None

    def _request(self, timeout_s: float) -> http.client.HTTPResponse:
        assert self._client is not None
        return self._client.get(timeout_s)

    def open(self) -> None:
        if self.settings.password_env or self.settings.password_file:
            self._password = resolve_password(self.settings.password_env, self.settings.password_file)
        self._client = CameraHttpClient(self.url, self._username, self._password, self.policy)
        self._start()
        self._thread = threading.Thread(target=self._run, name=f'{self.kind}-reader', daemon=True)
        self._thread.start()

    def _start(self) -> None:
        """Connect synchronously so open() reports a dead camera at once."""
        raise NotImplementedError

    def _produce(self) -> None:
        """Receive JPEGs until stopped; raise SourceError (or OSError) when the camera fails."""
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self._produce()
        except (SourceError, OSError, http.client.HTTPException, ValueError) as error:
            self._failure = str(error) if isinstance(error, SourceError) else f'{self.describe()}: {error!r}'
        finally:
            self._finish()
            self._slot.close()

    def _finish(self) -> None:
        """Release the connection (called in the reader thread)."""

    def _offer(self, jpeg: bytes) -> None:
        now = time.time_ns()
        if not self._decimator.keep(now):
            self._counters.skipped_frames += 1
            return
        self._slot.put((jpeg, now))

    def read(self, timeout_s: float) -> Frame | None:
        if self._thread is None:
            raise SourceError(f'{self.describe()} is not open')
        deadline = time.monotonic() + timeout_s
        while True:
            item = self._slot.take(deadline - time.monotonic())
            if item is None:
                if self._slot.closed and not self._stop.is_set():
                    raise SourceError(self._failure or f'{self.describe()}: reader stopped')
                return None
            image = decode_jpeg(item[0], self.settings.max_width, self.settings.max_height)
            if image is not None:
                frame = Frame(image, item[1], self._counters.frames)
                self._counters.frames += 1
                return frame
            self._counters.corrupt_frames += 1

    def close(self) -> None:
        # The reader thread notices within one chunk or socket timeout and closes its connection.
        self._stop.set()
        self._slot.close()

    def probe(self, timeout_s: float) -> bool:
        return tcp_probe(self.url, timeout_s)

    def _stream_counters(self) -> tuple[int, int]:
        """(corrupt parts, garbage bytes) found in the byte stream."""
        return 0, 0

    def counters(self) -> SourceCounters:
        corrupt_parts, garbage_bytes = self._stream_counters()
        return SourceCounters(frames=self._counters.frames, dropped_frames=self._slot.dropped,
                              skipped_frames=self._counters.skipped_frames,
                              corrupt_frames=self._counters.corrupt_frames + corrupt_parts,
                              garbage_bytes=garbage_bytes,
                              clock_offset_s=self._client.clock_offset_s if self._client else None)

    def describe(self) -> str:
        login = f', {self._client.auth_scheme.capitalize()} login' if self._client and self._client.auth_scheme else ''
        return f'{self.kind} {mask_url(self.url)} ({self.policy.describe()}{login})'


class HttpMjpegSource(_HttpJpegSource):
    """``multipart/x-mixed-replace`` JPEG stream over one long HTTP response."""

    kind = 'MJPEG stream'

    def __init__(self, url: str, settings: SourceSettings) -> None:
        super().__init__(url, settings)
        self._parser = MjpegStreamParser()

    def _start(self) -> None:
        self._response = self._request(self.settings.open_timeout_s)
        content_type = Message()
        content_type['content-type'] = self._response.headers.get('Content-Type', '')
        if content_type.get_content_type() != 'multipart/x-mixed-replace':
            raise SourceError(f'{self.describe()}: {self._not_mjpeg(content_type.get_content_type())}')
        self._parser = MjpegStreamParser(content_type.get_param('boundary', '').encode('latin-1'))

    def _not_mjpeg(self, content_type: str) -> str:
        """Why the answer is no MJPEG stream: MxPEG (by type or by JPEG markers without multipart) or other."""
        try:
            head = self._response.read(len(SOI)) if content_type != 'image/jpeg' else b''
        finally:
            self._response.close()
        if 'mxpeg' in content_type or head == SOI:
            return f'the camera answers with MxPEG (Content-Type {content_type!r}), not MJPEG: {MOBOTIX_FULL_JPEG_HINT}'
        return f'not an MJPEG stream (Content-Type {content_type!r}); for snapshots set snapshot_rate_hz'

    def _produce(self) -> None:
        next_clock_check = time.monotonic() + http_client.CLOCK_CHECK_S
        while not self._stop.is_set():
            chunk = self._response.read1(CHUNK_BYTES)
            if not chunk:
                raise SourceError(f'{self.describe()}: server closed the stream')
            if time.monotonic() >= next_clock_check:
                next_clock_check = time.monotonic() + http_client.CLOCK_CHECK_S
                threading.Thread(target=self._client.ask_time, args=(self.settings.open_timeout_s,),
                                 name='camera-clock', daemon=True).start()
            for jpeg in self._parser.feed(chunk):
                self._offer(jpeg)

    def _stream_counters(self) -> tuple[int, int]:
        return self._parser.corrupt_parts, self._parser.garbage_bytes

    def _finish(self) -> None:
        self._response.close()


class HttpSnapshotSource(_HttpJpegSource):
    """One JPEG per HTTP request, polled at ``snapshot_rate_hz`` (drift-free)."""

    kind = 'HTTP snapshots'

    def _fetch(self, timeout_s: float) -> bytes:
        with self._request(timeout_s) as response:
            return response.read()

    def _start(self) -> None:
        self._pacer = FramePacer(self.settings.snapshot_rate_hz)
        self._pacer.wait_next(0.0)
        self._offer(self._fetch(self.settings.open_timeout_s))

    def _produce(self) -> None:
        while not self._stop.is_set():
            if self._pacer.wait_next(0.25):
                self._offer(self._fetch(self.settings.read_timeout_s))
