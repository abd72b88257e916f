"""The kinds of incident rule: what each looks at in one camera's detections, or for the
behaviour kinds (``assault``, ``person_down``, ``fleeing``, ``vehicle_tampering``) in its cues.

A rule (:class:`~kaiserslautern_vss.events.rule_base.Rule`) names the objects that violate it (an
empty selection means "condition false");
:mod:`~kaiserslautern_vss.events.rule_engine` turns those conditions into incidents and
:mod:`~kaiserslautern_vss.events.rule_schema` reads them from YAML. Adding a kind is one
:class:`Rule` subclass (its ``kind``, ``from_fields`` and ``violating``) and one entry in
:data:`RULE_KINDS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kaiserslautern_vss.behaviour.types import ASSAULT, FLEEING, PERSON_DOWN, VEHICLE_TAMPERING, Cue
from kaiserslautern_vss.detection.types import UNTRACKED, Detections
from kaiserslautern_vss.events.rule_base import Rule, RuleSettings
from kaiserslautern_vss.events.zones import Zone, foot_points

if TYPE_CHECKING:  # for annotations only: the schema imports the kinds
    from kaiserslautern_vss.events.rule_schema import RuleFields


def _in_zone(zone: Zone | None, detections: Detections, classes: frozenset[str]) -> Detections:
    """Detections of ``classes`` standing (box bottom-centre) inside ``zone`` (None: anywhere)."""
    candidates = detections.of_class(*classes)
    return candidates if zone is None else candidates.select(zone.contains(foot_points(candidates.boxes)))


class ZoneIntrusionRule(Rule):
    """Objects of the given classes standing (box bottom-centre) inside a polygon."""

    kind = 'zone_intrusion'

    def __init__(self, settings: RuleSettings, zone: Zone) -> None:
        super().__init__(settings)
        self.zone = zone

    @classmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        return cls(fields.settings(), fields.zone('zone'))

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        return _in_zone(self.zone, detections, self.settings.classes)


class CrowdingRule(Rule):
    """At least ``min_count`` objects in the zone (for ``min_duration_s``)."""

    kind = 'crowding'

    def __init__(self, settings: RuleSettings, zone: Zone, min_count: int) -> None:
        super().__init__(settings)
        self.zone, self.min_count = zone, min_count

    @classmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        return cls(fields.settings(), fields.zone('zone'), fields.integer('min_count', minimum=1))

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        inside = _in_zone(self.zone, detections, self.settings.classes)
        return inside if len(inside) >= self.min_count else Detections.empty()


class LoiteringRule(Rule):
    """A tracked object in the zone for ``dwell_s`` (absences up to ``max_gap_s`` forgiven).

    Needs tracker ids: untracked detections cannot loiter.
    """

    kind = 'loitering'

    def __init__(self, settings: RuleSettings, zone: Zone, dwell_s: float, max_gap_s: float) -> None:
        super().__init__(settings)
        self.zone = zone
        self._dwell_ns, self._gap_ns = int(dwell_s * 1e9), int(max_gap_s * 1e9)
        self._entered_ns: dict[int, int] = {}
        self._last_seen_ns: dict[int, int] = {}

    @classmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        return cls(fields.settings(), fields.zone('zone'), fields.number('dwell_s'),
                   fields.number('max_gap_s', 2.0))

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        inside = _in_zone(self.zone, detections, self.settings.classes)
        for track_id in inside.track_ids.tolist():
            if track_id == UNTRACKED:
                continue
            if stamp_ns - self._last_seen_ns.get(track_id, stamp_ns - self._gap_ns - 1) > self._gap_ns:
                self._entered_ns[track_id] = stamp_ns
            self._last_seen_ns[track_id] = stamp_ns
        for track_id, seen in list(self._last_seen_ns.items()):
            if stamp_ns - seen > self._gap_ns:
                del self._last_seen_ns[track_id], self._entered_ns[track_id]
        return inside.select(np.array(
            [t != UNTRACKED and stamp_ns - self._entered_ns[t] >= self._dwell_ns
             for t in inside.track_ids.tolist()], dtype=bool))


LINE_DIRECTIONS = ('both', 'left_to_right', 'right_to_left')


class LineCrossingRule(Rule):
    """A tracked object's foot point crossing the segment ``line`` (first -> second point).

    "Left"/"right" are as seen standing on the first point looking at the second, in
    image coordinates (y down). The condition is true in the frame of the crossing.
    """

    kind = 'line_crossing'

    def __init__(self, settings: RuleSettings, line: np.ndarray, direction: str,
                 max_gap_s: float) -> None:
        super().__init__(settings)
        self.line, self.direction = line, direction
        self._gap_ns = int(max_gap_s * 1e9)
        self._last_point: dict[int, tuple[int, np.ndarray]] = {}  # track -> (stamp, foot point)

    def _side(self, points: np.ndarray) -> np.ndarray:
        """> 0 right of the line, < 0 left (image y axis points down)."""
        (ax, ay), (bx, by) = self.line
        return (bx - ax) * (points[:, 1] - ay) - (by - ay) * (points[:, 0] - ax)

    @classmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        return cls(fields.settings(), fields.segment('line'), fields.choice('direction', LINE_DIRECTIONS, 'both'),
                   fields.number('max_gap_s', 2.0))

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        candidates = detections.of_class(*self.settings.classes)
        points = foot_points(candidates.boxes)
        crossed = np.zeros(len(candidates), dtype=bool)
        for index, track_id in enumerate(candidates.track_ids.tolist()):
            if track_id == UNTRACKED:
                continue
            previous = self._last_point.get(track_id)
            self._last_point[track_id] = (stamp_ns, points[index])
            if previous is not None and stamp_ns - previous[0] <= self._gap_ns:
                crossed[index] = self._crosses(previous[1], points[index])
        self._last_point = {t: seen for t, seen in self._last_point.items()
                            if stamp_ns - seen[0] <= self._gap_ns}
        return candidates.select(crossed)

    def _crosses(self, start: np.ndarray, end: np.ndarray) -> bool:
        before, after = self._side(np.stack((start, end)))
        if before == 0 or np.sign(before) == np.sign(after) or after == 0:
            return False
        # The movement must pass between the line's end points, not beside them.
        (dx, dy), offsets = end - start, self.line - start
        movement_side = dx * offsets[:, 1] - dy * offsets[:, 0]
        if np.sign(movement_side[0]) == np.sign(movement_side[1]):
            return False
        going_right = before < 0 < after
        return (self.direction == 'both'
                or (self.direction == 'left_to_right') == going_right)


@dataclass(eq=False)  # identity matters: two bags may look alike
class _LeftObject:
    label: str
    track_id: int
    anchor: np.ndarray  # bottom-centre where it was first put down
    box: np.ndarray
    last_seen_ns: int
    attended_ns: int  # last time a person was near it


class ObjectLeftBehindRule(Rule):
    """A bag-like object stationary for ``stationary_s`` with no person within reach.

    Objects are followed by position (bottom-centre within ``max_move_px``), because
    trackers often drop ids of small static objects.
    """

    kind = 'object_left_behind'
    DEFAULT_CLASSES = ('backpack', 'handbag', 'suitcase')

    def __init__(self, settings: RuleSettings, zone: Zone | None, person_classes: frozenset[str],
                 stationary_s: float, max_move_px: float, person_distance_px: float,
                 max_gap_s: float) -> None:
        super().__init__(settings)
        self.zone, self.person_classes = zone, person_classes
        self._stationary_ns, self._gap_ns = int(stationary_s * 1e9), int(max_gap_s * 1e9)
        self.max_move_px, self.person_distance_px = max_move_px, person_distance_px
        self._objects: list[_LeftObject] = []

    @classmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        person_classes = fields.class_names('person_classes', ['person'])
        return cls(
            fields.settings(cls.DEFAULT_CLASSES), fields.zone('zone', None),
            person_classes, fields.number('stationary_s'),
            fields.number('max_move_px', 15.0), fields.number('person_distance_px', 150.0),
            fields.number('max_gap_s', 2.0))

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        things = _in_zone(self.zone, detections, self.settings.classes)
        people = foot_points(detections.of_class(*self.person_classes).boxes)
        seen: list[_LeftObject] = []
        for box, point, label, track_id in zip(things.boxes, foot_points(things.boxes),
                                               things.labels, things.track_ids.tolist()):
            known = next((o for o in self._objects if o.label == label and o not in seen
                          and np.linalg.norm(o.anchor - point) <= self.max_move_px), None)
            if known is None:
                known = _LeftObject(label, track_id, point, box, stamp_ns, stamp_ns)
                self._objects.append(known)
            known.box, known.last_seen_ns = box, stamp_ns
            if len(people) and np.min(np.linalg.norm(people - point, axis=1)) <= self.person_distance_px:
                known.attended_ns = stamp_ns
            seen.append(known)
        self._objects = [o for o in self._objects if stamp_ns - o.last_seen_ns <= self._gap_ns]
        left = [o for o in seen if stamp_ns - o.attended_ns >= self._stationary_ns]
        if not left:
            return Detections.empty()
        return Detections(np.array([o.box for o in left], np.float32), np.ones(len(left), np.float32),
                          tuple(o.label for o in left), np.array([o.track_id for o in left]))


class CameraEventRule(Rule):
    """The camera's own event (IP Notify, arriving as ``/vss/<cam>/alarm`` with the event type as text).

    Where a camera has such rules, they choose which event types open an incident (of
    ``duration_s``, default the engine's alarm length); see
    :meth:`~kaiserslautern_vss.events.rule_engine.RuleEngine.alarm`.
    """

    kind = 'camera_event'

    def __init__(self, settings: RuleSettings, event_types: Sequence[str], duration_s: float | None) -> None:
        super().__init__(settings)
        self.event_types = frozenset(event_type.casefold() for event_type in event_types)
        self.duration_s = duration_s

    def selects(self, event_type: str) -> bool:
        return event_type.casefold() in self.event_types

    @classmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        event_types = fields.strings('event_types')
        if event_types == []:
            fields.problem('event_types', 'must not be empty')
        duration = fields.raw('duration_s', None)
        return cls(fields.settings(), event_types or [], None if duration is None else fields.number('duration_s'))

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        return Detections.empty()  # fires on alarms only


class BehaviourRule(Rule):
    """A behaviour cue (``/vss/<cam>/behaviour``, see :meth:`RuleEngine.behaviour`) of the rule's
    kind scoring at least ``threshold``, on one of ``cameras`` (omitted: every camera), with one
    of the cue's tracks standing (box bottom-centre) in ``zone`` when one is set; fields
    ``threshold``, ``cameras``, ``zone`` besides the common ones. A single ``camera:`` is refused
    with a hint: these kinds watch a list of cameras."""

    def __init__(self, settings: RuleSettings, cameras: tuple[str, ...], threshold: float,
                 zone: Zone | None) -> None:
        super().__init__(settings)
        self._cameras, self.threshold, self.zone = cameras, threshold, zone

    @property
    def cameras(self) -> tuple[str, ...]:
        return self._cameras

    @classmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        name = fields.string('name')
        if fields.given('camera'):
            fields.raw('camera')
            fields.problem('camera', f'{cls.kind} rules watch a list of cameras: write cameras: [...] '
                                     '(omit it for every camera)')
        cameras = fields.camera_list('cameras')
        return cls(fields.common_settings(name, '', frozenset({'person'})), cameras, fields.score('threshold'),
                   fields.zone('zone', None))

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        return Detections.empty()  # fires on cues only

    def match(self, cues: Sequence[Cue], placed: Detections) -> tuple[Cue, Detections] | None:
        """The strongest cue of this kind that counts, and its tracks among ``placed`` (the
        camera's latest detections); None when none does."""
        for cue in sorted((c for c in cues if c.kind == self.kind and c.score >= self.threshold),
                          key=lambda c: c.score, reverse=True):
            tracks = placed.select(np.isin(placed.track_ids, cue.track_ids)) if len(placed) else placed
            if self.zone is None:
                return cue, tracks
            inside = tracks.select(self.zone.contains(foot_points(tracks.boxes)))
            if len(inside):
                return cue, inside
        return None

    def everywhere(self) -> BehaviourRule:
        """This rule on every camera at any time of day: footage in a dry run has neither a site
        camera nor a time of day."""
        return type(self)(dataclasses.replace(self.settings, time_windows=()), (), self.threshold, self.zone)


class AssaultRule(BehaviourRule):
    kind = ASSAULT


class PersonDownRule(BehaviourRule):
    kind = PERSON_DOWN


class FleeingRule(BehaviourRule):
    kind = FLEEING


class VehicleTamperingRule(BehaviourRule):
    """Meant for review, not for police dispatch."""

    kind = VEHICLE_TAMPERING


RULE_KINDS: dict[str, type[Rule]] = {kind.kind: kind for kind in (
    ZoneIntrusionRule, CrowdingRule, LoiteringRule, LineCrossingRule, ObjectLeftBehindRule, CameraEventRule,
    AssaultRule, PersonDownRule, FleeingRule, VehicleTamperingRule)}
