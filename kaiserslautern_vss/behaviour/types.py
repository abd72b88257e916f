"""What the behaviour stage exchanges: poses of tracked people, and cues with their evidence.

Keypoints are in MoveNet's COCO order, in the image's pixel coordinates. Poses and cues are
numbers only, never pixels, so they may leave the vision pipeline (rules, rviz2, bags).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from kaiserslautern_vss.detection.types import Detections

KEYPOINT_NAMES = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
    'left_knee', 'right_knee', 'left_ankle', 'right_ankle')
#: keypoint index pairs drawn as limbs (arms, shoulders, torso, legs, face)
SKELETON_EDGES = (
    (5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12),
    (11, 13), (13, 15), (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))

ASSAULT = 'assault'
PERSON_DOWN = 'person_down'
FLEEING = 'fleeing'
VEHICLE_TAMPERING = 'vehicle_tampering'
CUE_KINDS = (ASSAULT, PERSON_DOWN, FLEEING, VEHICLE_TAMPERING)
#: cues that need the pose model; the others work from boxes and tracks alone
POSE_CUES = frozenset({ASSAULT, VEHICLE_TAMPERING})


@dataclass(frozen=True)
class Pose:
    """One tracked person's keypoints: ``keypoints`` (17, 3) float32 = x, y (pixels), confidence."""

    track_id: int
    keypoints: np.ndarray

    def __post_init__(self) -> None:
        keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if keypoints.shape != (len(KEYPOINT_NAMES), 3):
            raise ValueError(f'pose keypoints must be (17, 3), got {keypoints.shape}')
        object.__setattr__(self, 'keypoints', keypoints)


@dataclass(frozen=True)
class Cue:
    """A behaviour's score in [0, 1] on one camera frame, the tracks it concerns, and what was
    measured (``evidence``: name -> value, e.g. limb speed in body heights per second)."""

    kind: str
    score: float
    track_ids: tuple[int, ...]
    evidence: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BehaviourResult:
    """One camera frame's behaviour output: the poses estimated on it and the cue scores (one
    per evaluated kind). ``pose_cues`` is False where no pose model is loaded: then the
    :data:`POSE_CUES` are off and only box-and-track cues are scored."""

    poses: tuple[Pose, ...]
    cues: tuple[Cue, ...]
    pose_cues: bool


@dataclass(frozen=True)
class BehaviourSettings:
    """``pose_crops_per_frame``: most person crops one camera frame spends pose estimation on
    (chosen by cheap box-and-track cues). The rest are the cues' physical scales: distances
    in body heights, speeds in body heights per second, times in seconds (docs/BEHAVIOUR.md)."""

    pose_crops_per_frame: int = 4
    #: how long each person's boxes and poses are kept
    history_s: float = 4.0
    #: two people this close (box gap plus foot-line difference) are in contact range
    contact_heights: float = 0.35
    #: people this close to another get poses (after those in contact)
    near_heights: float = 1.0
    #: unexplained motion around a group (changed pixels outside every box, per pixel of the
    #: group's box area, over 0.2 s) at which its agitation is full; half of it scores 0
    agitation_share: float = 0.8
    #: a wrist or ankle moving this fast relative to its own torso is a strike or kick
    strike_heights_per_s: float = 2.5
    #: the span over which contact and strikes are counted
    assault_window_s: float = 1.5
    #: box-centre speed of a run (walking is about 0.8)
    run_heights_per_s: float = 2.0
    #: upright to horizontal within this time is a fall
    fall_s: float = 1.0
    #: lying still this long scores ``person_down`` fully without a seen fall
    lying_still_s: float = 10.0
    #: a vehicle on the same spot this long is parked (vehicle tampering)
    stationary_vehicle_s: float = 30.0
    #: smaller person boxes get no pose (too few pixels for keypoints)
    min_pose_height_px: float = 24.0
    #: people merely in contact range (nothing urgent) get a fresh pose this often; their poses
    #: only feed the skeleton view, since limb speeds need poses on consecutive frames
    pose_refresh_s: float = 3.0

    def __post_init__(self) -> None:
        if self.pose_crops_per_frame < 0:
            raise ValueError(f'pose_crops_per_frame must be >= 0, got {self.pose_crops_per_frame}')
        for name in ('history_s', 'contact_heights', 'near_heights', 'strike_heights_per_s',
                     'assault_window_s', 'agitation_share', 'run_heights_per_s', 'fall_s', 'lying_still_s',
                     'stationary_vehicle_s', 'pose_refresh_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')


class BehaviourAnalyzer(Protocol):
    """Per-camera behaviour state over frames in order; called from the vision pipeline's
    worker with the frame in memory and its tracked detections (the frame never leaves)."""

    def analyse(self, camera_id: str, image: np.ndarray, detections: Detections,
                stamp_s: float) -> BehaviourResult: ...
