"""Server-side sessions: a random id in a cookie, everything else in this process.

A session ends after ``idle_s`` without user activity (automatic refreshes of the live
view do not count, see :meth:`SessionStore.get`) or ``max_age_s`` after login, at
logout, and when the user's entry in the users file is removed or changed (role,
password, TOTP secret: ``credentials``). Each session carries its own CSRF token.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field


@dataclass
class Session:
    id: str
    user: str
    role: str
    credentials: str  # the account's entry at login (a changed entry ends the session)
    csrf_token: str
    created: float
    last_active: float
    # incident -> SHA-256 of the bag it was opened (and audited) with: frames come from that recording only
    opened_recordings: dict[str, str] = field(default_factory=dict)
    live_audited: bool = False  # this session's live view access is in the audit log


class SessionStore:
    def __init__(self, idle_s: float, max_age_s: float = 12 * 3600.0) -> None:
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, role: str, credentials: str, now: float) -> Session:
        session = Session(secrets.token_urlsafe(32), user, role, credentials, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: float, activity: bool = True) -> Session | None:
        """The live session, or None (unknown, idle too long, too old); ``activity`` renews it."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_active > self.idle_s or now - session.created > self.max_age_s:
                del self._sessions[session_id]
                return None
            if activity:
                session.last_active = now
            return session

    def __len__(self) -> int:
        return len(self._sessions)

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
