"""Incidents (what happened, where, when, which anonymous objects) and their JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np

from kaiserslautern_vss.behaviour.types import Cue
from kaiserslautern_vss.detection.types import Detections

EVENT_SCHEMA = 'kaiserslautern_vss/event/v1'

Phase = Literal['start', 'update', 'end']


def iso_utc(stamp_ns: int) -> str:
    """``2026-11-26T15:30:12.345678Z`` (microseconds; the ns value travels alongside)."""
    moment = datetime.fromtimestamp(stamp_ns // 1000 / 1e6, tz=timezone.utc)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


@dataclass
class IncidentObject:
    """One object involved: tracker id (or -1), class label, its latest box in pixels."""

    track_id: int
    label: str
    box: tuple[float, float, float, float]
    first_seen_ns: int
    last_seen_ns: int

    def to_dict(self) -> dict[str, Any]:
        return {'track_id': self.track_id, 'label': self.label,
                'box': [round(v, 1) for v in self.box],
                'first_seen_ns': self.first_seen_ns, 'last_seen_ns': self.last_seen_ns}


@dataclass
class CueRecord:
    """A behaviour rule's cue in an incident: its peak score, the tracks and the evidence measured
    at that peak, and when the rule first fired."""

    kind: str
    score: float
    track_ids: tuple[int, ...]
    evidence: dict[str, float]
    first_ns: int
    peak_ns: int

    def to_dict(self, rule: str) -> dict[str, Any]:
        return {'rule': rule, 'kind': self.kind, 'score': round(self.score, 4), 'track_ids': list(self.track_ids),
                'evidence': {name: round(value, 4) for name, value in self.evidence.items()},
                'first_ns': self.first_ns, 'peak_ns': self.peak_ns}


@dataclass
class Incident:
    """An incident on one camera, open while ``ended_ns`` is None.

    ``rule``/``kind`` are the rule that opened it; ``rules`` lists every rule (or
    ``manual``) merged into it since. ``objects`` are keyed by ``(track_id, label)``;
    untracked detections (track id -1) share one entry per label holding the latest box.
    ``cues`` holds, per behaviour rule that fired, the cue that made it fire (peak score).
    """

    id: str
    rule: str
    camera: str
    kind: str
    started_ns: int
    updated_ns: int
    ended_ns: int | None = None
    objects: dict[tuple[int, str], IncidentObject] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    cues: dict[str, CueRecord] = field(default_factory=dict)
    bag_path: str | None = None
    # 'recording' while its bag is written, 'failed' (no bag: no disk space or a disk
    # error) or 'cut' (the bag ends early); None before the recorder saw it
    recording: str | None = None
    recording_problem: str | None = None

    @property
    def is_open(self) -> bool:
        return self.ended_ns is None

    def add_objects(self, stamp_ns: int, detections: Detections) -> bool:
        """Record ``detections`` as involved; True if an object not seen before joined."""
        joined = False
        for box, label, track_id in zip(np.asarray(detections.boxes, float).tolist(),
                                        detections.labels, detections.track_ids.tolist()):
            key = (int(track_id), label)
            known = self.objects.get(key)
            if known is None:
                self.objects[key] = IncidentObject(key[0], label, tuple(box), stamp_ns, stamp_ns)
                joined = True
            else:
                known.box, known.last_seen_ns = tuple(box), stamp_ns
        return joined

    def add_cue(self, rule: str, cue: Cue, stamp_ns: int) -> bool:
        """Record ``rule``'s cue, keeping its peak; True when the rule's cue is new here."""
        known = self.cues.get(rule)
        if known is None:
            self.cues[rule] = CueRecord(cue.kind, cue.score, cue.track_ids, dict(cue.evidence), stamp_ns, stamp_ns)
            return True
        if cue.score > known.score:
            known.score, known.track_ids, known.evidence, known.peak_ns = (
                cue.score, cue.track_ids, dict(cue.evidence), stamp_ns)
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            'schema': EVENT_SCHEMA,
            'id': self.id,
            'state': 'open' if self.is_open else 'ended',
            'rule': self.rule,
            'kind': self.kind,
            'rules': list(self.rules),
            'reasons': list(self.reasons),
            'camera': self.camera,
            'started': iso_utc(self.started_ns),
            'started_ns': self.started_ns,
            'updated': iso_utc(self.updated_ns),
            'updated_ns': self.updated_ns,
            'ended': None if self.ended_ns is None else iso_utc(self.ended_ns),
            'ended_ns': self.ended_ns,
            'objects': [obj.to_dict() for obj in self.objects.values()],
            'cues': [record.to_dict(rule) for rule, record in self.cues.items()],
            'bag_path': self.bag_path,
            'recording': self.recording,
            'recording_problem': self.recording_problem,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class IncidentUpdate:
    """A change to an incident, in the order it happened.

    ``incident`` is the engine's live object (not a copy), so a bag path set on it
    appears in every later update of the same incident.
    """

    phase: Phase
    incident: Incident

    def to_dict(self) -> dict[str, Any]:
        return {**self.incident.to_dict(), 'phase': self.phase}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
