"""The behaviour stage: per camera, track history, pose crops chosen under a budget, and cues.

Without a pose model the stage still runs: ``person_down`` and ``fleeing`` are scored from
boxes and tracks, ``assault`` and ``vehicle_tampering`` are not (``pose_cues`` False).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from kaiserslautern_vss.behaviour.cues import (
    FleeingCue, PeopleGroup, PersonDownCue, assault_cue, people_groups, vehicle_tampering_cue)
from kaiserslautern_vss.behaviour.motion import UnexplainedMotion
from kaiserslautern_vss.behaviour.pose_estimator import PoseEstimator, load_pose_estimator
from kaiserslautern_vss.behaviour.selection import select_for_pose
from kaiserslautern_vss.behaviour.tracks import VEHICLE_LABELS, CameraTracks
from kaiserslautern_vss.behaviour.types import CUE_KINDS, BehaviourResult, BehaviourSettings, Cue, Pose
from kaiserslautern_vss.detection.types import Detections

__all__ = ['BehaviourStage', 'load_pose_estimator']

#: a group with this share of full agitation gets poses (its strikes confirm or not)
POSE_AGITATION = 0.25


@dataclass
class _Camera:
    tracks: CameraTracks
    motion: UnexplainedMotion = field(default_factory=UnexplainedMotion)
    person_down: PersonDownCue = field(default_factory=PersonDownCue)
    fleeing: FleeingCue = field(default_factory=FleeingCue)
    last_stamp_s: float = -np.inf


class BehaviourStage:
    """:class:`~kaiserslautern_vss.behaviour.types.BehaviourAnalyzer` for any number of cameras.
    One camera's frames must come in order from one thread at a time; different cameras may be
    analysed in parallel (the pose estimator's session is thread-safe)."""

    def __init__(self, pose_estimator: PoseEstimator | None,
                 settings: BehaviourSettings = BehaviourSettings()) -> None:
        self._pose = pose_estimator
        self._settings = settings
        self._cameras: dict[str, _Camera] = {}
        self._lock = threading.Lock()

    def analyse(self, camera_id: str, image: np.ndarray, detections: Detections,
                stamp_s: float) -> BehaviourResult:
        camera = self._camera(camera_id, stamp_s)
        settings, tracks = self._settings, camera.tracks
        tracks.update(detections, stamp_s)
        groups: list[PeopleGroup] = []
        if self._pose is not None:
            explained = [label == 'person' or label in VEHICLE_LABELS for label in detections.labels]
            camera.motion.update(image, stamp_s, detections.boxes[explained])
            groups = people_groups(detections, camera.motion, settings.near_heights)
        agitated = {tid for group in groups if group.motion_share >= POSE_AGITATION * settings.agitation_share
                    for tid in group.track_ids}
        poses = self._estimate_poses(tracks, image, stamp_s, agitated)

        down = camera.person_down.evaluate(tracks, stamp_s, settings)
        cues: dict[str, Cue] = {down.kind: down}
        if self._pose is not None:
            for cue in (assault_cue(tracks, groups, stamp_s, settings),
                        vehicle_tampering_cue(tracks, stamp_s, settings)):
                cues[cue.kind] = cue
        for cue in cues.values():
            camera.fleeing.note(cue, tracks, stamp_s)
        fleeing = camera.fleeing.evaluate(tracks, stamp_s, settings)
        cues[fleeing.kind] = fleeing
        ordered = tuple(cues[kind] for kind in CUE_KINDS if kind in cues)
        return BehaviourResult(poses, ordered, self._pose is not None)

    def _camera(self, camera_id: str, stamp_s: float) -> _Camera:
        with self._lock:
            camera = self._cameras.get(camera_id)
            if camera is None or stamp_s < camera.last_stamp_s:  # new camera or its clock was reset
                camera = self._cameras[camera_id] = _Camera(CameraTracks(self._settings.history_s))
        camera.last_stamp_s = stamp_s
        return camera

    def _estimate_poses(self, tracks: CameraTracks, image: np.ndarray, stamp_s: float,
                        agitated: set[int]) -> tuple[Pose, ...]:
        if self._pose is None or self._settings.pose_crops_per_frame == 0:
            return ()
        chosen = select_for_pose(tracks, stamp_s, agitated, self._settings)
        if not chosen:
            return ()
        keypoints = self._pose.estimate(image, np.stack([tracks.people[tid].latest.box for tid in chosen]))
        for tid, points in zip(chosen, keypoints):
            tracks.people[tid].attach_pose(points)
        return tuple(Pose(tid, points) for tid, points in zip(chosen, keypoints))
