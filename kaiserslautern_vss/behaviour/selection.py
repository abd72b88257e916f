"""Which people get a pose this frame: cheap box-and-track cues spend a small budget of crops.

Poses only matter for the pose cues (assault, vehicle tampering), and both need people close
to someone or something. So a lone walker never costs a crop. Ranked first: a person in
contact range of another, a box that collapses (height/width ratio falling, a fall or a
crouch), a sudden speed change; then people near others (within ``near_heights``) or at a
long-stationary vehicle. Within a rank the person whose last pose is oldest goes first, a
round-robin that refreshes everyone flagged. Limb speeds need poses on consecutive frames, so
the contact rank keeps a fighting pair posed every frame while the budget allows.
"""

from __future__ import annotations

import numpy as np

from kaiserslautern_vss.behaviour.tracks import (
    CameraTracks, PersonTrack, collapsed, gap_in_heights, near_vehicle)
from kaiserslautern_vss.behaviour.types import BehaviourSettings

URGENT, NEAR = 2, 1
#: a speed change this large within 1.5 s (body heights per second) is sudden
SPEED_CHANGE = 1.0
#: a person this close to a parked vehicle (body heights) is at it
AT_VEHICLE_HEIGHTS = 0.5


def _speed_changed(track: PersonTrack, change: float) -> bool:
    speeds = [speed for _, speed in track.speeds(1.5)]
    return len(speeds) >= 2 and max(speeds) - min(speeds) >= change


def rank(tracks: CameraTracks, stamp_s: float, settings: BehaviourSettings) -> dict[int, int]:
    """Track id -> rank (:data:`URGENT` or :data:`NEAR`) of the people worth a pose now."""
    present = [t for t in tracks.present(stamp_s) if t.latest.height >= settings.min_pose_height_px]
    vehicles = tracks.vehicles.stationary(stamp_s, settings.stationary_vehicle_s)
    ranks = {}
    for track in present:
        gaps = [gap_in_heights(track, other) for other in present if other is not track]
        closest = min(gaps, default=np.inf)
        if (closest <= settings.contact_heights or collapsed(track)
                or _speed_changed(track, SPEED_CHANGE)):
            ranks[track.track_id] = URGENT
        elif closest <= settings.near_heights or near_vehicle(track, vehicles, AT_VEHICLE_HEIGHTS):
            ranks[track.track_id] = NEAR
    return ranks


def select_for_pose(tracks: CameraTracks, stamp_s: float, settings: BehaviourSettings) -> list[int]:
    """At most ``settings.pose_crops_per_frame`` track ids, most telling and longest-unposed first."""
    ranks = rank(tracks, stamp_s, settings)
    order = sorted(ranks, key=lambda tid: (-ranks[tid], tracks.people[tid].last_pose_s, tid))
    return order[:settings.pose_crops_per_frame]
