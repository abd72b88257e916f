"""The incident list: recorded folders with camera, rule, time and state, and its filters."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kaiserslautern_vss.console.live import short_id
from kaiserslautern_vss.recordings.encryption import ENCRYPTED_SUFFIX
from kaiserslautern_vss.recordings.integrity import MANIFEST_FILE
from kaiserslautern_vss.recordings.retention import scan_incidents, started_from_name

STATES = ('open', 'closed', 'acknowledged', 'evidence')
STATE_LABELS = {'open': 'offen', 'closed': 'abgeschlossen', 'acknowledged': 'quittiert', 'evidence': 'Beweismittel'}


class IncidentNotFound(LookupError):
    """No incident folder of that name (or a name that is not one)."""


@dataclass(frozen=True)
class IncidentSummary:
    name: str
    camera: str
    rule: str
    started: datetime
    size_bytes: int
    open: bool
    evidence: bool
    acknowledged: bool
    encrypted: bool

    @property
    def states(self) -> set[str]:
        states = {'open' if self.open else 'closed'}
        if self.acknowledged:
            states.add('acknowledged')
        if self.evidence:
            states.add('evidence')
        return states


@dataclass(frozen=True)
class IncidentFilter:
    camera: str = ''
    rule: str = ''
    since: datetime | None = None
    until: datetime | None = None
    state: str = ''

    def matches(self, incident: IncidentSummary) -> bool:
        return ((not self.camera or incident.camera == self.camera)
                and (not self.rule or incident.rule == self.rule)
                and (self.since is None or incident.started >= self.since)
                and (self.until is None or incident.started <= self.until)
                and (not self.state or self.state in incident.states))


def split_name(name: str, cameras: Iterable[str]) -> tuple[str, str]:
    """``(camera, rule)`` of a folder named ``<stamp>_<camera>_<rule>_<id>``."""
    rest = name.split('_', 1)[1].rsplit('_', 1)[0] if name.count('_') >= 3 else ''
    for camera in sorted(cameras, key=len, reverse=True):
        if rest.startswith(camera + '_'):
            return camera, rest[len(camera) + 1:]
    camera, _, rule = rest.partition('_')
    return camera, rule


def list_incidents(root: Path, cameras: Iterable[str], open_names: Collection[str],
                   acknowledged: Collection[str]) -> list[IncidentSummary]:
    """Every incident folder under ``root``, newest first.

    Open: the incident is still open on /vss/events, or its bag is not sealed yet.
    """
    cameras = list(cameras)
    summaries = []
    for stored in scan_incidents(root):
        name = stored.path.name
        camera, rule = split_name(name, cameras)
        sealed = (stored.path / MANIFEST_FILE).is_file()
        summaries.append(IncidentSummary(
            name, camera, rule, stored.started, stored.size_bytes, name in open_names or not sealed,
            stored.evidence, short_id(name) in acknowledged,
            any(p.name.endswith(ENCRYPTED_SUFFIX) for p in stored.path.iterdir())))
    return summaries[::-1]


def incident_folder(root: Path, name: str) -> Path:
    """The folder of incident ``name`` directly under ``root``; never a path elsewhere."""
    if not name or '/' in name or '\\' in name or name.startswith('.') or started_from_name(name) is None:
        raise IncidentNotFound(name)
    folder = Path(root) / name
    if not folder.is_dir():
        raise IncidentNotFound(name)
    return folder
