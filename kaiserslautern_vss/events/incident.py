"""Incidents (what happened, where, when, which anonymous objects) and their JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np

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
class Incident:
    """An incident on one camera, open while ``ended_ns`` is None.

    ``rule``/``kind`` are the rule that opened it; ``rules`` lists every rule (or
    ``manual``) merged into it since. ``objects`` are keyed by ``(track_id, label)``;
    untracked detections (track id -1) share one entry per label holding the latest box.
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
