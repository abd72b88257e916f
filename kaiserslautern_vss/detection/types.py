"""The one in-memory form of detections shared by detector, tracker, privacy and rules."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNTRACKED = -1


@dataclass(frozen=True)
class Detections:
    """Objects found in one image, in that image's pixel coordinates.

    ``boxes`` are ``x1, y1, x2, y2`` (float32, shape (N, 4)); ``labels`` the class names;
    ``track_ids`` the tracker's ids, :data:`UNTRACKED` where no tracker assigned one.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]
    track_ids: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        track_ids = (np.full(len(boxes), UNTRACKED, dtype=np.int64) if self.track_ids is None
                     else np.asarray(self.track_ids, dtype=np.int64).reshape(-1))
        if not (len(boxes) == len(scores) == len(self.labels) == len(track_ids)):
            raise ValueError(
                f'Detections fields disagree in length: boxes={len(boxes)}, scores={len(scores)}, '
                f'labels={len(self.labels)}, track_ids={len(track_ids)}')
        object.__setattr__(self, 'boxes', boxes)
        object.__setattr__(self, 'scores', scores)
        object.__setattr__(self, 'labels', tuple(self.labels))
        object.__setattr__(self, 'track_ids', track_ids)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), ())

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, keep: np.ndarray) -> Detections:
        """The subset given by a boolean mask or an index array, order preserved."""
        index = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, np.int64)
        return Detections(self.boxes[index], self.scores[index],
                          tuple(self.labels[i] for i in index), self.track_ids[index])

    def of_class(self, *names: str) -> Detections:
        wanted = set(names)
        return self.select(np.array([label in wanted for label in self.labels], dtype=bool))
