"""Retention with an injected clock, quota and free-space floor, evidence marks, and a
really full disk (a 3 MB tmpfs): nothing raises, oldest non-evidence goes, evidence stays."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from kaiserslautern_vss.events.incident import IncidentUpdate
from kaiserslautern_vss.events.retention import (RetentionPolicy, StoredIncident, enforce_retention,
                                                 mark_evidence, plan_deletions, scan_incidents)
from kaiserslautern_vss.tools import evidence
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


def test_scan_reads_names_sizes_and_evidence_cli_marks_with_audit(tmp_path, capsys):
    root = tmp_path / 'recordings'
    for name in ('20261126T100000Z_cam01_lawn_aaaa', '20261125T100000Z_cam02_lawn_bbbb'):
        (root / name).mkdir(parents=True)
        (root / name / 'x.mcap').write_bytes(b'0' * 1000)
    (root / 'not_an_incident').mkdir()
    first = root / '20261125T100000Z_cam02_lawn_bbbb'
    assert evidence.main(['mark', str(first), '--by', 'PHK Meier', '--why', 'Az. 1/26']) == 0
    assert evidence.main(['mark', str(first), '--by', '', '--why', 'x']) == 2
    scanned = scan_incidents(root)
    assert [(i.path.name, i.size_bytes, i.evidence) for i in scanned] == [
        ('20261125T100000Z_cam02_lawn_bbbb', 1000 + (first / 'evidence.json').stat().st_size, True),
        ('20261126T100000Z_cam01_lawn_aaaa', 1000, False)]
    assert scanned[0].started == datetime(2026, 11, 25, 10, tzinfo=timezone.utc)
    audit = json.loads((tmp_path / 'audit.log').read_text())
    assert audit['who'] == 'PHK Meier' and audit['what'] == 'evidence mark'
    deleted, _ = enforce_retention(root, NOW + timedelta(days=10), RetentionPolicy(72 * HOUR))
    assert [i.path.name for i in deleted] == ['20261126T100000Z_cam01_lawn_aaaa']
    assert first.is_dir()
    assert evidence.main(['release', str(first), '--by', 'PHK Meier', '--why', 'closed']) == 0
    assert not scan_incidents(root)[0].evidence


def _big_image_cdr(stamp_ns: int) -> bytes:
    return image_cdr(stamp_ns, np.random.default_rng(stamp_ns % 1000).integers(0, 255, 50_000, np.uint8))


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / 'disk'
    disk.mkdir()
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', str(disk)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f'cannot mount a small tmpfs here (needs root): {result.stderr.strip()}')
    yield disk
    subprocess.run(['umount', '-l', str(disk)], check=False)


def test_full_disk_never_raises_and_retention_frees_oldest_non_evidence(small_disk):
    root = small_disk / 'recordings'
    rec = recorder(root, pre_event_s=1.0, post_event_s=0.0)
    policy = RetentionPolicy(retention_s=72 * HOUR, min_free_bytes=1_200_000)
    stamp = T0

    def record_incident(number: int) -> Path | None:
        nonlocal stamp
        for _ in range(10):
            rec.on_message('cam01', IMAGE, stamp, _big_image_cdr(stamp))
            stamp += FRAME
        current = incident(started_ns=stamp - FRAME + number * 3600 * SECOND,  # one hour apart
                           incident_id=f'{number:032x}')
        current.started_ns = stamp - FRAME
        path = rec.on_incident(IncidentUpdate('start', current), now_ns=stamp)
        for _ in range(10):
            rec.on_message('cam01', IMAGE, stamp, _big_image_cdr(stamp))
            stamp += FRAME
        current.ended_ns = stamp
        rec.on_incident(IncidentUpdate('end', current), now_ns=stamp)
        rec.on_message('cam01', IMAGE, stamp + SECOND, _big_image_cdr(stamp + SECOND))  # closes the bag
        stamp += 3600 * SECOND
        return path

    first = record_incident(1)
    mark_evidence(first, 'PHK Meier', 'Az. 1/26', NOW)
    paths = [record_incident(n) for n in range(2, 6)]  # ~1 MB each: the 3 MB disk fills up
    assert rec.error_count >= 1 and 'No space left' in rec.last_error
    survivors_before = scan_incidents(root)
    deleted, errors = enforce_retention(root, NOW, policy, in_use=rec.open_bags.values())
    assert errors == [] and deleted
    assert first.is_dir()  # evidence kept
    remaining = [i.path for i in scan_incidents(root)]
    expected_oldest_gone = [i.path for i in survivors_before if not i.evidence][:len(deleted)]
    assert [i.path for i in deleted] == expected_oldest_gone
    assert all(p not in remaining for p in expected_oldest_gone)
    errors_before = rec.error_count
    assert record_incident(9) is not None and rec.error_count == errors_before  # records again
    assert paths  # the loop ran to the end without an exception
