"""Video files (commissioning, replays) as frame sources, paced like a live camera or as fast as possible."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2

from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.imaging import as_bgr, fit_to_max_size
from kaiserslautern_vss.camera.pacing import FramePacer
from kaiserslautern_vss.camera.source_types import EndOfStream, SourceCounters, SourceError

# Containers without a frame rate in their header still need some pace.
FALLBACK_FPS = 25.0


class VideoFileSource:
    """Frames of a video file through OpenCV's FFmpeg backend.

    ``realtime``: frame ``i`` is released at ``i / fps`` after the first (no drift; when the
    consumer is behind, no sleeping at all); otherwise as fast as decoding allows. At the end
    of the file: rewind when ``loop``, else :class:`EndOfStream`.
    """

    def __init__(self, path: str | Path, realtime: bool = True, loop: bool = False, *,
                 max_width: int = 0, max_height: int = 0) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self.max_width = max_width
        self.max_height = max_height
        self._capture: cv2.VideoCapture | None = None
        self._pacer: FramePacer | None = None
        self._fps = 0.0
        self._size = (0, 0)
        self._counters = SourceCounters()
        self._lock = threading.Lock()

    @property
    def fps(self) -> float:
        """The file's frame rate (valid after :meth:`open`)."""
        return self._fps

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f'video file not found: {self.path}')
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            raise SourceError(f'cannot decode video file {self.path} (not a video OpenCV/FFmpeg can read)')
        fps = capture.get(cv2.CAP_PROP_FPS)
        self._fps = fps if fps and fps > 0 and fps == fps else FALLBACK_FPS
        self._size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._pacer = FramePacer(self._fps) if self.realtime else None
        with self._lock:
            self._capture = capture

    def read(self, timeout_s: float) -> Frame | None:
        if self._capture is None:
            raise SourceError(f'{self.describe()} is not open')
        if self._pacer is not None and not self._pacer.wait_next(timeout_s):
            return None
        with self._lock:
            ok, image = self._capture.read()
            if not ok and self.loop:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._capture.read()
                if not ok:
                    raise SourceError(f'{self.describe()}: no frame after rewinding')
        if not ok:
            raise EndOfStream(f'end of {self.path} after {self._counters.frames} frames')
        frame = Frame(fit_to_max_size(as_bgr(image), self.max_width, self.max_height), time.time_ns(),
                      self._counters.frames)
        self._counters.frames += 1
        return frame

    def close(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None

    def counters(self) -> SourceCounters:
        return SourceCounters(**vars(self._counters))

    def describe(self) -> str:
        # Size and rate are known once opened; before that the description says less.
        size = f'{self._size[0]}x{self._size[1]}, ' if self._size[0] else ''
        pace = 'as fast as possible' if not self.realtime else f'realtime at {self._fps:g} fps' if self._fps \
            else 'realtime'
        return f'video file {self.path} ({size}{pace}{", looping" if self.loop else ""})'
