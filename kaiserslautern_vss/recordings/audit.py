"""Tamper-evident audit log of exports, evidence marks, deletions: who, when, what, why.

A keyed hash chain: one JSON object per line carrying ``seq`` (1, 2, ...), ``prev`` (the
previous line's ``mac``) and ``mac`` = HMAC-SHA256 over its canonical content with a key
kept outside the log (``audit.key``, readable by the service user only). Without the key
nobody can edit, insert, reorder or re-chain lines. Dropping lines at the *end* leaves a
valid chain, so the head (entry count and last mac, itself keyed) is kept beside the log
in ``<log>.head`` and replaced atomically under the same lock after the line is on disk;
:meth:`AuditLog.verify` compares it with the log (a crash between the two leaves the log
one append ahead of its head, which is accepted and put right by the next append).
Replacing log and head together by an older copy of both is a rollback no single log can
see; keep an off-host copy of the head if that matters.

Older logs had an unkeyed SHA-256 chain (``hash`` instead of ``mac``). The first keyed
append checks that chain and writes a ``migrate`` entry committing to its length and last
hash, so from then on the old lines are covered by the key as well.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModes

GENESIS = '0' * 64
MIGRATE = 'migrate'


class AuditError(RuntimeError):
    """The audit log cannot be written (no key, chain already broken, bad arguments)."""


def default_audit_log(record_root: Path) -> Path:
    """``audit.log`` beside the recordings folder (not inside: retention never touches it)."""
    return Path(record_root).expanduser().resolve().parent / 'audit.log'


def head_path(log_path: Path) -> Path:
    return Path(log_path).with_name(Path(log_path).name + '.head')


def _canonical(entry: dict[str, Any], without: str) -> bytes:
    return json.dumps({k: v for k, v in entry.items() if k != without}, sort_keys=True).encode()


def _legacy_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(entry, 'hash')).hexdigest()


def _parse(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Entries of the log text (``{}`` for a line that is not a JSON object) and such lines."""
    entries, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            problems.append(f'line {number}: not a JSON object')
            entry = {}
        entries.append(entry)
    return entries, problems


class AuditLog:
    """One audit log file and its key; safe for concurrent writers (exclusive flock).

    ``append(actor, action, target, reason)`` adds an entry, :meth:`verify` lists what is
    wrong (empty: intact), :meth:`entries` reads them (e.g. for a console view).
    """

    def __init__(self, path: Path, key_path: Path, *, modes: FileModes = PRIVATE) -> None:
        self.path = Path(path)
        self.key_path = Path(key_path).expanduser()
        self._modes = modes
        self._key, _ = modes.secret(self.key_path, 'audit key')

    def _mac(self, entry: dict[str, Any]) -> str:
        return hmac.new(self._key, _canonical(entry, 'mac'), hashlib.sha256).hexdigest()

    def _head_mac(self, count: int, last: str) -> str:
        return hmac.new(self._key, f'head:{count}:{last}'.encode(), hashlib.sha256).hexdigest()

    def append(self, actor: str, action: str, target: str, reason: str, *,
               when: datetime | None = None) -> dict[str, Any]:
        """Append one entry; refuses to extend a log whose chain is already broken."""
        if not actor.strip() or not action.strip() or not reason.strip():
            raise AuditError('an audit entry needs actor, action and reason')
        when = when or datetime.now(timezone.utc)
        if not self.path.parent.exists():
            self._modes.folder(self.path.parent)
        with open(self.path, 'a+', encoding='utf-8') as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            self._modes.file(self.path)
            stream.seek(0)
            lines, problems = _parse(stream.read())
            # A broken head is refused too: a new head would hide entries removed at the end.
            problems += self._problems(lines) + self._head_problems(lines)
            if problems:
                raise AuditError(f'{self.path} is not intact, not appending: ' + '; '.join(problems))
            prev = (lines[-1].get('mac') or lines[-1]['hash']) if lines else GENESIS
            if not head_path(self.path).exists():  # from the first keyed entry on, a head always exists
                self._write_head(len(lines), prev)
            new = []
            if lines and 'mac' not in lines[-1]:
                new.append(self._entry(len(lines) + 1, prev, 'vss', MIGRATE, self.path.name,
                                       f'keyed chain from here; {len(lines)} unkeyed entries before', when))
                prev = new[-1]['mac']
            new.append(self._entry(len(lines) + len(new) + 1, prev, actor, action, target, reason, when))
            stream.write(''.join(json.dumps(entry, sort_keys=True) + '\n' for entry in new))
            stream.flush()
            os.fsync(stream.fileno())
            self._write_head(len(lines) + len(new), new[-1]['mac'])
        return new[-1]

    def _write_head(self, count: int, last: str) -> None:
        self._modes.write(head_path(self.path), json.dumps(
            {'entries': count, 'last': last, 'mac': self._head_mac(count, last)}).encode())

    def _entry(self, seq: int, prev: str, actor: str, action: str, target: str, reason: str,
               when: datetime) -> dict[str, Any]:
        entry = {'seq': seq, 'when': when.isoformat(), 'actor': actor, 'action': action,
                 'target': target, 'reason': reason, 'prev': prev}
        entry['mac'] = self._mac(entry)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        return _parse(self.path.read_text(encoding='utf-8'))[0] if self.path.exists() else []

    def verify(self) -> list[str]:
        """Problems found (line numbers from 1); empty means intact."""
        try:
            entries, problems = _parse(self.path.read_text(encoding='utf-8') if self.path.exists() else '')
        except OSError as error:
            return [f'cannot read {self.path}: {error}']
        return problems + self._problems(entries) + self._head_problems(entries)

    def _problems(self, entries: list[dict[str, Any]]) -> list[str]:
        problems, prev, keyed = [], GENESIS, False
        for number, entry in enumerate(entries, start=1):
            if 'mac' in entry:
                keyed = True
                if not hmac.compare_digest(str(entry['mac']), self._mac(entry)):
                    problems.append(f'line {number}: altered, or written without the key')
                if entry.get('seq') != number:
                    problems.append(f'line {number}: out of order (seq {entry.get("seq")})')
            elif keyed:
                problems.append(f'line {number}: unkeyed entry after keyed ones (inserted)')
            elif entry.get('hash') != _legacy_hash(entry):
                problems.append(f'line {number}: content changed')
            if entry.get('prev') != prev:
                problems.append(f'line {number}: chain broken (a line before it was changed, removed, '
                                'inserted or moved)')
            prev = entry.get('mac') or entry.get('hash', '')
        return problems

    def _head_problems(self, entries: list[dict[str, Any]]) -> list[str]:
        """The head against the log. One append interrupted between its line(s) and the head
        (at most two lines: a migration and its entry) is not a problem: those lines are
        keyed and chained, and the next append writes the head."""
        try:
            head = json.loads(head_path(self.path).read_text(encoding='utf-8'))
        except FileNotFoundError:
            keyed = any('mac' in entry for entry in entries)
            return ['head missing: entries at the end may have been removed'] if keyed else []
        except (OSError, ValueError) as error:
            return [f'head unreadable: {error}']
        count, last = head.get('entries'), head.get('last')
        if not isinstance(count, int) or not hmac.compare_digest(str(head.get('mac')), self._head_mac(count, last)):
            return ['head altered, or written without the key']
        if count > len(entries) or len(entries) - count > 2:
            return [f'the log has {len(entries)} entries, its head says {count}: '
                    + ('entries were removed from the end' if count > len(entries) else 'entries were added')]
        named = (entries[count - 1].get('mac') or entries[count - 1].get('hash')) if count else GENESIS
        return [] if named == last else ['the entry the head names was replaced']
