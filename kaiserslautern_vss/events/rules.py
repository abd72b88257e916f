"""Incident rules from plain (YAML-loaded) configuration, and the engine that applies them.

A rule looks at one camera's detections and names the objects that violate it (an empty
selection means "condition false"). The :class:`RuleEngine` turns those conditions into
incident lifecycles with hysteresis, cooldown and merging. Kinds: ``zone_intrusion``,
``crowding``, ``loitering``, ``line_crossing``, ``object_left_behind``, and ``camera_event``
for the cameras' own events arriving as alarms, and the behaviour kinds ``assault``,
``person_down``, ``fleeing``, ``vehicle_tampering`` fired by the behaviour stage's cues
(:mod:`~kaiserslautern_vss.events.behaviour_rules`; see :data:`RULE_PARSERS` and each rule
class for its fields).

Merging: there is at most one open incident per camera. A rule (or a manual trigger)
that fires while another incident is open on the same camera joins that incident as an
``update`` (listed in ``Incident.rules``) rather than opening a second, overlapping one:
one recording per camera, one event per situation. The incident ends when every merged
condition has stayed false for ``end_hold_s`` and any manual duration is over.
"""

from __future__ import annotations

import math
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import yaml

from kaiserslautern_vss.behaviour.types import Cue
from kaiserslautern_vss.detection.types import UNTRACKED, Detections
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.events.zones import Zone, ZoneConfigError, foot_points

DEFAULT_TIMEZONE = 'Europe/Berlin'
MANUAL_RULE = 'manual'
_REQUIRED = object()
_WINDOW_PATTERN = re.compile(r'^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$')


