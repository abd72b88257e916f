"""Frame sources: the public API and :func:`open_source`, which picks the source for a URL.

Supported URLs::

    /path/video.mp4, file:///path/video.mp4      video file (realtime / loop from the settings)
    rtsp://host:554/stream                       RTSP H.264/H.265 via OpenCV's FFmpeg backend
    http(s)://host/mjpeg                         MJPEG multipart stream
    http(s)://host/snapshot.jpg                  JPEG snapshots, when settings.snapshot_rate_hz > 0
    https://cam/control/faststream.jpg?stream=full&needlength&fps=10   MOBOTIX live stream (full JPEG)
    https://cam/record/current.jpg               MOBOTIX snapshot (with snapshot_rate_hz > 0)
    /dev/video0, v4l2:///dev/video0?width=1280&height=720&fps=30   USB / V4L2 camera
    dir:///path/images?fps=5                     image files in name order, paced
    testpattern://?width=768&height=576&fps=10   synthetic scene with a walking figure

Credentials never go into the URL in configuration: ``settings.username`` with
``password_env`` or ``password_file`` (see :mod:`credentials`). How links are secured:
:mod:`link_security`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from kaiserslautern_vss.camera.capture_sources import RtspSource, V4l2Source
from kaiserslautern_vss.camera.credentials import mask_url
from kaiserslautern_vss.camera.file_source import VideoFileSource
from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.http_sources import MOBOTIX_FULL_JPEG_HINT, HttpMjpegSource, HttpSnapshotSource
from kaiserslautern_vss.camera.image_directory_source import ImageDirectorySource
from kaiserslautern_vss.camera.pattern_source import TestPatternSource
from kaiserslautern_vss.camera.source_types import (CountingSource, EndOfStream, FrameSource, ProbingSource,
                                                    SourceConfigError, SourceCounters, SourceError,
                                                    SourceSettings)

__all__ = ['CountingSource', 'EndOfStream', 'Frame', 'FrameSource', 'HttpMjpegSource', 'HttpSnapshotSource',
           'ImageDirectorySource', 'ProbingSource', 'RtspSource', 'SourceConfigError', 'SourceCounters',
           'SourceError', 'SourceSettings', 'TestPatternSource', 'V4l2Source', 'VideoFileSource', 'open_source']

SCHEMES = ('file', 'rtsp', 'rtsps', 'http', 'https', 'v4l2', 'dir', 'testpattern')
NETWORK_SCHEMES = ('rtsp', 'rtsps', 'http', 'https')


def _query(query: str, url: str, allowed: set[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for key, text in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise SourceConfigError(f'unknown parameter {key!r} in {mask_url(url)}; allowed: {sorted(allowed)}')
        try:
            values[key] = float(text)
        except ValueError:
            raise SourceConfigError(f'parameter {key!r} in {mask_url(url)} must be a number, got {text!r}') from None
        if values[key] <= 0:
            raise SourceConfigError(f'parameter {key!r} in {mask_url(url)} must be > 0, got {text!r}')
    return values


def _check_mobotix_request(path: str, query: str, url: str, settings: SourceSettings) -> None:
    """MOBOTIX URLs that cannot work are configuration errors, with the URL that does."""
    if path.endswith('/control/faststream.jpg'):
        if ('stream', 'full') not in parse_qsl(query, keep_blank_values=True):
            raise SourceConfigError(f'{mask_url(url)} would deliver MxPEG: {MOBOTIX_FULL_JPEG_HINT}')
        if settings.snapshot_rate_hz > 0:
            raise SourceConfigError(f'{mask_url(url)} is a stream: set snapshot_rate_hz to 0 or use '
                                    f'/record/current.jpg for snapshots')
    if path.endswith('/record/current.jpg') and settings.snapshot_rate_hz <= 0:
        raise SourceConfigError(f'{mask_url(url)} is a snapshot: set snapshot_rate_hz > 0, or stream with '
                                f'/control/faststream.jpg?stream=full&needlength&fps=<rate>')


def open_source(url: str, settings: SourceSettings) -> FrameSource:
    """The (not yet opened) source for ``url``; raises :class:`SourceConfigError` for a bad URL."""
    if not url:
        raise SourceConfigError('empty source URL')
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == '':
        path = url
        scheme = 'v4l2' if path.startswith('/dev/video') else 'file'
    else:
        path = unquote(parts.path)
    size = {'max_width': settings.max_width, 'max_height': settings.max_height}
    if scheme == 'file':
        return VideoFileSource(path, realtime=settings.realtime, loop=settings.loop, **size)
    if scheme in ('rtsp', 'rtsps'):
        return RtspSource(url, settings)
    if scheme in ('http', 'https'):
        _check_mobotix_request(path, parts.query, url, settings)
        return HttpSnapshotSource(url, settings) if settings.snapshot_rate_hz > 0 else HttpMjpegSource(url, settings)
    if scheme == 'v4l2':
        mode = _query(parts.query, url, {'width', 'height', 'fps'})
        return V4l2Source(path, settings, int(mode.get('width', 0)), int(mode.get('height', 0)), mode.get('fps', 0.0))
    if scheme == 'dir':
        rate = _query(parts.query, url, {'fps'}).get('fps', 10.0)
        return ImageDirectorySource(path, rate, realtime=settings.realtime, loop=settings.loop, **size)
    if scheme == 'testpattern':
        mode = _query(parts.query, url, {'width', 'height', 'fps'})
        try:
            return TestPatternSource(int(mode.get('width', 768)), int(mode.get('height', 576)),
                                     mode.get('fps', 10.0), realtime=settings.realtime)
        except ValueError as error:
            raise SourceConfigError(f'{mask_url(url)}: {error}') from None
    raise SourceConfigError(f'unsupported source URL {mask_url(url)}; expected a video path or one of the '
                            f'schemes {", ".join(SCHEMES)}')
