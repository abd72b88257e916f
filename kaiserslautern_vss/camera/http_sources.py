"""HTTP cameras: MJPEG multipart streams and polled JPEG snapshots.

Both receive JPEG bytes in a background thread and keep only the newest; :meth:`read` decodes
just the image it returns, so frames that nobody reads cost no decoding. Authentication (basic
or digest) goes through urllib's handlers with credentials from the settings or the URL's user
info; proxies from the environment are ignored (cameras sit on a separated network). Connecting
and every blocking socket read time out after ``open_timeout_s``; shorter stalls are the
supervisor's business.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from email.message import Message

from kaiserslautern_vss.camera.credentials import mask_url, resolve_password, split_credentials
from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.imaging import decode_jpeg
from kaiserslautern_vss.camera.latest_slot import LatestSlot
from kaiserslautern_vss.camera.mjpeg import MjpegStreamParser
from kaiserslautern_vss.camera.pacing import FramePacer, RateDecimator
from kaiserslautern_vss.camera.probe import tcp_probe
from kaiserslautern_vss.camera.source_types import SourceCounters, SourceError, SourceSettings

CHUNK_BYTES = 64 * 1024
USER_AGENT = 'kaiserslautern_vss'


def _opener(url: str, username: str, password: str) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if username:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, url, username, password)
        handlers += [urllib.request.HTTPBasicAuthHandler(passwords), urllib.request.HTTPDigestAuthHandler(passwords)]
    return urllib.request.build_opener(*handlers)


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

    def _request(self, timeout_s: float) -> http.client.HTTPResponse:
        try:
            response = self._opener.open(urllib.request.Request(self.url, headers={'User-Agent': USER_AGENT}),
                                         timeout=timeout_s)
        except urllib.error.HTTPError as error:
            error.close()
            raise SourceError(f'{self.describe()}: HTTP {error.code} {error.reason}') from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, 'reason', error)
            raise SourceError(f'{self.describe()}: cannot connect: {reason}') from None
        return response

    def open(self) -> None:
        if self.settings.password_env or self.settings.password_file:
            self._password = resolve_password(self.settings.password_env, self.settings.password_file)
        self._opener = _opener(self.url, self._username, self._password)
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
                              garbage_bytes=garbage_bytes)

    def describe(self) -> str:
        return f'{self.kind} {mask_url(self.url)}'


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
            self._response.close()
            raise SourceError(f'{self.describe()}: not an MJPEG stream (Content-Type '
                              f'{content_type.get_content_type()!r}); for snapshots set snapshot_rate_hz')
        self._parser = MjpegStreamParser(content_type.get_param('boundary', '').encode('latin-1'))

    def _produce(self) -> None:
        while not self._stop.is_set():
            chunk = self._response.read1(CHUNK_BYTES)
            if not chunk:
                raise SourceError(f'{self.describe()}: server closed the stream')
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
