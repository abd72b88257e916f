"""Which incident folders to delete: retention period, disk quota, free-space floor.

:func:`plan_deletions` decides from a listing and ``now`` only (no clock, no disk);
:func:`scan_incidents` lists, :func:`delete_incidents` deletes: separate small steps.
Evidence (``evidence.json`` in the folder, see :func:`mark_evidence`) and folders still
being written are never deleted. Quota and free-space pressure delete the oldest
non-evidence incidents first.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kaiserslautern_vss.events.integrity import EVIDENCE_FILE

_STAMP_FORMAT = '%Y%m%dT%H%M%SZ'


@dataclass(frozen=True)
class StoredIncident:
    path: Path
    started: datetime  # from the folder name (bag_directory_name), UTC
    size_bytes: int
    evidence: bool


@dataclass(frozen=True)
class RetentionPolicy:
    retention_s: float  # older incidents are deleted
    quota_bytes: int = 0  # all incidents together; 0 = no quota
    min_free_bytes: int = 0  # delete oldest while the filesystem has less free


def started_from_name(name: str) -> datetime | None:
    try:
        return datetime.strptime(name.split('_', 1)[0], _STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def scan_incidents(root: Path) -> list[StoredIncident]:
    """Incident folders under ``root`` (named by bag_directory_name), oldest first."""
    incidents = []
    root = Path(root)
    if not root.is_dir():
        return incidents
    for folder in root.iterdir():
        started = started_from_name(folder.name) if folder.is_dir() else None
        if started is None:
            continue
        size = sum(p.stat().st_size for p in folder.rglob('*') if p.is_file())
        incidents.append(StoredIncident(folder, started, size, (folder / EVIDENCE_FILE).is_file()))
    return sorted(incidents, key=lambda incident: (incident.started, incident.path.name))


def plan_deletions(incidents: Iterable[StoredIncident], now: datetime, policy: RetentionPolicy,
                   free_bytes: int | None = None,
                   in_use: Collection[Path] = ()) -> list[StoredIncident]:
    """Incidents to delete, oldest first: expired ones, then the oldest until quota and
    free-space floor are met (or nothing deletable is left)."""
    candidates = sorted((i for i in incidents if not i.evidence and i.path not in in_use),
                        key=lambda incident: incident.started)
    total = sum(i.size_bytes for i in incidents)
    free = free_bytes
    doomed = []
    for incident in candidates:
        expired = (now - incident.started).total_seconds() > policy.retention_s
        over_quota = policy.quota_bytes > 0 and total > policy.quota_bytes
        short_of_space = free is not None and free < policy.min_free_bytes
        if not (expired or over_quota or short_of_space):
            continue
        doomed.append(incident)
        total -= incident.size_bytes
        if free is not None:
            free += incident.size_bytes
    return doomed


def delete_incidents(incidents: Iterable[StoredIncident]) -> list[str]:
    """Delete the folders; returns errors (a folder that cannot go stays, others still go)."""
    errors = []
    for incident in incidents:
        try:
            shutil.rmtree(incident.path)
        except OSError as error:
            errors.append(f'cannot delete {incident.path}: {error}')
    return errors


def mark_evidence(folder: Path, who: str, why: str, when: datetime) -> Path:
    """Keep ``folder`` beyond retention and quota; the mark says who, why and when."""
    folder = Path(folder)
    if started_from_name(folder.name) is None or not folder.is_dir():
        raise FileNotFoundError(f'{folder} is not an incident folder')
    mark = folder / EVIDENCE_FILE
    mark.write_text(json.dumps({'who': who, 'why': why, 'when': when.isoformat()}, sort_keys=True))
    return mark


def unmark_evidence(folder: Path) -> bool:
    mark = Path(folder) / EVIDENCE_FILE
    if not mark.is_file():
        return False
    mark.unlink()
    return True


def enforce_retention(root: Path, now: datetime, policy: RetentionPolicy,
                      in_use: Collection[Path] = ()) -> tuple[list[StoredIncident], list[str]]:
    """Scan, plan and delete in one call: ``(deleted, errors)``; never raises on disk errors."""
    try:
        incidents = scan_incidents(root)
        free = shutil.disk_usage(root).free if Path(root).is_dir() else None
    except OSError as error:
        return [], [f'cannot scan {root}: {error}']
    doomed = plan_deletions(incidents, now, policy, free, {Path(p) for p in in_use})
    errors = delete_incidents(doomed)
    return [i for i in doomed if not i.path.exists()], errors