class RuleConfigError(ValueError):
    """A rule configuration is invalid; one line per problem, each naming the rule and the field."""

    def __init__(self, *problems: str) -> None:
        super().__init__('\n'.join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TimeWindow:
    """Local time-of-day window ``[start, end)``; wraps past midnight when end < start."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """``'22:00-06:00'`` -> window; raises ValueError on bad syntax or empty window."""
        match = _WINDOW_PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"expected 'HH:MM-HH:MM', got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            window = cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f'not a valid time of day in {text!r}') from None
        if window.start == window.end:
            raise ValueError(f'window {text!r} is empty (start equals end)')
        return window

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class RuleSettings:
    """Fields every rule has."""

    name: str
    camera: str
    classes: frozenset[str] = frozenset({'person'})
    time_windows: tuple[TimeWindow, ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    min_duration_s: float = 0.0

    def active_at(self, stamp_ns: int) -> bool:
        """Inside one of the time windows (local time), or always when none are set."""
        if not self.time_windows:
            return True
        local = datetime.fromtimestamp(stamp_ns / 1e9, tz=timezone.utc).astimezone(self.timezone)
        return any(window.contains(local.time()) for window in self.time_windows)


class Rule(ABC):
    """One configured condition on one camera's image."""

    kind: ClassVar[str]

    def __init__(self, settings: RuleSettings) -> None:
        self.settings = settings

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def camera(self) -> str:
        return self.settings.camera

    @property
    def cameras(self) -> tuple[str, ...]:
        """The cameras the rule watches; () for every camera (kinds with a camera list)."""
        return (self.settings.camera,)

    def applies_to(self, camera: str) -> bool:
        return not self.cameras or camera in self.cameras

    @abstractmethod
    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        """The objects that violate the rule in this frame; empty when the condition is false.

        Called for every frame of the rule's camera, also outside its time windows, so that
        rules with memory (tracks, dwell times) stay current.
        """


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

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        return _in_zone(self.zone, detections, self.settings.classes)


class CrowdingRule(Rule):
    """At least ``min_count`` objects in the zone (for ``min_duration_s``)."""

    kind = 'crowding'

    def __init__(self, settings: RuleSettings, zone: Zone, min_count: int) -> None:
        super().__init__(settings)
        self.zone, self.min_count = zone, min_count

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
    ``duration_s``, default the engine's alarm length); see :meth:`RuleEngine.alarm`.
    """

    kind = 'camera_event'

    def __init__(self, settings: RuleSettings, event_types: Sequence[str], duration_s: float | None) -> None:
        super().__init__(settings)
        self.event_types = frozenset(event_type.casefold() for event_type in event_types)
        self.duration_s = duration_s

    def selects(self, event_type: str) -> bool:
        return event_type.casefold() in self.event_types

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        return Detections.empty()  # fires on alarms only


@dataclass(frozen=True)
class References:
    """Checks of the names a rule refers to, supplied by whoever knows the site (the bringup
    knows the configured cameras and the detector's classes); each returns why a name cannot
    be used, or '' when it can."""

    camera: Callable[[str], str]
    class_name: Callable[[str], str]


_ANY_NAME = References(camera=lambda name: '', class_name=lambda name: '')


class _Fields:
    """Reads one rule's config dict field by field, collecting exact, named problems.

    A field with a problem reads as a harmless stand-in value, so that the rest of the rule is
    still read and every problem of the rule is reported at once; :func:`parse_rule` then
    refuses the rule.
    """

    def __init__(self, config: Mapping[str, Any], index: int, references: References | None = None) -> None:
        if not isinstance(config, Mapping):
            raise RuleConfigError(f'rule #{index}: must be a mapping, got {type(config).__name__}')
        self._config = dict(config)
        self._used: set[str] = set()
        self._references = references or _ANY_NAME
        self.problems: list[str] = []
        name = self._config.get('name')
        self.rule = name if isinstance(name, str) and name else f'#{index}'

    def problem(self, key: str, problem: str, stand_in: Any = None) -> Any:
        self.problems.append(f'rule {self.rule!r}: field {key!r}: {problem}')
        return stand_in

    def given(self, key: str) -> bool:
        return key in self._config

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        """The value, the default, or _REQUIRED when a required field is missing (a problem)."""
        self._used.add(key)
        if key not in self._config:
            return self.problem(key, 'is required', _REQUIRED) if default is _REQUIRED else default
        return self._config[key]

    def string(self, key: str, default: Any = _REQUIRED) -> str:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return ''
        if not isinstance(value, str) or not value:
            return self.problem(key, f'must be a non-empty string, got {value!r}', '')
        return value

    def number(self, key: str, default: Any = _REQUIRED, minimum: float = 0.0) -> float:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return minimum
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return self.problem(key, f'must be a number, got {value!r}', minimum)
        if value < minimum:
            return self.problem(key, f'must be >= {minimum:g}, got {value!r}', minimum)
        return float(value)

    def strings(self, key: str, default: Any = _REQUIRED) -> list[str] | None:
        """The list, or None after a problem."""
        value = self.raw(key, default)
        if value is _REQUIRED:
            return None
        if (not isinstance(value, (list, tuple))
                or not all(isinstance(v, str) and v for v in value)):
            return self.problem(key, f'must be a list of non-empty strings, got {value!r}')
        return list(value)

    def class_names(self, key: str, default: Sequence[str]) -> frozenset[str]:
        """A non-empty list of class names, each checked against the detector's when known."""
        names = self.strings(key, list(default))
        if names is None:
            return frozenset()
        if not names:
            return self.problem(key, 'must not be empty', frozenset())
        for name in names:
            self._refer(key, self._references.class_name, name)
        return frozenset(names)

    def _refer(self, key: str, check: Callable[[str], str], name: str) -> None:
        problem = check(name)
        if problem:
            self.problem(key, problem)

    def settings(self, default_classes: Sequence[str] = ('person',)) -> RuleSettings:
        """The fields of a rule on one camera: ``camera`` and ``classes`` besides the common ones."""
        name = self.string('name')
        camera = self.string('camera')
        if camera:
            self._refer('camera', self._references.camera, camera)
        return self.common_settings(name, camera, self.class_names('classes', default_classes))

    def camera_list(self, key: str) -> tuple[str, ...]:
        """Camera ids, each checked against the site's; omitted: () = every camera."""
        cameras = self.strings(key, [])
        if cameras is None:
            return ()
        if not cameras and key in self._config:
            return self.problem(key, 'must not be empty (omit it for every camera)', ())
        for camera in sorted(set(cameras)):
            if cameras.count(camera) > 1:
                self.problem(key, f'lists {camera!r} twice')
            self._refer(key, self._references.camera, camera)
        return tuple(dict.fromkeys(cameras))

    def common_settings(self, name: str, camera: str, classes: frozenset[str]) -> RuleSettings:
        """Time windows, time zone and minimum duration, which every rule kind has."""
        windows = []
        for text in self.strings('time_windows', []) or []:
            try:
                windows.append(TimeWindow.parse(text))
            except ValueError as problem:
                self.problem('time_windows', str(problem))
        tz_name = self.string('timezone', DEFAULT_TIMEZONE)
        try:
            tz = ZoneInfo(tz_name or DEFAULT_TIMEZONE)
        except (ZoneInfoNotFoundError, ValueError):
            tz = self.problem('timezone', f'unknown time zone {tz_name!r}', ZoneInfo(DEFAULT_TIMEZONE))
        return RuleSettings(name=name, camera=camera, classes=classes, time_windows=tuple(windows), timezone=tz,
                            min_duration_s=self.number('min_duration_s', 0.0))

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int = 0) -> int:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return minimum
        if isinstance(value, bool) or not isinstance(value, int):
            return self.problem(key, f'must be an integer, got {value!r}', minimum)
        if value < minimum:
            return self.problem(key, f'must be >= {minimum}, got {value!r}', minimum)
        return value

    def choice(self, key: str, options: Sequence[str], default: Any = _REQUIRED) -> str:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return options[0]
        if value not in options:
            return self.problem(key, f'must be one of {", ".join(options)}; got {value!r}', options[0])
        return value

    def zone(self, key: str, default: Any = _REQUIRED) -> Zone | None:
        value = self.raw(key, default)
        if value is _REQUIRED or (value is None and default is None):
            return None
        try:
            return Zone(self.rule, np.asarray(value, dtype=float))
        except (ZoneConfigError, TypeError, ValueError) as problem:
            return self.problem(key, str(problem))

    def segment(self, key: str) -> np.ndarray:
        value = self.raw(key)
        stand_in = np.array([[0.0, 0.0], [1.0, 0.0]])
        if value is _REQUIRED:
            return stand_in
        try:
            points = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            points = np.zeros(0)
        if points.shape != (2, 2) or not np.isfinite(points).all():
            return self.problem(key, 'must be two [x, y] points', stand_in)
        if np.allclose(points[0], points[1]):
            return self.problem(key, 'the two points must differ', stand_in)
        return points

    def finish(self) -> None:
        unknown = sorted(set(self._config) - self._used)
        if unknown:
            self.problems.append(f'rule {self.rule!r}: unknown field(s) {", ".join(map(repr, unknown))}')


def _zone_intrusion(fields: _Fields) -> Rule:
    return ZoneIntrusionRule(fields.settings(), fields.zone('zone'))


def _crowding(fields: _Fields) -> Rule:
    return CrowdingRule(fields.settings(), fields.zone('zone'), fields.integer('min_count', minimum=1))


def _loitering(fields: _Fields) -> Rule:
    return LoiteringRule(fields.settings(), fields.zone('zone'), fields.number('dwell_s'),
                         fields.number('max_gap_s', 2.0))


def _line_crossing(fields: _Fields) -> Rule:
    return LineCrossingRule(fields.settings(), fields.segment('line'),
                            fields.choice('direction', LINE_DIRECTIONS, 'both'),
                            fields.number('max_gap_s', 2.0))


def _object_left_behind(fields: _Fields) -> Rule:
    person_classes = fields.class_names('person_classes', ['person'])
    return ObjectLeftBehindRule(
        fields.settings(ObjectLeftBehindRule.DEFAULT_CLASSES), fields.zone('zone', None),
        person_classes, fields.number('stationary_s'),
        fields.number('max_move_px', 15.0), fields.number('person_distance_px', 150.0),
        fields.number('max_gap_s', 2.0))


def _camera_event(fields: _Fields) -> Rule:
    event_types = fields.strings('event_types')
    if event_types == []:
        fields.problem('event_types', 'must not be empty')
    duration = fields.raw('duration_s', None)
    return CameraEventRule(fields.settings(), event_types or [],
                           None if duration is None else fields.number('duration_s'))


RULE_PARSERS: dict[str, Callable[[_Fields], Rule]] = {
    ZoneIntrusionRule.kind: _zone_intrusion,
    CrowdingRule.kind: _crowding,
    LoiteringRule.kind: _loitering,
    LineCrossingRule.kind: _line_crossing,
    ObjectLeftBehindRule.kind: _object_left_behind,
    CameraEventRule.kind: _camera_event,
}


def parse_rule(config: Mapping[str, Any], index: int = 0, references: References | None = None) -> Rule:
    """One rule from its config dict (``kind`` selects the rule type); raises RuleConfigError
    listing every problem of the rule."""
    fields = _Fields(config, index, references)
    kind = fields.string('kind')
    parser = RULE_PARSERS.get(kind)
    if parser is None:
        if kind:
            fields.problem('kind', f'unknown rule kind {kind!r}; known: {", ".join(sorted(RULE_PARSERS))}')
        raise RuleConfigError(*fields.problems)  # the other fields depend on the kind
    rule = parser(fields)
    fields.finish()
    if fields.problems:
        raise RuleConfigError(*fields.problems)
    return rule


def check_rules(configs: Iterable[Mapping[str, Any]],
                references: References | None = None) -> tuple[list[Rule], list[str]]:
    """The rules that parse and every problem of the others, so that one look at a rules file
    lists everything to fix; names must be unique."""
    if isinstance(configs, (str, bytes, Mapping)) or not isinstance(configs, Iterable):
        raise RuleConfigError(f'rules must be a list of mappings, got {type(configs).__name__}')
    rules, problems = [], []
    for index, config in enumerate(configs):
        try:
            rules.append(parse_rule(config, index, references))
        except RuleConfigError as error:
            problems.extend(error.problems)
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen or rule.name == MANUAL_RULE:
            problems.append(f'rule {rule.name!r}: field \'name\': '
                            + ('is reserved' if rule.name == MANUAL_RULE else 'is used twice'))
        seen.add(rule.name)
    return rules, problems


def parse_rules(configs: Iterable[Mapping[str, Any]]) -> list[Rule]:
    """All rules of a config list; raises RuleConfigError listing every problem."""
    rules, problems = check_rules(configs)
    if problems:
        raise RuleConfigError(*problems)
    return rules


@dataclass
class _Condition:
    """Debounced state of one rule on its camera."""

    onset_ns: int | None = None
    last_true_ns: int | None = None


class RuleEngine:
    """Applies rules to detections and keeps the incident lifecycle per camera.

    All times are message stamps passed in (no clock is read). ``end_hold_s``: a
    condition must stay false this long before its incident ends (also the gap a
    condition may have, e.g. a missed detection, without restarting ``min_duration_s``).
    ``cooldown_s``: after an incident ends, its rules cannot open a new one on that camera
    for this long. ``manual_duration_s``: length of a :meth:`trigger` incident.
    """

    def __init__(self, rules: Sequence[Rule], end_hold_s: float = 3.0, cooldown_s: float = 0.0,
                 manual_duration_s: float = 10.0,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        for label, value in (('end_hold_s', end_hold_s), ('cooldown_s', cooldown_s),
                             ('manual_duration_s', manual_duration_s)):
            if not (math.isfinite(value) and value >= 0):
                raise RuleConfigError(f'rule engine: {label} must be a finite number >= 0, got {value!r}')
        self.rules = list(rules)
        self._hold_ns = int(end_hold_s * 1e9)
        self._cooldown_ns = int(cooldown_s * 1e9)
        self._manual_ns = int(manual_duration_s * 1e9)
        self._new_id = new_id
        self._conditions: dict[tuple[str, str], _Condition] = {}  # (rule, camera)
        self._latest_detections: dict[str, Detections] = {}  # camera -> where its tracks stand
        self._open: dict[str, Incident] = {}
        self._active_until_ns: dict[str, int] = {}
        self._cooldown_until_ns: dict[tuple[str, str], int] = {}

    @property
    def open_incidents(self) -> list[Incident]:
        return list(self._open.values())

    def update(self, camera: str, stamp_ns: int, detections: Detections) -> list[IncidentUpdate]:
        """Apply the camera's rules to one frame's detections."""
        updates = self._expire(stamp_ns, [camera])
        self._latest_detections[camera] = detections
        for rule in self.rules:
            if not rule.applies_to(camera):
                continue
            violating = rule.violating(stamp_ns, detections)
            if not rule.settings.active_at(stamp_ns):
                continue
            if self._debounced(rule, camera, stamp_ns, len(violating) > 0):
                updates += self._fire(camera, rule.name, rule.kind, stamp_ns, violating,
                                      reason=f'{rule.kind} {rule.name}')
        return updates

    def behaviour(self, camera: str, stamp_ns: int, cues: Sequence[Cue]) -> list[IncidentUpdate]:
        """Apply the camera's behaviour rules to one frame's cues (the behaviour stage's scores).

        A rule's condition holds while a cue of its kind reaches the rule's threshold (with one
        of the cue's tracks in the rule's zone, placed by the camera's latest detections); it is
        debounced like every condition, and the incident keeps the cue's peak score and evidence.
        """
        updates = self._expire(stamp_ns, [camera])
        placed = self._latest_detections.get(camera, Detections.empty())
        for rule in self.rules:
            if not isinstance(rule, behaviour_rules.BehaviourRule) or not rule.applies_to(camera):
                continue
            found = rule.match(cues, placed)
            if not rule.settings.active_at(stamp_ns):
                continue
            if self._debounced(rule, camera, stamp_ns, found is not None):
                cue, involved = found
                updates += self._fire(camera, rule.name, rule.kind, stamp_ns, involved,
                                      reason=f'{rule.kind} {rule.name}', cue=cue)
        return updates

    def trigger(self, camera: str, stamp_ns: int, source: str, reason: str,
                duration_s: float | None = None) -> list[IncidentUpdate]:
        """A manual/external incident of fixed duration (ignores cooldown: a person asked)."""
        if duration_s is not None and not (math.isfinite(duration_s) and duration_s >= 0):
            raise ValueError(f'trigger on {camera!r}: duration_s must be a finite number >= 0, '
                             f'got {duration_s!r}')
        duration_ns = self._manual_ns if duration_s is None else int(duration_s * 1e9)
        updates = self._expire(stamp_ns, [camera])
        updates += self._fire(camera, MANUAL_RULE, MANUAL_RULE, stamp_ns, Detections.empty(),
                              reason=f'{source}: {reason}', active_until_ns=stamp_ns + duration_ns)
        return updates

    def alarm(self, camera: str, stamp_ns: int, reason: str) -> list[IncidentUpdate]:
        """An alarm input of the camera (``reason``: its text, for a camera event the event type).

        Where the camera has ``camera_event`` rules, they choose: an alarm fires the active rules
        whose event types include it and is otherwise ignored. Without such rules every alarm
        opens an incident (alarm panels, door contacts).
        """
        rules = [rule for rule in self.rules if rule.applies_to(camera) and isinstance(rule, CameraEventRule)]
        if not rules:
            return self.trigger(camera, stamp_ns, source='alarm', reason=reason)
        updates = self._expire(stamp_ns, [camera])
        for rule in rules:
            if rule.selects(reason) and rule.settings.active_at(stamp_ns):
                duration_ns = self._manual_ns if rule.duration_s is None else int(rule.duration_s * 1e9)
                updates += self._fire(camera, rule.name, rule.kind, stamp_ns, Detections.empty(),
                                      reason=f'{rule.kind} {rule.name}: {reason}',
                                      active_until_ns=stamp_ns + duration_ns)
        return updates

    def tick(self, stamp_ns: int) -> list[IncidentUpdate]:
        """End incidents whose hold expired, also on cameras that sent nothing since."""
        return self._expire(stamp_ns, list(self._open))

    def _debounced(self, rule: Rule, camera: str, stamp_ns: int, is_true: bool) -> bool:
        """Condition true for at least ``min_duration_s`` (gaps up to end_hold_s allowed)."""
        if not is_true:
            return False
        state = self._conditions.setdefault((rule.name, camera), _Condition())
        if state.last_true_ns is None or stamp_ns - state.last_true_ns > self._hold_ns:
            state.onset_ns = stamp_ns
        state.last_true_ns = stamp_ns
        return stamp_ns - state.onset_ns >= int(rule.settings.min_duration_s * 1e9)

    def _fire(self, camera: str, rule: str, kind: str, stamp_ns: int, violating: Detections,
              reason: str, active_until_ns: int | None = None, cue: Cue | None = None) -> list[IncidentUpdate]:
        until = stamp_ns + self._hold_ns if active_until_ns is None else active_until_ns
        incident = self._open.get(camera)
        if incident is None:
            if rule != MANUAL_RULE and stamp_ns < self._cooldown_until_ns.get((camera, rule), stamp_ns):
                return []
            incident = Incident(id=self._new_id(), rule=rule, camera=camera, kind=kind,
                                started_ns=stamp_ns, updated_ns=stamp_ns,
                                rules=[rule], reasons=[reason])
            incident.add_objects(stamp_ns, violating)
            if cue is not None:
                incident.add_cue(rule, cue, stamp_ns)
            self._open[camera] = incident
            self._active_until_ns[camera] = until
            return [IncidentUpdate('start', incident)]
        changed = incident.add_objects(stamp_ns, violating)
        if cue is not None:
            changed |= incident.add_cue(rule, cue, stamp_ns)
        if rule not in incident.rules:
            incident.rules.append(rule)
            changed = True
        if reason not in incident.reasons:
            incident.reasons.append(reason)
            changed = True
        changed |= until > self._active_until_ns[camera] and rule == MANUAL_RULE
        incident.updated_ns = max(incident.updated_ns, stamp_ns)
        self._active_until_ns[camera] = max(self._active_until_ns[camera], until)
        return [IncidentUpdate('update', incident)] if changed else []

    def _expire(self, stamp_ns: int, cameras: Iterable[str]) -> list[IncidentUpdate]:
        updates = []
        for camera in cameras:
            incident = self._open.get(camera)
            if incident is None or stamp_ns < self._active_until_ns[camera]:
                continue
            incident.ended_ns = self._active_until_ns.pop(camera)
            del self._open[camera]
            for rule in incident.rules:
                self._cooldown_until_ns[(camera, rule)] = incident.ended_ns + self._cooldown_ns
            updates.append(IncidentUpdate('end', incident))
        return updates


def read_rule_configs(path: Path) -> Any:
    """The ``rules`` entry of a YAML file holding ``rules: [...]``, unparsed."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise RuleConfigError(f'cannot read rules file {path}: {error.strerror}') from error
    except yaml.YAMLError as error:
        raise RuleConfigError(f'rules file {path} is not valid YAML: {error}') from error
    if not isinstance(document, dict) or 'rules' not in document:
        raise RuleConfigError(f'{path}: expected a mapping with a "rules" list')
    return document['rules']


def load_rules_file(path: Path) -> list[Rule]:
    """The rules of a YAML file holding ``rules: [...]``."""
    return parse_rules(read_rule_configs(path))


# The behaviour kinds build on Rule and _Fields above and add their parsers to RULE_PARSERS.
from kaiserslautern_vss.events import behaviour_rules  # noqa: E402
