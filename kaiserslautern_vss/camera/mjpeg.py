"""Splitting an MJPEG ``multipart/x-mixed-replace`` byte stream into complete JPEG images.

Cameras get this format wrong in many ways (missing or wrong Content-Length, boundaries with
or without ``--``, no CRLF, junk after a restart, parts cut off when the encoder hiccups). So
the parser does not trust the multipart framing: it finds each JPEG by its SOI marker and its
end by walking the JPEG segment structure to the EOI marker (which also steps over EXIF
thumbnails, whose own EOI would end a naive search too early). A JPEG is released the moment
its last byte arrives, without waiting for the next boundary. Bytes between JPEGs that are not
boundary or header lines are counted as garbage; a JPEG broken off by a new SOI, a boundary or
an impossible segment is counted as corrupt and skipped.
"""

from __future__ import annotations

import re

SOI = b'\xff\xd8\xff'
# A multipart line between two parts: boundary, a header, or empty.
_FRAMING_LINE = re.compile(rb'(--.*|[A-Za-z0-9-]+:.*|)\r?')
MAX_FRAME_BYTES = 32 * 1024 * 1024

_NEED_MORE, _DONE, _CORRUPT = range(3)


class MjpegStreamParser:
    """Feed stream bytes, get complete JPEGs; ``garbage_bytes`` and ``corrupt_parts`` count what was skipped."""

    def __init__(self, boundary: bytes = b'', max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.boundary = b'--' + boundary.removeprefix(b'--') if boundary else b''
        self.max_frame_bytes = max_frame_bytes
        self.garbage_bytes = 0
        self.corrupt_parts = 0
        self._buffer = bytearray()
        self._in_jpeg = False  # the buffer starts with a JPEG's SOI
        self._pos = 0  # where the segment walk resumes
        self._in_scan = False  # the walk is inside entropy-coded data

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        jpegs: list[bytes] = []
        while True:
            if not self._in_jpeg and not self._find_soi():
                break
            status, end = self._walk()
            if status == _NEED_MORE:
                if len(self._buffer) > self.max_frame_bytes:
                    self._skip_broken()
                    continue
                break
            if status == _DONE:
                jpeg = bytes(self._buffer[:end])
                if self.boundary and self.boundary in jpeg:
                    self._skip_broken()  # a part cut short, its scan data ran into the next part
                    continue
                jpegs.append(jpeg)
                del self._buffer[:end]
                self._in_jpeg = False
            else:
                self._skip_broken()
        return jpegs

    def _find_soi(self) -> bool:
        soi = self._buffer.find(SOI)
        if soi < 0:
            keep = len(SOI) - 1  # an SOI may be split across two feeds
            if len(self._buffer) > self.max_frame_bytes:
                self.garbage_bytes += len(self._buffer) - keep
                del self._buffer[:-keep]
            return False
        self._count_garbage(bytes(self._buffer[:soi]))
        del self._buffer[:soi]
        self._in_jpeg, self._pos, self._in_scan = True, 2, False
        return True

    def _count_garbage(self, gap: bytes) -> None:
        self.garbage_bytes += sum(len(line) + 1 for line in gap.split(b'\n')
                                  if not _FRAMING_LINE.fullmatch(line))

    def _skip_broken(self) -> None:
        """Drop the JPEG at the buffer start; the next SOI search starts after its SOI."""
        self.corrupt_parts += 1
        del self._buffer[:2]
        self._in_jpeg = False

    def _walk(self) -> tuple[int, int]:
        """Walk segments from the saved position: (_DONE, end), (_CORRUPT, pos) or (_NEED_MORE, 0)."""
        buf, size, pos = self._buffer, len(self._buffer), self._pos
        while True:
            if self._in_scan:
                # Entropy-coded data: FF00 (stuffing), FFD0-FFD7 (restart) and FFFF (fill) are not markers.
                ff = buf.find(b'\xff', pos)
                while 0 <= ff < size - 1 and (buf[ff + 1] == 0 or 0xD0 <= buf[ff + 1] <= 0xD7 or buf[ff + 1] == 0xFF):
                    ff = buf.find(b'\xff', ff + (1 if buf[ff + 1] == 0xFF else 2))
                if ff < 0 or ff >= size - 1:
                    self._pos = size if ff < 0 else ff
                    return _NEED_MORE, 0
                pos, self._in_scan = ff, False
            if pos + 2 > size:
                self._pos = pos
                return _NEED_MORE, 0
            if buf[pos] != 0xFF:
                return _CORRUPT, pos
            marker = buf[pos + 1]
            if marker == 0xFF:
                pos += 1
            elif marker == 0xD9:
                return _DONE, pos + 2
            elif marker == 0xD8:
                return _CORRUPT, pos
            elif 0xD0 <= marker <= 0xD7 or marker == 0x01:
                pos += 2
            else:
                if pos + 4 > size:
                    self._pos = pos
                    return _NEED_MORE, 0
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                if length < 2:
                    return _CORRUPT, pos
                if pos + 2 + length > size:
                    self._pos = pos
                    return _NEED_MORE, 0
                pos += 2 + length
                self._in_scan = marker == 0xDA
