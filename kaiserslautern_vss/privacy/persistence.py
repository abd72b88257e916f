"""Keeps masks in place for a few frames after a detection drops out, so a miss shows no face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..detection.types import UNTRACKED
from .errors import PrivacyConfigError, PrivacyInputError
from .regions import as_boxes, expand_boxes

# Held boxes grow with every frame they are not confirmed, covering where the person may
# have moved to (on top of moving with the track's last velocity).
DEFAULT_GROWTH_PER_FRAME = 0.1
# A held untracked box is replaced by a current box covering this much of it.
SUPERSEDED_COVERAGE = 0.7


@dataclass
class _TrackMemory:
    box: np.ndarray
    velocity: np.ndarray
    last_frame: int


class MaskMemory:
    """Boxes to mask now: the current ones plus those lost within ``hold_frames`` frames.

    Tracked boxes (id >= 0) are held per track, stretched along the track's last velocity;
    untracked boxes are held until a current box covers them or ``hold_frames`` pass.
    """

    def __init__(self, hold_frames: int, growth_per_frame: float = DEFAULT_GROWTH_PER_FRAME) -> None:
        if hold_frames < 0:
            raise PrivacyConfigError(f'hold_frames must be 0 or more, got {hold_frames}')
        if growth_per_frame < 0:
            raise PrivacyConfigError(f'growth_per_frame must be 0 or more, got {growth_per_frame}')
        self.hold_frames = hold_frames
        self.growth_per_frame = growth_per_frame
        self.reset()

    def reset(self) -> None:
        """Forgets every held box (for a new stream whose frames do not follow the last)."""
        self._frame = 0
        self._tracks: dict[int, _TrackMemory] = {}
        self._untracked_boxes = np.zeros((0, 4), np.float32)
        self._untracked_frames = np.zeros(0, np.int64)

    def update(self, boxes: np.ndarray, track_ids: np.ndarray) -> np.ndarray:
        """Records this frame's boxes and returns every box to mask in it (N, 4)."""
        boxes = as_boxes(boxes)
        track_ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if len(track_ids) != len(boxes):
            raise PrivacyInputError(f'got {len(boxes)} boxes but {len(track_ids)} track ids')
        self._frame += 1
        tracked = track_ids != UNTRACKED
        self._remember_tracks(boxes[tracked], track_ids[tracked])
        held_untracked = self._hold_untracked(boxes, boxes[~tracked])
        return np.vstack([boxes, self._held_tracks(), held_untracked]).astype(np.float32)

    def _remember_tracks(self, boxes: np.ndarray, track_ids: np.ndarray) -> None:
        for box, track_id in zip(boxes, track_ids.tolist()):
            previous = self._tracks.get(track_id)
            velocity = (np.zeros(4, np.float32) if previous is None
                        else (box - previous.box) / (self._frame - previous.last_frame))
            self._tracks[track_id] = _TrackMemory(box.copy(), velocity, self._frame)
        self._tracks = {track_id: memory for track_id, memory in self._tracks.items()
                        if self._frame - memory.last_frame <= self.hold_frames}

    def _held_tracks(self) -> np.ndarray:
        lost = [memory for memory in self._tracks.values() if memory.last_frame < self._frame]
        if not lost:
            return np.zeros((0, 4), np.float32)
        ages = np.array([self._frame - memory.last_frame for memory in lost], np.float32)
        last = np.stack([memory.box for memory in lost])
        moved = last + np.stack([memory.velocity for memory in lost]) * ages[:, None]
        # Cover both where the person would be if they kept going and where they stopped.
        swept = np.hstack([np.minimum(last[:, :2], moved[:, :2]), np.maximum(last[:, 2:], moved[:, 2:])])
        return expand_boxes(swept, 1.0 + self.growth_per_frame * ages, None)

    def _hold_untracked(self, current_boxes: np.ndarray, new_untracked: np.ndarray) -> np.ndarray:
        """Held untracked boxes still to mask; afterwards this frame's untracked boxes are kept."""
        ages = self._frame - self._untracked_frames
        still_held = (ages <= self.hold_frames) & ~_covered(self._untracked_boxes, current_boxes)
        held_boxes, held_frames = self._untracked_boxes[still_held], self._untracked_frames[still_held]
        self._untracked_boxes = np.vstack([held_boxes, new_untracked])
        self._untracked_frames = np.concatenate(
            [held_frames, np.full(len(new_untracked), self._frame, np.int64)])
        return expand_boxes(held_boxes, 1.0 + self.growth_per_frame * (self._frame - held_frames), None)


def _covered(held: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Which held boxes a single current box covers by at least :data:`SUPERSEDED_COVERAGE`."""
    if len(held) == 0 or len(current) == 0:
        return np.zeros(len(held), bool)
    top_left = np.maximum(held[:, None, :2], current[None, :, :2])
    bottom_right = np.minimum(held[:, None, 2:], current[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    held_area = np.prod(np.clip(held[:, 2:] - held[:, :2], 1e-6, None), axis=1)
    return (intersection / held_area[:, None] >= SUPERSEDED_COVERAGE).any(axis=1)
