"""A directory of still images (commissioning shots, exported frames) played as a camera."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.imaging import as_bgr, fit_to_max_size
from kaiserslautern_vss.camera.pacing import FramePacer
from kaiserslautern_vss.camera.source_types import EndOfStream, SourceCounters, SourceError

IMAGE_SUFFIXES = frozenset({'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm'})


class ImageDirectorySource:
    """The directory's images in file-name order, at ``rate_hz`` (``realtime``) or as fast as possible.

    Unreadable files are skipped and counted as corrupt.
    """

    def __init__(self, directory: str | Path, rate_hz: float = 10.0, realtime: bool = True, loop: bool = False,
                 *, max_width: int = 0, max_height: int = 0) -> None:
        if rate_hz <= 0:
            raise ValueError(f'rate_hz must be > 0, got {rate_hz}')
        self.directory = Path(directory)
        self.rate_hz, self.realtime, self.loop = rate_hz, realtime, loop
        self.max_width, self.max_height = max_width, max_height
        self._files: list[Path] = []
        self._next = 0
        self._pacer: FramePacer | None = None
        self._counters = SourceCounters()

    def open(self) -> None:
        if not self.directory.is_dir():
            raise SourceError(f'image directory not found: {self.directory}')
        self._files = sorted(p for p in self.directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in {self.directory}')
        self._next = 0
        self._pacer = FramePacer(self.rate_hz) if self.realtime else None

    def read(self, timeout_s: float) -> Frame | None:
        if not self._files:
            raise SourceError(f'{self.describe()} is not open')
        if self._pacer is not None and not self._pacer.wait_next(timeout_s):
            return None
        for _ in range(len(self._files)):
            if self._next == len(self._files):
                if not self.loop:
                    raise EndOfStream(f'end of {self.directory} after {self._counters.frames} images')
                self._next = 0
            image = cv2.imread(str(self._files[self._next]), cv2.IMREAD_COLOR)
            self._next += 1
            if image is not None:
                frame = Frame(fit_to_max_size(as_bgr(image), self.max_width, self.max_height), time.time_ns(),
                              self._counters.frames)
                self._counters.frames += 1
                return frame
            self._counters.corrupt_frames += 1
        raise SourceError(f'no readable image in {self.directory}')

    def close(self) -> None:
        self._files = []

    def counters(self) -> SourceCounters:
        return SourceCounters(**vars(self._counters))

    def describe(self) -> str:
        pace = f'{self.rate_hz:g} images/s' if self.realtime else 'as fast as possible'
        return f'image directory {self.directory} ({len(self._files)} images, {pace}{", looping" if self.loop else ""})'
