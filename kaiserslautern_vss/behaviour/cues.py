"""The four behaviour cues, each a score in [0, 1] per camera frame with its evidence.

All measures are in body heights (per second), so they hold at any camera distance and frame
rate (see :mod:`kaiserslautern_vss.behaviour.tracks`).

``assault``: a group of people (each within ``near_heights`` of another) with motion around
them that none of their boxes explains (:mod:`.motion`: flailing limbs, kicks, a body thrown,
people so tangled the detector loses them), as a share of the group's own box area; full at
``agitation_share``. Confirmations multiply it: the pose's repeated strikes (the
second-fastest wrist or ankle reading relative to the torso in ``assault_window_s`` at
``strike_heights_per_s`` or more, so one noisy keypoint does not count), one of them going
down (the box collapsing), onlookers converging. A lone person counts half (the opponent may
be one the detector lost). Measured on CCTV fight footage, the unexplained motion carries the
cue; MoveNet's limb speeds on small, blurred people are too noisy to score on their own, so
they only confirm. How the look-alikes stay low:

- hugging: sustained contact, but the bodies are still: nothing moves outside their boxes;
- walking together, greeting, a handshake: what moves (legs, a hand) stays inside the boxes
  of now and 0.2 s ago, and brief contact scores nothing without outside motion;
- dancing alone or side by side: the limbs stay within the dancer's own box (the detector's
  box covers the stretched arms); a lone person counts half;
- running for a bus: one person, whose motion is their box moving (explained by the box
  a moment ago), not motion around them;
- children playing: small bodies are measured against their own box area, so nothing is
  "agitated" merely for being small; chasing is boxes moving, not motion outside them.
  Rough play with bodies thrown about does look like a fight (see docs/BEHAVIOUR.md).

``person_down``: upright (box taller than wide, or an upright torso) to horizontal within
``fall_s`` with the box top dropping, held while the person stays down; or horizontal and
still, rising to 1 after ``lying_still_s``. Works from boxes and tracks alone; a pose, when
there is one, judges horizontal by the torso's angle instead of the box's shape.

``fleeing``: a sudden run (box centre from walking pace to ``run_heights_per_s`` within a
second). On its own it stays at :data:`LONE_RUN_SCORE` (a run for the bus); near or right
after another cue on the camera, or by one of that cue's people, it rises to 1.

``vehicle_tampering``: a person at a vehicle parked for ``stationary_vehicle_s`` with repeated
strike-speed limb motion (kicks, blows, pulling at a door) in the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kaiserslautern_vss.behaviour.motion import UnexplainedMotion
from kaiserslautern_vss.behaviour.tracks import (
    CameraTracks, PersonTrack, box_gap_in_heights, collapsed, near_vehicle, torso_axis)
from kaiserslautern_vss.behaviour.types import (
    ASSAULT, FLEEING, PERSON_DOWN, VEHICLE_TAMPERING, BehaviourSettings, Cue)
from kaiserslautern_vss.detection.types import UNTRACKED, Detections

#: box height/width at or above which a person is upright, at or below which horizontal
UPRIGHT_ASPECT, HORIZONTAL_ASPECT = 1.3, 0.9
#: a torso within this many degrees of horizontal lies
LYING_TORSO_DEG = 35.0
#: a person moving slower than this (body heights/s) is still
STILL_HEIGHTS_PER_S = 0.2
#: fleeing without any other cue near it: a run, nothing more
LONE_RUN_SCORE = 0.5
#: how long another cue makes a run telling, and how near (body heights) it must be
FLEE_CONTEXT_S, FLEE_CONTEXT_HEIGHTS = 5.0, 3.0
#: onlookers: others within this range (body heights) closing in on the pair by ``CONVERGE``
ONLOOKER_HEIGHTS, CONVERGE_HEIGHTS = 3.0, 0.3
#: what the pose's strikes, one going down and each converging onlooker (at most two) add
STRIKE_WEIGHT, DOWN_WEIGHT, ONLOOKER_WEIGHT = 0.5, 0.5, 0.2
MOST_CONFIRMED = 1.0 + STRIKE_WEIGHT + DOWN_WEIGHT + 2 * ONLOOKER_WEIGHT
#: a person with nobody near counts half (the opponent may be one the detector lost)
LONE_PERSON_FACTOR = 0.5
#: most track ids a cue names
MAX_TRACKS = 16
#: how many strike readings in the window make tampering certain
TAMPER_STRIKES = 3


def _clip(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def _ramp(value: float, start: float, full: float) -> float:
    """0 at ``start``, 1 at ``full``, linear between."""
    return _clip((value - start) / (full - start))


def _no_cue(kind: str) -> Cue:
    return Cue(kind, 0.0, ())


def _torso_lying(keypoints: np.ndarray | None) -> bool | None:
    """Whether the torso lies (None when shoulders or hips are not seen)."""
    axis = torso_axis(keypoints) if keypoints is not None else None
    if axis is None:
        return None
    dx, dy = np.abs(axis)
    return bool(np.degrees(np.arctan2(dy, dx)) <= LYING_TORSO_DEG)


def is_horizontal(track: PersonTrack) -> bool:
    latest = track.latest
    lying = _torso_lying(latest.keypoints)
    return lying if lying is not None else latest.height <= HORIZONTAL_ASPECT * latest.width


def _second_fastest(speeds: list[float]) -> float:
    return sorted(speeds)[-2] if len(speeds) >= 2 else 0.0


@dataclass(frozen=True)
class PeopleGroup:
    """People within ``near_heights`` of each other on one frame (box gap plus foot-line
    difference, chained), and the unexplained motion around them (:mod:`.motion`)."""

    boxes: np.ndarray
    track_ids: tuple[int, ...]  # the tracked members
    motion_share: float


def people_groups(detections: Detections, motion: UnexplainedMotion, near_heights: float) -> list[PeopleGroup]:
    people = [i for i, label in enumerate(detections.labels) if label == 'person']
    boxes = detections.boxes
    parent = {i: i for i in people}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for n, i in enumerate(people):
        for j in people[n + 1:]:
            height = (boxes[i, 3] - boxes[i, 1] + boxes[j, 3] - boxes[j, 1]) / 2
            if box_gap_in_heights(boxes[i], boxes[j], max(float(height), 1.0)) <= near_heights:
                parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in people:
        members.setdefault(root(i), []).append(i)
    groups = []
    for indices in members.values():
        group_boxes = boxes[indices]
        # a person cut by the side of the frame moves outside their visible box
        share = 0.0 if any(motion.at_side_edge(box) for box in group_boxes) else motion.share(group_boxes)
        groups.append(PeopleGroup(group_boxes, tuple(int(detections.track_ids[i]) for i in indices
                                                     if detections.track_ids[i] != UNTRACKED), share))
    return groups


def _onlookers(group: list[PersonTrack], others: list[PersonTrack], window_s: float) -> int:
    """Others within reach of the group who came closer to it over the window."""
    centre = np.mean([t.latest.centre for t in group], axis=0)
    height = float(np.mean([t.body_height() for t in group]))
    count = 0
    for other in others:
        then = other.since(other.latest.stamp_s - window_s)[0]
        now_distance = np.linalg.norm(other.latest.centre - centre) / height
        then_distance = np.linalg.norm(then.centre - centre) / height
        count += now_distance <= ONLOOKER_HEIGHTS and then_distance - now_distance >= CONVERGE_HEIGHTS
    return count


def assault_cue(tracks: CameraTracks, groups: list[PeopleGroup], stamp_s: float,
                settings: BehaviourSettings) -> Cue:
    """The most agitated group of people on the frame (see the module docstring)."""
    best = _no_cue(ASSAULT)
    present = {t.track_id: t for t in tracks.present(stamp_s)}
    for group in groups:
        agitation = _clip(group.motion_share / settings.agitation_share)
        if len(group.boxes) == 1:
            agitation *= LONE_PERSON_FACTOR  # e.g. an opponent the detector lost, or a lone dancer
        if agitation * MOST_CONFIRMED <= best.score:
            continue  # what follows only confirms agitation
        members = [present[tid] for tid in group.track_ids if tid in present]
        limbs = [speed for track in members for _, speed in track.limb_speeds(settings.assault_window_s)]
        limb_speed = _second_fastest(limbs)
        strikes = _ramp(limb_speed, settings.strike_heights_per_s, 2 * settings.strike_heights_per_s)
        down = any(collapsed(track) for track in members)
        onlookers = _onlookers(members, [t for t in present.values() if t not in members],
                               settings.assault_window_s) if members else 0
        score = _clip(agitation * (1.0 + STRIKE_WEIGHT * strikes + DOWN_WEIGHT * down
                                   + ONLOOKER_WEIGHT * min(onlookers, 2)))
        if score > best.score:
            best = Cue(ASSAULT, score, group.track_ids[:MAX_TRACKS], {
                'unexplained_motion_share': group.motion_share, 'people': float(len(group.boxes)),
                'limb_speed_heights_per_s': limb_speed,
                'strikes': float(sum(speed >= settings.strike_heights_per_s for speed in limbs)),
                'one_going_down': float(down), 'onlookers_converging': float(onlookers)})
    return best


@dataclass
class PersonDownCue:
    """Remembers who fell and who has been lying since when (per camera)."""

    fallen_at: dict[int, float] = field(default_factory=dict)
    lying_since: dict[int, float] = field(default_factory=dict)

    def evaluate(self, tracks: CameraTracks, stamp_s: float, settings: BehaviourSettings) -> Cue:
        best = _no_cue(PERSON_DOWN)
        for track in tracks.present(stamp_s):
            tid = track.track_id
            speed = track.speed(1.0) or 0.0
            if not is_horizontal(track) or speed > 1.0:
                self.fallen_at.pop(tid, None)
                self.lying_since.pop(tid, None)
                continue
            self.lying_since.setdefault(tid, stamp_s)
            if tid not in self.fallen_at and self._fell(track, stamp_s, settings):
                self.fallen_at[tid] = stamp_s
            still = speed <= STILL_HEIGHTS_PER_S
            lying_s = stamp_s - self.lying_since[tid]
            score = _ramp(lying_s, 0.0, settings.lying_still_s) if still else 0.0
            if tid in self.fallen_at:
                score = max(score, 0.9 if stamp_s - self.fallen_at[tid] < settings.lying_still_s else 1.0)
            if score > best.score:
                best = Cue(PERSON_DOWN, score, (tid,), {
                    'lying_s': lying_s, 'fall_seen': float(tid in self.fallen_at),
                    'speed_heights_per_s': speed})
        for forgotten in set(self.lying_since) - set(tracks.people):
            self.lying_since.pop(forgotten)
            self.fallen_at.pop(forgotten, None)
        return best

    @staticmethod
    def _fell(track: PersonTrack, stamp_s: float, settings: BehaviourSettings) -> bool:
        """Upright within the last ``fall_s`` and the box top dropped by a third of the body."""
        recent = track.since(stamp_s - settings.fall_s)
        height = track.body_height()
        return any(o.height >= UPRIGHT_ASPECT * o.width
                   and track.latest.box[1] - o.box[1] >= height / 3 for o in recent[:-1])


@dataclass
class FleeingCue:
    """Remembers the other cues' recent firings as context for a run."""

    context: list[tuple[float, tuple[int, ...], np.ndarray]] = field(default_factory=list)

    def note(self, cue: Cue, tracks: CameraTracks, stamp_s: float) -> None:
        """Records a firing (score at least 0.5) of another cue as context."""
        if cue.score >= 0.5 and cue.track_ids:
            places = np.array([tracks.people[t].latest.centre for t in cue.track_ids if t in tracks.people])
            if len(places):
                self.context.append((stamp_s, cue.track_ids, places.mean(axis=0)))

    def evaluate(self, tracks: CameraTracks, stamp_s: float, settings: BehaviourSettings) -> Cue:
        self.context = [c for c in self.context if stamp_s - c[0] <= FLEE_CONTEXT_S]
        best = _no_cue(FLEEING)
        run = settings.run_heights_per_s
        for track in tracks.present(stamp_s):
            now = track.speed(0.6)
            earlier = track.since(stamp_s - 2.0)
            if now is None or earlier[0].stamp_s > stamp_s - 1.2:
                continue
            before = np.median([speed for t, speed in track.speeds(2.0) if t <= stamp_s - 0.8] or [now])
            sudden = _ramp(now - before, 0.3 * run, 0.6 * run)
            running = _ramp(now, 0.5 * run, run)
            near_cue = any(track.track_id in ids or np.linalg.norm(track.latest.centre - place)
                           <= FLEE_CONTEXT_HEIGHTS * track.body_height() for _, ids, place in self.context)
            score = running * sudden * (1.0 if near_cue else LONE_RUN_SCORE)
            if score > best.score:
                best = Cue(FLEEING, score, (track.track_id,), {
                    'speed_heights_per_s': now, 'speed_before_heights_per_s': float(before),
                    'near_other_cue': float(near_cue)})
        return best


def vehicle_tampering_cue(tracks: CameraTracks, stamp_s: float, settings: BehaviourSettings) -> Cue:
    vehicles = tracks.vehicles.stationary(stamp_s, settings.stationary_vehicle_s)
    best = _no_cue(VEHICLE_TAMPERING)
    if not vehicles:
        return best
    window = 2 * settings.assault_window_s
    for track in tracks.present(stamp_s):
        if not near_vehicle(track, vehicles, settings.contact_heights):
            continue
        limbs = [speed for _, speed in track.limb_speeds(window)]
        strikes = sum(speed >= settings.strike_heights_per_s for speed in limbs)
        score = _clip(strikes / TAMPER_STRIKES)
        if score > best.score:
            best = Cue(VEHICLE_TAMPERING, score, (track.track_id,), {
                'strikes': float(strikes), 'limb_speed_heights_per_s': max(limbs, default=0.0)})
    return best
