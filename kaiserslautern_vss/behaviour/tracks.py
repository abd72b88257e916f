"""What the cues measure on: each tracked person's recent boxes and poses over time, and
stationary vehicles by place.

Every measure is normalised by the person's own body height (image size, camera distance and
frame rate drop out): speeds are body heights per second, distances body heights. Frames may
come at any rate and with gaps; a measure spans the real time between its two observations and
skips pairs too far apart to mean one movement.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from kaiserslautern_vss.detection.nms import pairwise_iou
from kaiserslautern_vss.detection.types import UNTRACKED, Detections

VEHICLE_LABELS = frozenset({'car', 'truck', 'bus', 'motorcycle', 'bicycle'})
#: a body's height from its torso (shoulder centre to hip centre), standing adult proportions
HEIGHT_PER_TORSO = 3.3
#: keypoints trusted below this MoveNet confidence are ignored
MIN_KEYPOINT_SCORE = 0.3
#: two observations further apart than this are not one movement (a gap, a skipped pose)
MAX_STEP_S = 0.6
COLLAPSE_RATIO = 0.7
_SHOULDERS, _HIPS = (5, 6), (11, 12)
#: wrists and ankles, each with its left/right counterpart (MoveNet swaps sides at times)
LIMB_ENDS = (9, 10, 15, 16)
_MIRROR = {9: 10, 10: 9, 15: 16, 16: 15}


@dataclass(frozen=True)
class Observation:
    stamp_s: float
    box: np.ndarray  # x1, y1, x2, y2
    keypoints: np.ndarray | None  # (17, 3) when a pose was estimated on this frame

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])


def torso_centre(keypoints: np.ndarray) -> np.ndarray | None:
    joints = keypoints[list(_SHOULDERS + _HIPS)]
    trusted = joints[joints[:, 2] >= MIN_KEYPOINT_SCORE]
    return trusted[:, :2].mean(axis=0) if len(trusted) >= 2 else None


def torso_axis(keypoints: np.ndarray) -> np.ndarray | None:
    """Hip centre to shoulder centre (pixels) when at least one shoulder and one hip are seen."""
    shoulders, hips = keypoints[list(_SHOULDERS)], keypoints[list(_HIPS)]
    if min(shoulders[:, 2].max(), hips[:, 2].max()) < MIN_KEYPOINT_SCORE:
        return None
    top = shoulders[shoulders[:, 2] >= MIN_KEYPOINT_SCORE, :2].mean(axis=0)
    bottom = hips[hips[:, 2] >= MIN_KEYPOINT_SCORE, :2].mean(axis=0)
    return top - bottom


def torso_height(keypoints: np.ndarray) -> float | None:
    """Body height from the torso length."""
    axis = torso_axis(keypoints)
    return float(np.linalg.norm(axis)) * HEIGHT_PER_TORSO if axis is not None else None


class PersonTrack:
    """One person's observations over the last ``history_s`` seconds."""

    def __init__(self, track_id: int, history_s: float) -> None:
        self.track_id = track_id
        self.observations: deque[Observation] = deque()
        self._history_s = history_s
        self.last_pose_s = -np.inf
        self._height = 1.0
        self._torso_height = 0.0
        #: (stamp_s, box-centre speed) per observation that followed another closely enough
        self._steps: deque[tuple[float, float]] = deque()
        #: (stamp_s, limb speed) per posed observation that followed another closely enough
        self._limb_speeds: deque[tuple[float, float]] = deque()

    def add(self, observation: Observation) -> None:
        """A new frame's box (no pose yet: :meth:`attach_pose` gives it one)."""
        previous = self.observations[-1] if self.observations else None
        self.observations.append(observation)
        start = observation.stamp_s - self._history_s
        while self.observations[0].stamp_s < start:
            self.observations.popleft()
        for readings in (self._limb_speeds, self._steps):
            while readings and readings[0][0] < start:
                readings.popleft()
        heights = sorted(o.height for o in self.observations)
        self._height = max(heights[(3 * (len(heights) - 1)) // 4], self._torso_height, 1.0)
        if previous is not None and 0 < observation.stamp_s - previous.stamp_s <= MAX_STEP_S:
            moved = float(np.linalg.norm(observation.centre - previous.centre))
            self._steps.append((observation.stamp_s,
                                moved / self._height / (observation.stamp_s - previous.stamp_s)))

    def attach_pose(self, keypoints: np.ndarray) -> None:
        """Gives the latest observation the pose estimated on its frame."""
        latest = self.observations.pop()
        previous = next((o for o in reversed(self.observations) if o.keypoints is not None), None)
        self.observations.append(Observation(latest.stamp_s, latest.box, keypoints))
        self.last_pose_s = latest.stamp_s
        self._torso_height = torso_height(keypoints) or 0.0
        self._height = max(self._height, self._torso_height)
        if previous is not None and 0 < latest.stamp_s - previous.stamp_s <= MAX_STEP_S:
            speed = _limb_speed(previous.keypoints, keypoints, latest.stamp_s - previous.stamp_s)
            if speed is not None:
                self._limb_speeds.append((latest.stamp_s, speed / self._height))

    @property
    def latest(self) -> Observation:
        return self.observations[-1]

    def body_height(self) -> float:
        """Robust standing height in pixels: the upper quartile of recent box heights (a person
        who crouches or falls keeps the height they had), or the torso-based height if larger."""
        return self._height

    def since(self, stamp_s: float) -> list[Observation]:
        return [o for o in self.observations if o.stamp_s >= stamp_s]

    def speed(self, window_s: float) -> float | None:
        """Box-centre speed over about the last ``window_s`` seconds, body heights per second."""
        recent = self.since(self.latest.stamp_s - window_s)
        if len(recent) < 2 or recent[-1].stamp_s - recent[0].stamp_s < window_s / 2:
            return None
        dt = recent[-1].stamp_s - recent[0].stamp_s
        return float(np.linalg.norm(recent[-1].centre - recent[0].centre)) / self._height / dt

    def speeds(self, window_s: float) -> list[tuple[float, float]]:
        """``(stamp_s, speed)`` of each consecutive pair of observations in the window (body
        heights per second, as the body height was then)."""
        start = self.latest.stamp_s - window_s
        return [reading for reading in self._steps if reading[0] > start]

    def limb_speeds(self, window_s: float) -> list[tuple[float, float]]:
        """``(stamp_s, speed)`` per consecutive pair of posed observations in the window: the
        fastest wrist or ankle relative to the torso centre, body heights per second."""
        start = self.latest.stamp_s - window_s
        return [reading for reading in self._limb_speeds if reading[0] >= start]


def _limb_speed(before: np.ndarray, after: np.ndarray, dt_s: float) -> float | None:
    """Fastest wrist or ankle move relative to the torso centre, pixels per second. A left/right
    swap of the model counts as the smaller of the two readings, never as a strike."""
    centre_before, centre_after = torso_centre(before), torso_centre(after)
    if centre_before is None or centre_after is None:
        return None
    fastest = 0.0
    for joint in LIMB_ENDS:
        end = after[joint]
        if end[2] < MIN_KEYPOINT_SCORE:
            continue
        moved = [np.linalg.norm((end[:2] - centre_after) - (before[j, :2] - centre_before))
                 for j in (joint, _MIRROR[joint]) if before[j, 2] >= MIN_KEYPOINT_SCORE]
        if moved:
            fastest = max(fastest, float(min(moved)))
    return fastest / dt_s


def box_gap_in_heights(box_a: np.ndarray, box_b: np.ndarray, height: float) -> float:
    """How far apart two people's boxes are, in body heights (``height`` pixels): the
    horizontal gap between them plus the difference of their foot lines (people at different
    depths overlap in the image without touching)."""
    horizontal = max(0.0, float(max(box_a[0], box_b[0]) - min(box_a[2], box_b[2])))
    feet = abs(float(box_a[3] - box_b[3]))
    return (horizontal + feet) / height


def gap_in_heights(a: PersonTrack, b: PersonTrack) -> float:
    """:func:`box_gap_in_heights` of two people now."""
    return box_gap_in_heights(a.latest.box, b.latest.box, (a.body_height() + b.body_height()) / 2)


def collapsed(track: PersonTrack, ratio: float = COLLAPSE_RATIO) -> bool:
    """The box's height/width ratio fell below ``ratio`` times its value a second ago (a fall,
    a crouch, being pushed down)."""
    earlier = track.since(track.latest.stamp_s - 1.0)[0]
    aspect_then = earlier.height / max(earlier.width, 1.0)
    aspect_now = track.latest.height / max(track.latest.width, 1.0)
    return aspect_now < ratio * aspect_then


def near_vehicle(track: PersonTrack, vehicles: list[np.ndarray], heights: float) -> bool:
    """The person's box comes within ``heights`` body heights of one of the vehicle boxes."""
    box, reach = track.latest.box, heights * track.body_height()
    return any(box[0] - reach <= v[2] and v[0] - reach <= box[2] and box[1] - reach <= v[3]
               and v[1] - reach <= box[3] for v in vehicles)


@dataclass
class _ParkedVehicle:
    box: np.ndarray
    first_seen_s: float
    last_seen_s: float


class VehicleMap:
    """Vehicles by place, not by track id (a parked car's track may break and restart): a
    vehicle box staying on the same spot (IoU >= ``same_place_iou``) keeps its first-seen time."""

    def __init__(self, forget_s: float = 5.0, same_place_iou: float = 0.6) -> None:
        self._vehicles: list[_ParkedVehicle] = []
        self._forget_s = forget_s
        self._same_place_iou = same_place_iou

    def update(self, detections: Detections, stamp_s: float) -> None:
        boxes = detections.boxes[[label in VEHICLE_LABELS for label in detections.labels]]
        if self._vehicles and len(boxes):
            iou = pairwise_iou(np.array([v.box for v in self._vehicles]), boxes)
        else:
            iou = np.zeros((len(self._vehicles), len(boxes)))
        matched = set()
        for index, vehicle in enumerate(self._vehicles):
            if iou.shape[1] and iou[index].max() >= self._same_place_iou:
                best = int(iou[index].argmax())
                matched.add(best)
                vehicle.last_seen_s = stamp_s
        self._vehicles = [v for v in self._vehicles if stamp_s - v.last_seen_s <= self._forget_s]
        self._vehicles += [_ParkedVehicle(box, stamp_s, stamp_s) for i, box in enumerate(boxes)
                           if i not in matched]

    def stationary(self, stamp_s: float, min_s: float) -> list[np.ndarray]:
        """Boxes of vehicles on their spot for at least ``min_s`` seconds, seen just now."""
        return [v.box for v in self._vehicles
                if v.last_seen_s == stamp_s and stamp_s - v.first_seen_s >= min_s]


class CameraTracks:
    """The person tracks and parked vehicles of one camera."""

    def __init__(self, history_s: float) -> None:
        self.people: dict[int, PersonTrack] = {}
        self.vehicles = VehicleMap()
        self._history_s = history_s

    def update(self, detections: Detections, stamp_s: float) -> None:
        """Adds this frame's tracked people and forgets those unseen for the history span."""
        for box, label, track_id in zip(detections.boxes, detections.labels, detections.track_ids):
            if label != 'person' or track_id == UNTRACKED:
                continue
            track = self.people.get(int(track_id))
            if track is None:
                track = self.people[int(track_id)] = PersonTrack(int(track_id), self._history_s)
            track.add(Observation(stamp_s, box.copy(), None))
        self.people = {tid: t for tid, t in self.people.items()
                       if stamp_s - t.latest.stamp_s <= self._history_s}
        self.vehicles.update(detections, stamp_s)

    def present(self, stamp_s: float) -> list[PersonTrack]:
        """People seen on this frame."""
        return [t for t in self.people.values() if t.latest.stamp_s == stamp_s]
