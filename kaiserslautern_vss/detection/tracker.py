"""ByteTrack-style multi-object tracking: Kalman prediction, two-stage IoU association.

Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box" (ECCV 2022):
confident detections are matched to tracks first; weak ones (often occluded people) are then
used only to continue tracks that would otherwise be lost, never to start tracks. Matching is
per class, so a person's track never continues on a bag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from kaiserslautern_vss.detection.nms import pairwise_iou
from kaiserslautern_vss.detection.types import UNTRACKED, Detections

# The Kalman noise weights below are ByteTrack's, tuned per frame at 30 fps; variances are
# scaled by the real time step so dropped or skipped frames are handled.
REFERENCE_FRAME_S = 1.0 / 30.0
_FORBIDDEN = 1e4  # assignment cost of pairs that must not match


class TrackerError(ValueError):
    """Invalid tracker settings or input."""


@dataclass(frozen=True)
class TrackerSettings:
    """``high_score``: detections at or above it are matched first and may start tracks (from
    ``new_track_score``); those in [``low_score``, ``high_score``) only continue tracks. A new
    track gets its id after ``confirm_hits`` matched frames; an unmatched one is kept (lost)
    for ``max_lost_s`` seconds for re-identification."""

    # ByteTrack's 0.5 / 0.6 suit YOLOX-X; YOLOX-Nano scores real people lower.
    high_score: float = 0.45
    low_score: float = 0.1
    new_track_score: float = 0.5
    match_iou_high: float = 0.2
    match_iou_low: float = 0.5
    match_iou_unconfirmed: float = 0.3
    confirm_hits: int = 2
    max_lost_s: float = 1.0
    position_noise: float = 1.0 / 20.0
    velocity_noise: float = 1.0 / 160.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise TrackerError(f'need 0 <= low_score <= high_score <= 1, got low_score='
                               f'{self.low_score}, high_score={self.high_score}')
        if not self.high_score <= self.new_track_score <= 1.0:
            raise TrackerError(f'new_track_score must be in [high_score, 1], got {self.new_track_score}')
        for name in ('match_iou_high', 'match_iou_low', 'match_iou_unconfirmed'):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise TrackerError(f'{name} must be in (0, 1], got {getattr(self, name)}')
        if self.confirm_hits < 1:
            raise TrackerError(f'confirm_hits must be >= 1, got {self.confirm_hits}')
        if self.max_lost_s < 0:
            raise TrackerError(f'max_lost_s must be >= 0, got {self.max_lost_s}')
        if self.position_noise <= 0 or self.velocity_noise <= 0:
            raise TrackerError('position_noise and velocity_noise must be > 0, got '
                               f'{self.position_noise} and {self.velocity_noise}')


class _Track:
    """One object's constant-velocity Kalman state over (cx, cy, w, h) and its bookkeeping."""

    def __init__(self, box: np.ndarray, label: str, stamp_s: float, settings: TrackerSettings) -> None:
        centre_size = _centre_size(box)
        height = centre_size[3]
        per_second = 1.0 / REFERENCE_FRAME_S
        self.mean = np.concatenate((centre_size, np.zeros(4)))
        self.covariance = np.diag(np.square(np.concatenate((
            np.full(4, 2 * settings.position_noise * height),
            np.full(4, 10 * settings.velocity_noise * height * per_second)))))
        self.label = label
        self.track_id = UNTRACKED
        self.hits = 1
        self.last_seen_s = stamp_s
        self.lost = False

    @property
    def confirmed(self) -> bool:
        return self.track_id != UNTRACKED

    @property
    def box(self) -> np.ndarray:
        cx, cy, w, h = self.mean[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _centre_size(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]],
                    dtype=np.float64)


def _associate(tracks: list[_Track], detections: Detections, candidates: np.ndarray,
               min_iou: float) -> tuple[list[tuple[_Track, int]], list[_Track], np.ndarray]:
    """Best one-to-one IoU matching of ``tracks`` to the detection indices ``candidates``, same
    class only, IoU at least ``min_iou``. Returns matches, unmatched tracks, unmatched indices."""
    if not tracks or len(candidates) == 0:
        return [], list(tracks), candidates
    iou = pairwise_iou(np.array([track.box for track in tracks]), detections.boxes[candidates])
    same_class = (np.array([track.label for track in tracks])[:, None]
                  == np.array([detections.labels[i] for i in candidates])[None, :])
    allowed = same_class & (iou >= min_iou)
    rows, columns = linear_sum_assignment(np.where(allowed, 1.0 - iou, _FORBIDDEN))
    matched = allowed[rows, columns]
    rows, columns = rows[matched], columns[matched]
    matched_rows = set(rows.tolist())
    return ([(tracks[row], int(candidates[column])) for row, column in zip(rows, columns)],
            [track for index, track in enumerate(tracks) if index not in matched_rows],
            np.delete(candidates, columns))


