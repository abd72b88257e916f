"""Pairs each camera frame with the detections of the same capture stamp, or gives it up.

ROS-free: frames and detections are opaque payloads keyed by their capture stamp in
nanoseconds, time is passed in. Every frame handed in comes out exactly once, either
paired with its detections or with the reason it never will be, so the caller can mask it
properly or fail closed. The detector publishes in frame order and may skip frames when
busy; a detection for a later stamp therefore means every older waiting frame was skipped.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

FrameT = TypeVar('FrameT')
DetectionsT = TypeVar('DetectionsT')


class Unpaired(str, Enum):
    """Why a frame leaves without detections."""
    SKIPPED = 'detector skipped this frame'
    DEADLINE = 'no detections within the deadline'
    OVERFLOW = 'too many frames waiting for detections'


@dataclass(frozen=True)
class Resolved(Generic[FrameT, DetectionsT]):
    """A frame's outcome: ``detections`` when paired, else ``reason`` says why not."""
    stamp_ns: int
    frame: FrameT
    detections: DetectionsT | None = None
    reason: Unpaired | None = None


class FramePairer(Generic[FrameT, DetectionsT]):
    """Frames of one camera waiting for their detections, and detections waiting for frames.

    ``deadline_s`` is how long a frame may wait (from its arrival); ``max_pending`` bounds
    both queues so a stalled partner cannot grow memory. Detections that come after their
    frame was given up are counted in :attr:`late_detections` and dropped.
    """

    def __init__(self, deadline_s: float, max_pending: int = 30) -> None:
        if deadline_s <= 0:
            raise ValueError(f'deadline_s must be positive, got {deadline_s}')
        if max_pending < 1:
            raise ValueError(f'max_pending must be at least 1, got {max_pending}')
        self.deadline_s = deadline_s
        self.max_pending = max_pending
        self._frames: OrderedDict[int, tuple[FrameT, float]] = OrderedDict()
        self._detections: OrderedDict[int, DetectionsT] = OrderedDict()
        # Stamps at or below this were resolved already (or are older than one that was).
        self._resolved_up_to = -1
        self.late_detections = 0

    @property
    def waiting_frames(self) -> int:
        return len(self._frames)

    def add_frame(self, stamp_ns: int, frame: FrameT, now_s: float) -> list[Resolved[FrameT, DetectionsT]]:
        """Frames resolved by this arrival, oldest first (often just this one, or none)."""
        if stamp_ns in self._detections:
            detections = self._detections.pop(stamp_ns)
            return self._skip_older_than(stamp_ns) + [self._resolve(stamp_ns, frame, detections)]
        if stamp_ns <= self._resolved_up_to or any(stamp > stamp_ns for stamp in self._detections):
            # The detector already answered a later frame: this one will get nothing.
            return [self._resolve(stamp_ns, frame, reason=Unpaired.SKIPPED)]
        self._frames[stamp_ns] = (frame, now_s)
        resolved = []
        while len(self._frames) > self.max_pending:
            old_stamp, (old_frame, _) = self._frames.popitem(last=False)
            resolved.append(self._resolve(old_stamp, old_frame, reason=Unpaired.OVERFLOW))
        return resolved

    def add_detections(self, stamp_ns: int, detections: DetectionsT) -> list[Resolved[FrameT, DetectionsT]]:
        """Frames resolved by this arrival: skipped older ones, then the matching one if waiting."""
        if stamp_ns not in self._frames and stamp_ns <= self._resolved_up_to:
            self.late_detections += 1
            return []
        resolved = self._skip_older_than(stamp_ns)
        waiting = self._frames.pop(stamp_ns, None)
        if waiting is not None:
            return resolved + [self._resolve(stamp_ns, waiting[0], detections)]
        self._detections[stamp_ns] = detections
        while len(self._detections) > self.max_pending:
            self._detections.popitem(last=False)
        return resolved

    def expire(self, now_s: float) -> list[Resolved[FrameT, DetectionsT]]:
        """Frames that have waited ``deadline_s`` or longer, given up."""
        resolved = []
        while self._frames:
            stamp, (frame, arrival_s) = next(iter(self._frames.items()))
            if now_s - arrival_s < self.deadline_s:
                break
            del self._frames[stamp]
            resolved.append(self._resolve(stamp, frame, reason=Unpaired.DEADLINE))
        return resolved

    def _skip_older_than(self, stamp_ns: int) -> list[Resolved[FrameT, DetectionsT]]:
        resolved = []
        for old_stamp in sorted(stamp for stamp in self._frames if stamp < stamp_ns):
            old_frame, _ = self._frames.pop(old_stamp)
            resolved.append(self._resolve(old_stamp, old_frame, reason=Unpaired.SKIPPED))
        for old_stamp in [stamp for stamp in self._detections if stamp < stamp_ns]:
            del self._detections[old_stamp]  # their frames never came (lost on the way)
        return resolved

    def _resolve(self, stamp_ns: int, frame: FrameT, detections: DetectionsT | None = None,
                 reason: Unpaired | None = None) -> Resolved[FrameT, DetectionsT]:
        self._resolved_up_to = max(self._resolved_up_to, stamp_ns)
        return Resolved(stamp_ns, frame, detections, reason)
