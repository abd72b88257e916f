"""The keyed audit log: edits, reordering, insertion, truncation and another key are all
detected; a broken log is not extended; the old unkeyed log is migrated; file modes."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import datetime, timezone

import pytest

from kaiserslautern_vss.recordings.audit import AuditError, AuditLog, head_path
from kaiserslautern_vss.tools import verify

WHEN = datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc)
TARGET = '20261126T153012Z_cam01_lawn_1a2b3c4d'


@pytest.fixture
def log(tmp_path):
    audit = AuditLog(tmp_path / 'audit.log', tmp_path / 'keys' / 'audit.key')
    for n in range(4):
        audit.append(f'user{n}', 'export', TARGET, f'case {n}', when=WHEN)
    assert audit.verify() == []
    return audit


def _lines(audit: AuditLog) -> list[str]:
    return audit.path.read_text().splitlines()


def _write(audit: AuditLog, lines: list[str]) -> None:
    audit.path.write_text(''.join(line + '\n' for line in lines))


def test_entries_and_modes(log, tmp_path):
    assert [e['actor'] for e in log.entries()] == ['user0', 'user1', 'user2', 'user3']
    assert [e['seq'] for e in log.entries()] == [1, 2, 3, 4]
    for path in (log.path, head_path(log.path), tmp_path / 'keys' / 'audit.key'):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / 'keys').stat().st_mode) == 0o700
    with pytest.raises(AuditError, match='needs actor, action and reason'):
        log.append('x', 'export', TARGET, ' ')


def test_edited_entry(log):
    lines = _lines(log)
    lines[1] = lines[1].replace('user1', 'someone')
    _write(log, lines)
    assert log.verify() == ['line 2: altered, or written without the key']


def test_edited_and_rechained_without_the_key(log):
    """Recomputing a plain SHA-256 over the edit (what the old chain allowed) does not help."""
    entries = log.entries()
    entries[3]['reason'] = 'nothing to see'
    entries[3]['mac'] = hashlib.sha256(json.dumps(entries[3], sort_keys=True).encode()).hexdigest()
    _write(log, [json.dumps(e, sort_keys=True) for e in entries])
    problems = log.verify()
    assert 'line 4: altered, or written without the key' in problems
    assert 'the entry the head names was replaced' in problems


def test_reordered_entries(log):
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)
    problems = log.verify()
    assert 'line 2: out of order (seq 3)' in problems and 'line 3: out of order (seq 2)' in problems


def test_removed_middle_entry(log):
    lines = _lines(log)
    _write(log, lines[:1] + lines[2:])
    problems = log.verify()
    assert 'line 2: out of order (seq 3)' in problems
    assert any(p.startswith('line 2: chain broken') for p in problems)


def test_deleted_last_entry_is_detected_and_not_healed_by_appending(log):
    _write(log, _lines(log)[:-1])
    assert log.verify() == ['the log has 3 entries, its head says 4: entries were removed from the end']
    with pytest.raises(AuditError, match='not intact, not appending'):
        log.append('intruder', 'export', TARGET, 'cover up')
    head_path(log.path).unlink()
    assert log.verify() == ['head missing: entries at the end may have been removed']


def test_a_crash_between_line_and_head_is_put_right_by_the_next_append(log):
    old_head = head_path(log.path).read_bytes()
    log.append('PHK Meier', 'export', TARGET, 'case 5', when=WHEN)
    head_path(log.path).write_bytes(old_head)  # as if killed before the head was replaced
    assert log.verify() == []
    log.append('PHK Meier', 'export', TARGET, 'case 6', when=WHEN)
    assert log.verify() == [] and json.loads(head_path(log.path).read_text())['entries'] == 6


def test_another_key(log, tmp_path):
    other = AuditLog(log.path, tmp_path / 'other.key')
    problems = other.verify()
    assert problems == [f'line {n}: altered, or written without the key' for n in range(1, 5)] + [
        'head altered, or written without the key']


def test_vss_verify_checks_the_audit_log(log, tmp_path, capsys):
    arguments = ['--audit-log', str(log.path), '--audit-key', str(tmp_path / 'keys' / 'audit.key')]
    assert verify.main(arguments) == 0
    _write(log, _lines(log)[:-1])
    assert verify.main(arguments) == 1
    assert 'entries were removed from the end' in capsys.readouterr().out


def test_old_unkeyed_log_is_migrated_and_then_covered_by_the_key(tmp_path):
    """Lines in the format before keys (``hash`` chain) stay; the first keyed entry commits to them."""
    path, prev, lines = tmp_path / 'audit.log', '0' * 64, []
    for n in range(2):
        entry = {'when': WHEN.isoformat(), 'who': f'old{n}', 'what': 'export', 'target': TARGET,
                 'why': f'case {n}', 'prev': prev}
        entry['hash'] = prev = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
        lines.append(json.dumps(entry, sort_keys=True))
    path.write_text('\n'.join(lines) + '\n')
    path.chmod(0o644)
    audit = AuditLog(path, tmp_path / 'audit.key')
    assert audit.verify() == []
    audit.append('PHK Meier', 'export', TARGET, 'Az. 9/26', when=WHEN)
    entries = audit.entries()
    assert [e.get('action') for e in entries] == [None, None, 'migrate', 'export']
    assert entries[2]['prev'] == prev and entries[2]['reason'] == 'keyed chain from here; 2 unkeyed entries before'
    assert audit.verify() == [] and stat.S_IMODE(path.stat().st_mode) == 0o600
    # An edit of an old line now breaks the keyed chain too.
    edited = path.read_text().replace('old0', 'oldX')
    path.write_text(edited)
    assert audit.verify()[:1] == ['line 1: content changed']
    path.write_text('\n'.join(path.read_text().splitlines()[1:]) + '\n')  # drop the first old line
    assert any('chain broken' in p for p in audit.verify())
