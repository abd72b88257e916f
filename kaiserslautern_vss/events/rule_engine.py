"""The engine that turns rule conditions into incident lifecycles, with hysteresis,
cooldown and merging.

Merging: there is at most one open incident per camera. A rule (or a manual trigger)
that fires while another incident is open on the same camera joins that incident as an
``update`` (listed in ``Incident.rules``) rather than opening a second, overlapping one:
one recording per camera, one event per situation. The incident ends when every merged
condition has stayed false for ``end_hold_s`` and any manual duration is over.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kaiserslautern_vss.behaviour.types import Cue
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.events.rule_base import MANUAL_RULE, Rule
from kaiserslautern_vss.events.rule_kinds import BehaviourRule, CameraEventRule
from kaiserslautern_vss.events.rule_schema import RuleConfigError


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
            if not isinstance(rule, BehaviourRule) or not rule.applies_to(camera):
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
