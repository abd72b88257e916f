"""Login rate limiting, account lockout and TOTP replay refusal; decisions take ``now``.

Two independent limits: a client address gets ``attempts_per_minute`` tries (slows down
guessing across many user names), and a user name is locked for ``lockout_s`` after
``max_failures`` failed logins in a row (slows down guessing one password from many
addresses). A successful login clears the user's failures.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout_s: float = 900.0
    attempts_per_minute: int = 10


class LoginGuard:
    def __init__(self, policy: LoginPolicy) -> None:
        self.policy = policy
        self._attempts: dict[str, deque[float]] = defaultdict(deque)
        self._failures: dict[str, int] = defaultdict(int)
        self._locked_until: dict[str, float] = {}
        self._last_totp_step: dict[str, int] = {}

    def refusal(self, user: str, client: str, now: float) -> str | None:
        """Why this attempt is refused before any password check (German, for the page), or None:
        :meth:`address_refusal`, then :meth:`account_refusal`."""
        return self.address_refusal(client, now) or self.account_refusal(user, now)

    def address_refusal(self, client: str, now: float) -> str | None:
        """Why the client may not try now, or None; counts the attempt against the client's rate.
        Needs no user name, so the console asks it before reading the request body."""
        attempts = self._attempts[client]
        while attempts and attempts[0] <= now - 60.0:
            attempts.popleft()
        if len(attempts) >= self.policy.attempts_per_minute:
            return 'Zu viele Anmeldeversuche von dieser Adresse. Bitte eine Minute warten.'
        attempts.append(now)
        return None

    def account_refusal(self, user: str, now: float) -> str | None:
        if self.is_locked(user, now):
            return 'Konto vorübergehend gesperrt (zu viele Fehlversuche). Bitte später erneut versuchen.'
        return None

    def record_failure(self, user: str, now: float) -> bool:
        """Count a failed login; True if it locked the account just now."""
        self._failures[user] += 1
        if self._failures[user] >= self.policy.max_failures:
            self._locked_until[user] = now + self.policy.lockout_s
            self._failures[user] = 0
            return True
        return False

    def accept_totp_step(self, user: str, step: int) -> bool:
        """False for a TOTP time step at or before one already used (a replayed code)."""
        if step <= self._last_totp_step.get(user, -1):
            return False
        self._last_totp_step[user] = step
        return True

    def record_success(self, user: str) -> None:
        self._failures.pop(user, None)
        self._locked_until.pop(user, None)

    def is_locked(self, user: str, now: float) -> bool:
        return self._locked_until.get(user, 0.0) > now

    def unlock(self, user: str) -> None:
        self.record_success(user)
