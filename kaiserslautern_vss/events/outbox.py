"""Persistent, ordered alert outbox (sqlite3): nothing is lost while a receiver is down.

Every alert is stored once per channel (``mqtt``, ``webhook``) before any delivery is
tried, in one transaction. A channel delivers its oldest pending alert only: a failure
keeps it at the head (with a backoff) so alerts arrive in order, and an alert is removed
only after its receiver confirmed it: at-least-once delivery across restarts.

Alerts carry event JSON and anonymised snapshots: the database is created with the
private file mode before sqlite opens it (its -wal and -shm files inherit that mode).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_channel ON outbox(channel, seq);
"""


@dataclass(frozen=True)
class PendingAlert:
    seq: int
    channel: str
    body: bytes
    attempts: int
    not_before_s: float


def backoff_s(attempts: int, base_s: float = 1.0, cap_s: float = 60.0) -> float:
    """Wait before the next try after ``attempts`` failures: doubling, capped."""
    return min(cap_s, base_s * 2 ** max(0, attempts - 1))


class Outbox:
    """Thread-safe; the file survives process restarts (WAL, synchronous=FULL)."""

    def __init__(self, path: Path, modes: FileModes = PRIVATE) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            modes.folder(self.path.parent)
        self.path.touch()
        for existing in (self.path, *(self.path.with_name(self.path.name + s) for s in ('-wal', '-shm'))):
            if existing.exists():
                modes.file(existing)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute('PRAGMA synchronous=FULL')
        self._db.executescript(_SCHEMA)

    def put(self, channels: Iterable[str], body: bytes) -> None:
        with self._lock, self._db:
            self._db.execute('BEGIN')
            self._db.executemany('INSERT INTO outbox(channel, body) VALUES (?, ?)',
                                 [(channel, body) for channel in channels])

    def head(self, channel: str) -> PendingAlert | None:
        with self._lock:
            row = self._db.execute('SELECT seq, channel, body, attempts, not_before_s FROM outbox '
                                   'WHERE channel = ? ORDER BY seq LIMIT 1', (channel,)).fetchone()
        return None if row is None else PendingAlert(row[0], row[1], bytes(row[2]), row[3], row[4])

    def delivered(self, seq: int) -> None:
        with self._lock:
            self._db.execute('DELETE FROM outbox WHERE seq = ?', (seq,))

    def failed(self, seq: int, not_before_s: float) -> None:
        with self._lock:
            self._db.execute('UPDATE outbox SET attempts = attempts + 1, not_before_s = ? WHERE seq = ?',
                             (not_before_s, seq))

    def pending(self, channel: str | None = None) -> int:
        with self._lock:
            if channel is None:
                return self._db.execute('SELECT COUNT(*) FROM outbox').fetchone()[0]
            return self._db.execute('SELECT COUNT(*) FROM outbox WHERE channel = ?', (channel,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
