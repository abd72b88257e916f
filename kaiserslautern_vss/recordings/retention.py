"""Which incident folders to delete: retention period, disk quota, free-space floor.

:func:`plan_deletions` decides from a listing and ``now`` only (no clock, no disk);
:func:`scan_incidents` lists, :func:`delete_incidents` deletes: separate small steps.
Never deleted: evidence (an ``evidence.json`` mark, signed or not: keeping wins), folders
still being written (``in_use``). Expired incidents go whatever their age rank. Space
pressure (quota, free-space floor plus the room about to be needed) deletes the oldest
closed non-evidence incidents first, but never the newest closed one: an incident just
recorded must not make room for the next by disappearing itself.

:class:`DiskGuard` runs that *before* writing: the recorder asks it for room before it
opens a bag and again while the bag grows; ``False`` means no room could be made.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kaiserslautern_vss.recordings.integrity import EVIDENCE_FILE

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
    min_free_bytes: int = 0  # keep at least this much free on the filesystem


def started_from_name(name: str) -> datetime | None:
    try:
        return datetime.strptime(name.split('_', 1)[0], _STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _regular_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob('*'):
        info = path.lstat()
        total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


def incident_folders(root: Path) -> list[tuple[Path, datetime]]:
    """``(folder, started)`` of the incident folders under ``root`` (named by
    bag_directory_name, links not followed), oldest first; nothing read inside them."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        started = started_from_name(folder.name) if folder.is_dir() and not folder.is_symlink() else None
        if started is not None:
            found.append((folder, started))
    return sorted(found, key=lambda item: (item[1], item[0].name))


def scan_incidents(root: Path) -> list[StoredIncident]:
    """Incident folders under ``root`` with their sizes and evidence marks, oldest first."""
    return [StoredIncident(folder, started, _regular_bytes(folder), (folder / EVIDENCE_FILE).is_file())
            for folder, started in incident_folders(root)]


def plan_deletions(incidents: Iterable[StoredIncident], now: datetime, policy: RetentionPolicy,
                   free_bytes: int | None = None, in_use: Collection[Path] = (),
                   needed_bytes: int = 0) -> list[StoredIncident]:
    """Incidents to delete, oldest first: expired ones, then (under space pressure) the
    oldest closed non-evidence ones except the newest closed, until quota and
    ``min_free_bytes + needed_bytes`` free are met or nothing deletable is left."""
    incidents = sorted(incidents, key=lambda incident: (incident.started, incident.path.name))
    closed = [i for i in incidents if i.path not in in_use]
    newest_closed = closed[-1] if closed else None
    total = sum(i.size_bytes for i in incidents)
    free = free_bytes
    doomed = []
    for incident in closed:
        if incident.evidence:
            continue
        expired = (now - incident.started).total_seconds() > policy.retention_s
        over_quota = policy.quota_bytes > 0 and total > policy.quota_bytes
        short_of_space = free is not None and free < policy.min_free_bytes + needed_bytes
        if not (expired or ((over_quota or short_of_space) and incident is not newest_closed)):
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


def enforce_retention(root: Path, now: datetime, policy: RetentionPolicy, in_use: Collection[Path] = (),
                      needed_bytes: int = 0) -> tuple[list[StoredIncident], list[str]]:
    """Scan, plan and delete in one call: ``(deleted, errors)``; never raises on disk errors."""
    try:
        incidents = scan_incidents(root)
        free = shutil.disk_usage(root).free if Path(root).is_dir() else None
    except OSError as error:
        return [], [f'cannot scan {root}: {error}']
    doomed = plan_deletions(incidents, now, policy, free, {Path(p) for p in in_use}, needed_bytes)
    errors = delete_incidents(doomed)
    return [i for i in doomed if not i.path.exists()], errors


class DiskGuard:
    """Makes room under ``root`` before the recorder writes, by the retention policy.

    ``in_use`` names the folders being written (never deleted); ``on_deleted`` hears of
    every incident deleted to make room (log, audit). ``reserve_bytes`` stays free on top
    of the policy's floor so a bag can always still be closed and sealed; with
    ``copy_on_seal`` (encryption at rest writes a copy before removing the plain file)
    the bag's own size is reserved too.
    """

    def __init__(self, root: Path, policy: RetentionPolicy, *, in_use: Callable[[], Collection[Path]],
                 clock: Callable[[], datetime], reserve_bytes: int = 256 * 1024, copy_on_seal: bool = False,
                 on_deleted: Callable[[StoredIncident], None] = lambda incident: None) -> None:
        self.root = Path(root)
        self.policy = policy
        self._in_use = in_use
        self._clock = clock
        self._reserve_bytes = reserve_bytes
        self._copy_on_seal = copy_on_seal
        self._on_deleted = on_deleted
        self.errors: list[str] = []

    def room_for(self, upcoming_bytes: int, bag_bytes: int = 0) -> bool:
        """True if ``upcoming_bytes`` more can be written (deleting by the policy if needed)."""
        needed = upcoming_bytes + self._reserve_bytes + (bag_bytes if self._copy_on_seal else 0)
        if self._free() >= self.policy.min_free_bytes + needed:
            return True
        deleted, self.errors = enforce_retention(self.root, self._clock(), self.policy, self._in_use(), needed)
        for incident in deleted:
            self._on_deleted(incident)
        return self._free() >= self.policy.min_free_bytes + needed

    def _free(self) -> int:
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return 0
