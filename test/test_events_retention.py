"""Retention with an injected clock, quota and free-space floor, signed evidence marks, and
the space guard on a really small disk (a 3 MB tmpfs): room is made before writing,
oldest closed non-evidence goes first, the newest closed and evidence stay, and a bag
that gets no room is not started or is cut cleanly, sealed."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from kaiserslautern_vss.events.incident import IncidentUpdate
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.integrity import mark_evidence, verify_incident
from kaiserslautern_vss.recordings.retention import (DiskGuard, RetentionPolicy, StoredIncident, enforce_retention,
                                                     plan_deletions, scan_incidents)
from kaiserslautern_vss.recordings.sealing import seal_incident
from kaiserslautern_vss.tools import evidence
from test_events_integrity import keys, record_sealed  # noqa: F401  (fixture)
from test_events_recorder import FRAME, IMAGE, SECOND, T0, image_cdr, incident, recorder

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
HOUR = 3600.0


def _stored(hours_ago: float, size: int = 100, evidence: bool = False, name: str = '') -> StoredIncident:
    started = NOW - timedelta(hours=hours_ago)
    return StoredIncident(Path(name or started.strftime('%Y%m%dT%H%M%SZ_cam01_r_x')), started, size, evidence)


def test_expired_incidents_go_unless_evidence_or_in_use():
    old, old_evidence, busy, fresh = _stored(73), _stored(100, evidence=True), _stored(80, name='busy'), _stored(71)
    policy = RetentionPolicy(retention_s=72 * HOUR)
    assert plan_deletions([old, old_evidence, busy, fresh], NOW, policy, in_use=[Path('busy')]) == [old]
    assert plan_deletions([old, fresh], NOW - timedelta(hours=2), policy) == []  # the clock decides


def test_quota_and_free_space_delete_oldest_non_evidence_first():
    a, b, c, d = _stored(10, 400, evidence=True), _stored(9, 300), _stored(8, 300), _stored(1, 300)
    policy = RetentionPolicy(retention_s=72 * HOUR, quota_bytes=900)
    assert plan_deletions([d, c, b, a], NOW, policy) == [b, c]  # 1300 -> 1000 -> 700
    floor = RetentionPolicy(retention_s=72 * HOUR, min_free_bytes=500)
    assert plan_deletions([a, b, c, d], NOW, floor, free_bytes=100) == [b, c]
    assert plan_deletions([a, b, c, d], NOW, floor, free_bytes=600) == []
    assert plan_deletions([a], NOW, floor, free_bytes=0) == []  # evidence is never deleted


def test_under_pressure_the_newest_closed_incident_stays_expiry_still_applies():
    b, c = _stored(9, 300), _stored(8, 300)
    floor = RetentionPolicy(retention_s=72 * HOUR, min_free_bytes=500)
    assert plan_deletions([b, c], NOW, floor, free_bytes=0) == [b]  # c is the newest closed
    assert plan_deletions([b, c], NOW, floor, free_bytes=0, in_use=[c.path]) == []  # c open, b newest closed
    assert plan_deletions([c], NOW + timedelta(days=5), floor, free_bytes=0) == [c]  # expired
    assert plan_deletions([b, c], NOW, floor, free_bytes=600, needed_bytes=200) == [b]  # room for what comes


def test_scan_reads_names_sizes_and_evidence_cli_marks_signed_with_audit(tmp_path, keys, capsys):
    key, _ = keys
    root = tmp_path / 'recordings'
    newer = record_sealed(root, key, started_ns=T0 + 86400 * SECOND, incident_id='b' * 32)
    first = record_sealed(root, key)
    (root / 'not_an_incident').mkdir()
    arguments = ['--by', 'PHK Meier', '--why', 'Az. 1/26', '--signing-key', str(tmp_path / 'keys' / 'signing_key.pem'),
                 '--audit-key', str(tmp_path / 'keys' / 'audit.key')]
    assert evidence.main(['mark', str(first), *arguments]) == 0
    assert evidence.main(['mark', str(first), *arguments[2:], '--by', '']) == 2
    scanned = scan_incidents(root)
    assert [(i.path, i.evidence) for i in scanned] == [(first, True), (newer, False)]
    assert scanned[0].size_bytes == sum(p.stat().st_size for p in first.iterdir())
    evidence.main(['list', str(root)])
    assert f'EVIDENCE sealed   2026-11-18' in capsys.readouterr().out
    audit = AuditLog(tmp_path / 'audit.log', tmp_path / 'keys' / 'audit.key')
    assert [(e['actor'], e['action'], e['target']) for e in audit.entries()] == [
        ('PHK Meier', 'evidence mark', first.name)]
    deleted, _ = enforce_retention(root, datetime(2026, 12, 30, tzinfo=timezone.utc), RetentionPolicy(72 * HOUR))
    assert [i.path for i in deleted] == [newer] and first.is_dir()
    assert evidence.main(['release', str(first), *arguments]) == 0
    assert not scan_incidents(root)[0].evidence and audit.verify() == []


def _big_image_cdr(stamp_ns: int) -> bytes:
    return image_cdr(stamp_ns, np.random.default_rng(stamp_ns % 1000).integers(0, 255, 50_000, np.uint8))


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real small filesystem mounted at ``folder`` (skips the test where mounting is not allowed)."""
    folder.mkdir()
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size},mode=0700', 'tmpfs', str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f'cannot mount a {size} tmpfs here (needs root): {result.stderr.strip()}')
    try:
        yield folder
    finally:
        subprocess.run(['umount', '-l', str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / 'disk', '3m') as disk:
        yield disk


def _guarded_recorder(root: Path, key, policy: RetentionPolicy, **options):
    deleted = []
    rec = None
    guard = DiskGuard(root, policy, in_use=lambda: rec.open_bags.values(), clock=lambda: NOW,
                      reserve_bytes=256 * 1024, on_deleted=deleted.append)
    root.mkdir(exist_ok=True)
    rec = recorder(root, on_closed=lambda folder, cut: seal_incident(folder, key, cut=cut),
                   room=guard.room_for, **options)
    return rec, deleted


def _record(rec, number: int, frames_before: int = 10, frames_during: int = 10) -> Path | None:
    """An incident on cam01, one hour after the previous one, with 50 kB frames."""
    stamp = T0 + number * 3600 * SECOND
    for _ in range(frames_before):
        rec.on_message('cam01', IMAGE, stamp, _big_image_cdr(stamp))
        stamp += FRAME
    current = incident(started_ns=stamp - FRAME, incident_id=f'{number:032x}')
    path = rec.on_incident(IncidentUpdate('start', current), now_ns=stamp)
    for _ in range(frames_during):
        rec.on_message('cam01', IMAGE, stamp, _big_image_cdr(stamp))
        stamp += FRAME
    current.ended_ns = stamp
    rec.on_incident(IncidentUpdate('end', current), now_ns=stamp)
    rec.poll(stamp + 10 * SECOND)  # post-event over: closed and sealed
    return path


def test_guard_makes_room_before_writing_keeps_newest_and_evidence(small_disk, keys):
    key, _ = keys
    root = small_disk / 'recordings'
    rec, deleted = _guarded_recorder(root, key, RetentionPolicy(72 * HOUR, min_free_bytes=500_000),
                                     pre_event_s=1.0, post_event_s=0.0)
    first = _record(rec, 1)
    mark_evidence(first, key, 'PHK Meier', 'Az. 1/26', NOW)
    paths = [_record(rec, n) for n in range(2, 7)]  # ~1 MB each on a 3 MB disk
    assert rec.error_count == 0 and rec.take_problems() == []  # room was made before writing
    assert None not in paths and deleted  # every incident was recorded, older ones made room
    remaining = [i.path for i in scan_incidents(root)]
    assert first in remaining and paths[-1] in remaining  # evidence and the newest stay
    assert [i.path for i in deleted] == [p for p in paths if p not in remaining]  # oldest first
    assert remaining == [first, *paths[-len(remaining) + 1:]]
    for folder in remaining:
        assert verify_incident(folder, key.public_key()) == []

    # Nothing deletable any more (all evidence): the next bag is not started, no folder.
    for folder in remaining[1:]:
        mark_evidence(folder, key, 'PHK Meier', 'Az. 1/26', NOW)
    assert _record(rec, 9) is None
    (problem,) = rec.take_problems()
    assert problem.outcome == 'failed' and problem.path is None
    assert [i.path for i in scan_incidents(root)] == remaining


def test_bag_is_cut_cleanly_and_sealed_when_no_room_is_left(small_disk, keys):
    key, _ = keys
    root = small_disk / 'recordings'
    rec, deleted = _guarded_recorder(root, key, RetentionPolicy(72 * HOUR, min_free_bytes=1_000_000),
                                     pre_event_s=0.0, post_event_s=0.0)
    path = _record(rec, 1, frames_before=1, frames_during=60)  # 3 MB wanted on a 3 MB disk
    (problem,) = rec.take_problems()
    assert (problem.outcome, problem.path) == ('cut', path) and deleted == []
    assert verify_incident(path, key.public_key()) == []
    manifest = json.loads((path / 'manifest.json').read_text())
    assert manifest['cut'].startswith('disk space ran out')
    kept = manifest['bag']['messages']
    assert 10 < kept < 60 and rec.error_count == 0  # cut before the disk was full, not by ENOSPC
    assert shutil.disk_usage(root).free >= 1_000_000
