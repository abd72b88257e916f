"""Which people get a pose this frame: cheap box-and-track cues spend a small budget of crops.

Poses only matter for the pose cues (assault, vehicle tampering), and both need people close
to someone or something, so a lone walker never costs a crop. Ranked first (posed every
frame while the budget allows, since limb speeds need poses on consecutive frames): members
of a group with unexplained motion around it (the stage's agitation), a box that collapses
(height/width ratio falling: a fall, a crouch, a shove) or a sudden speed change of someone
in contact range of another (within ``contact_heights``), a person at a long-stationary
vehicle. Then, refreshed every ``pose_refresh_s`` only: anyone else in contact range. Within a rank the
person whose last pose is oldest goes first, a round-robin over everyone flagged.
"""

from __future__ import annotations

import numpy as np

from kaiserslautern_vss.behaviour.tracks import (
    CameraTracks, PersonTrack, collapsed, gap_in_heights, near_vehicle)
from kaiserslautern_vss.behaviour.types import BehaviourSettings

URGENT, REFRESH = 2, 1
#: a speed change this large within 1.5 s (body heights per second) is sudden
SPEED_CHANGE = 1.0
#: a person this close to a parked vehicle (body heights) is at it
AT_VEHICLE_HEIGHTS = 0.5


def _speed_changed(track: PersonTrack, change: float) -> bool:
    """Box-centre speed over the last half second differs by ``change`` from the half second
    before (windows, not frame steps: box jitter of small people is no speed change)."""
    now = track.speed(0.5)
    if now is None:
        return False
    before = [speed for stamp, speed in track.speeds(1.0) if stamp <= track.latest.stamp_s - 0.5]
    return len(before) >= 1 and abs(now - float(np.mean(before))) >= change


def rank(tracks: CameraTracks, stamp_s: float, agitated: set[int],
         settings: BehaviourSettings) -> dict[int, int]:
    """Track id -> rank (:data:`URGENT` or :data:`REFRESH`) of the people worth a pose now;
    ``agitated``: track ids in groups with unexplained motion around them."""
    present = [t for t in tracks.present(stamp_s) if t.latest.height >= settings.min_pose_height_px]
    vehicles = tracks.vehicles.stationary(stamp_s, settings.stationary_vehicle_s)
    ranks = {}
    for track in present:
        closest = min((gap_in_heights(track, other) for other in present if other is not track),
                      default=np.inf)
        contact = closest <= settings.contact_heights
        if (track.track_id in agitated or near_vehicle(track, vehicles, AT_VEHICLE_HEIGHTS)
                or (contact and (collapsed(track) or _speed_changed(track, SPEED_CHANGE)))):
            ranks[track.track_id] = URGENT
        elif contact and stamp_s - track.last_pose_s >= settings.pose_refresh_s:
            ranks[track.track_id] = REFRESH
    return ranks


def select_for_pose(tracks: CameraTracks, stamp_s: float, agitated: set[int],
                    settings: BehaviourSettings) -> list[int]:
    """At most ``settings.pose_crops_per_frame`` track ids, most telling and longest-unposed first."""
    ranks = rank(tracks, stamp_s, agitated, settings)
    order = sorted(ranks, key=lambda tid: (-ranks[tid], tracks.people[tid].last_pose_s, tid))
    return order[:settings.pose_crops_per_frame]
