"""What every frame source offers, its errors and its settings (no implementations here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kaiserslautern_vss.camera.frame import Frame

#: RTP interleaved in the RTSP connection only: over UDP the camera sends to the host's LAN
#: address, and FFmpeg binds its RTP/RTCP sockets to every interface to receive it
RTSP_TRANSPORTS = ('tcp',)


class SourceError(RuntimeError):
    """The source is broken (cannot open, connection lost, undecodable stream)."""


class AuthenticationError(SourceError):
    """The camera rejected the credentials; retried only a few times per window (cameras lock users out)."""


class InsecureLinkError(SourceError):
    """Refused before any secret was sent: Basic authentication over a plain link, or a certificate that
    does not match the site CA or the pinned fingerprint."""


class EndOfStream(Exception):
    """A finite source (file, image directory) has no more frames."""


class SourceConfigError(ValueError):
    """A source URL or setting is invalid."""


@runtime_checkable
class FrameSource(Protocol):
    def open(self) -> None:
        """Connect / open; raises :class:`SourceError` when that fails."""

    def read(self, timeout_s: float) -> Frame | None:
        """The next (for live sources: the newest) frame, or None when none came within ``timeout_s``.

        Raises :class:`SourceError` on a broken source, :class:`EndOfStream` at the end of a finite one.
        """

    def close(self) -> None:
        """Release everything; safe to call twice or without :meth:`open`."""

    def describe(self) -> str:
        """Human-readable description for logs, never containing credentials."""


@dataclass
class SourceCounters:
    """Per-source health counters (reset when the source object is recreated)."""

    frames: int = 0
    dropped_frames: int = 0  # decoded or received but replaced by a newer one before anyone read it
    skipped_frames: int = 0  # deliberately not decoded to honour max_fps
    corrupt_frames: int = 0  # truncated or undecodable parts
    garbage_bytes: int = 0  # bytes in a stream that belonged to no frame
    clock_offset_s: float | None = None  # camera clock minus host clock (e.g. from HTTP Date), None: unknown


@runtime_checkable
class CountingSource(Protocol):
    def counters(self) -> SourceCounters:
        """A snapshot of the source's counters."""


@runtime_checkable
class ProbingSource(Protocol):
    def probe(self, timeout_s: float) -> bool:
        """Cheap reachability check of the server (TCP connect), usable while closed."""


@dataclass(frozen=True)
class SourceSettings:
    """How a source is opened and read; one object for every kind of source.

    ``max_width``/``max_height`` bound the output size (0 = native): larger images are scaled
    down keeping the aspect ratio, JPEGs already while decoding (cheaper). ``max_fps`` (0 = all)
    makes live sources skip decoding of frames beyond that rate. The password is never given
    here in clear: it comes from the environment variable ``password_env`` or the file
    ``password_file``. Links are checked by :mod:`link_security`: certificates against
    ``tls_ca_file`` or the pinned ``tls_fingerprint``, Basic authentication over a plain link
    refused unless ``allow_basic_over_plain``.
    """

    realtime: bool = True
    loop: bool = False
    rtsp_transport: str = 'tcp'
    snapshot_rate_hz: float = 0.0
    max_width: int = 0
    max_height: int = 0
    max_fps: float = 0.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    username: str = ''
    password_env: str = ''
    password_file: str = ''
    tls_ca_file: str = ''  # https/rtsps: verify against this CA bundle ('' and no fingerprint: system CAs)
    tls_fingerprint: str = ''  # https/rtsps: accept exactly the certificate with this SHA-256 fingerprint
    allow_basic_over_plain: bool = False  # let Basic authentication travel over unencrypted http/rtsp

    def __post_init__(self) -> None:
        if self.rtsp_transport not in RTSP_TRANSPORTS:
            raise SourceConfigError(
                f'rtsp_transport must be one of {RTSP_TRANSPORTS}, got {self.rtsp_transport!r}')
        for name in ('snapshot_rate_hz', 'max_fps'):
            if getattr(self, name) < 0:
                raise SourceConfigError(f'{name} must be >= 0, got {getattr(self, name)}')
        for name in ('max_width', 'max_height'):
            if getattr(self, name) < 0:
                raise SourceConfigError(f'{name} must be >= 0 (0 = native size), got {getattr(self, name)}')
        for name in ('open_timeout_s', 'read_timeout_s'):
            if getattr(self, name) <= 0:
                raise SourceConfigError(f'{name} must be > 0, got {getattr(self, name)}')
        if self.password_env and self.password_file:
            raise SourceConfigError('give either password_env or password_file, not both')