class MultiObjectTracker:
    """Gives detections persistent ids across frames of one camera. Not thread-safe: one
    tracker per camera stream, updated in frame order."""

    def __init__(self, settings: TrackerSettings = TrackerSettings()) -> None:
        self._settings = settings
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_stamp_s: float | None = None

    @property
    def alive_track_count(self) -> int:
        """Tracks still held: confirmed, tentative and recently lost ones."""
        return len(self._tracks)

    def update(self, detections: Detections, stamp_s: float) -> Detections:
        """Every one of the frame's detections, with ``track_ids`` set: confirmed tracks' ids,
        ``UNTRACKED`` for the rest. Nothing is dropped: a person the tracker cannot place must
        still reach the privacy node to be masked. ``stamp_s`` must not go backwards."""
        if self._last_stamp_s is not None and stamp_s < self._last_stamp_s:
            raise TrackerError(f'frame stamp {stamp_s} s is before the previous one '
                               f'({self._last_stamp_s} s); create a new tracker after a clock reset')
        self._predict(0.0 if self._last_stamp_s is None else stamp_s - self._last_stamp_s)
        self._last_stamp_s = stamp_s
        settings = self._settings
        high = np.flatnonzero(detections.scores >= settings.high_score)
        low = np.flatnonzero((detections.scores >= settings.low_score)
                             & (detections.scores < settings.high_score))

        confirmed = [track for track in self._tracks if track.confirmed]
        tentative = [track for track in self._tracks if not track.confirmed]
        matches, unmatched_confirmed, high = _associate(confirmed, detections, high,
                                                        settings.match_iou_high)
        still_tracked = [track for track in unmatched_confirmed if not track.lost]
        low_matches, _, _ = _associate(still_tracked, detections, low, settings.match_iou_low)
        tentative_matches, _, high = _associate(tentative, detections, high,
                                                settings.match_iou_unconfirmed)
        all_matches = matches + low_matches + tentative_matches
        self._correct(all_matches, detections, stamp_s)

        matched_tracks = {id(track) for track, _ in all_matches}
        for track in confirmed:
            track.lost = id(track) not in matched_tracks
        starters = high[detections.scores[high] >= settings.new_track_score]
        new_tracks = [_Track(detections.boxes[index], detections.labels[index], stamp_s, settings)
                      for index in starters]
        self._tracks = [track for track in confirmed
                        if stamp_s - track.last_seen_s <= settings.max_lost_s]
        self._tracks += [track for track, _ in tentative_matches] + new_tracks
        for track in new_tracks:
            self._confirm_if_due(track)

        track_ids = np.full(len(detections), UNTRACKED, dtype=np.int64)
        for track, index in all_matches:
            track_ids[index] = track.track_id
        for track, index in zip(new_tracks, starters):
            track_ids[index] = track.track_id
        return Detections(detections.boxes, detections.scores, detections.labels, track_ids)

    def _predict(self, dt_s: float) -> None:
        if not self._tracks or dt_s == 0.0:
            return
        transition = np.eye(8)
        transition[:4, 4:] = dt_s * np.eye(4)
        means = np.stack([track.mean for track in self._tracks])
        covariances = np.stack([track.covariance for track in self._tracks])
        heights = means[:, 3:4]
        steps = dt_s / REFERENCE_FRAME_S
        noise = np.square(np.concatenate((
            np.repeat(self._settings.position_noise * heights, 4, axis=1),
            np.repeat(self._settings.velocity_noise * heights / REFERENCE_FRAME_S, 4, axis=1)),
            axis=1)) * steps
        means = means @ transition.T
        covariances = transition @ covariances @ transition.T
        covariances[:, np.arange(8), np.arange(8)] += noise
        for track, mean, covariance in zip(self._tracks, means, covariances):
            track.mean, track.covariance = mean, covariance

    def _correct(self, matches: list[tuple[_Track, int]], detections: Detections, stamp_s: float) -> None:
        if not matches:
            return
        means = np.stack([track.mean for track, _ in matches])
        covariances = np.stack([track.covariance for track, _ in matches])
        measured = np.stack([_centre_size(detections.boxes[index]) for _, index in matches])
        measurement_noise = np.square(self._settings.position_noise * means[:, 3:4]) * np.ones((1, 4))
        innovation_cov = covariances[:, :4, :4].copy()
        innovation_cov[:, np.arange(4), np.arange(4)] += measurement_noise
        # Kalman gain K = P H^T S^-1 with H selecting the first four states; S is symmetric.
        gain = np.linalg.solve(innovation_cov, covariances[:, :4, :]).transpose(0, 2, 1)
        means = means + np.einsum('tij,tj->ti', gain, measured - means[:, :4])
        covariances = covariances - gain @ covariances[:, :4, :]
        for (track, _), mean, covariance in zip(matches, means, covariances):
            track.mean, track.covariance = mean, covariance
            track.last_seen_s = stamp_s
            track.hits += 1
            track.lost = False
            self._confirm_if_due(track)

    def _confirm_if_due(self, track: _Track) -> None:
        if not track.confirmed and track.hits >= self._settings.confirm_hits:
            track.track_id = self._next_id
            self._next_id += 1
