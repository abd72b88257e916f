"""Login rate limiting, lockout and TOTP replay refusal; decisions take ``now`` (wall clock).

Three limits:
- an address gets ``attempts_per_minute`` tries (slows down guessing across many names);
- a user name is locked *at one address* for ``lockout_s`` after ``max_failures`` failed
  logins in a row from there (slows down guessing one password), so a stranger who knows
  the admin's name locks out only himself, not the admin at her desk;
- an address is locked for ``lockout_s`` after :attr:`LoginPolicy.address_failures` failed
  logins across all names (a stranger cannot go on by trying name after name).
An admin at the console's own address (127.0.0.1, ::1) is never locked out (the per-minute
rate still applies), so the site can always be administered from the console itself.
The rate needs no name, so it is checked before the request body is read
(:meth:`LoginGuard.address_refusal`); the lockouts once the name is known
(:meth:`LoginGuard.account_refusal`).

Lockouts, failure counts and the last used TOTP step per user survive restarts: they are
kept in a 0600 file beside the users file (:func:`state_path`), replaced atomically at
every change, so a restart neither lifts a lockout nor makes a used code valid again.
The per-minute attempts are kept in memory only (a minute is shorter than a restart).
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModeError, read_regular

STATE_SCHEMA = 'kaiserslautern_vss/console-login-state/v1'


class LoginStateError(ValueError):
    """The login state file cannot be read or written (the console does not start without it)."""


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout_s: float = 900.0
    attempts_per_minute: int = 10

    @property
    def address_failures(self) -> int:
        """Failed logins from one address, across names, before the address is locked."""
        return 4 * self.max_failures


@dataclass(frozen=True)
class Refusal:
    message: str  # for the login page (German)
    reason: str  # for the audit log
    audited: bool = True  # False for the repeats of a rate refusal within its minute


def state_path(users_file: Path) -> Path:
    """The login state beside the users file: ``console_users.json`` -> ``console_users.login-state.json``."""
    users_file = Path(users_file).expanduser()
    return users_file.with_name(f'{users_file.stem}.login-state.json')


def is_local(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _pair(user: str, address: str) -> str:
    return f'{user}\n{address}'


class LoginGuard:
    def __init__(self, policy: LoginPolicy, path: Path | None = None) -> None:
        self.policy = policy
        self.path = path
        self._lock = threading.Lock()
        self._attempts: dict[str, deque[float]] = defaultdict(deque)
        self._rate_refusal_audited: dict[str, float] = {}  # address -> when its last audited rate refusal was
        self._failures: dict[str, int] = {}  # pair or address -> failures in a row
        self._locked_until: dict[str, float] = {}  # pair or address -> wall-clock time
        self._last_totp_step: dict[str, int] = {}
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(read_regular(path))
            if state.get('schema') != STATE_SCHEMA:
                raise ValueError(f'not {STATE_SCHEMA}')
            self._failures = {str(k): int(v) for k, v in state['failures'].items()}
            self._locked_until = {str(k): float(v) for k, v in state['locked_until'].items()}
            self._last_totp_step = {str(k): int(v) for k, v in state['last_totp_step'].items()}
        except (OSError, FileModeError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise LoginStateError(f'login state {path} unusable ({error}); remove it to reset all lockouts') \
                from error

    def _save(self) -> None:
        if self.path is None:
            return
        state = {'schema': STATE_SCHEMA, 'failures': self._failures, 'locked_until': self._locked_until,
                 'last_totp_step': self._last_totp_step}
        try:
            if not self.path.parent.exists():
                PRIVATE.folder(self.path.parent)
            PRIVATE.write(self.path, json.dumps(state, sort_keys=True).encode())
        except OSError as error:
            raise LoginStateError(f'login state {self.path} cannot be written: {error}') from error

    def refusal(self, user: str, client: str, now: float, *, admin: bool = False) -> Refusal | None:
        """Why this attempt is refused before any password check, or None:
        :meth:`address_refusal`, then :meth:`account_refusal`."""
        return self.address_refusal(client, now) or self.account_refusal(user, client, now, admin=admin)

    def address_refusal(self, client: str, now: float) -> Refusal | None:
        """Why the client may not try now (its per-minute rate), or None; counts the attempt.
        Needs no user name, so the console asks it before reading the request body. Of the
        refusals of one address, one a minute is marked ``audited``: a flood is logged, not copied."""
        with self._lock:
            attempts = self._attempts[client]
            while attempts and attempts[0] <= now - 60.0:
                attempts.popleft()
            if len(attempts) >= self.policy.attempts_per_minute:
                audited = self._rate_refusal_audited.get(client, float('-inf')) <= now - 60.0
                if audited:
                    self._rate_refusal_audited[client] = now
                return Refusal('Zu viele Anmeldeversuche von dieser Adresse. Bitte eine Minute warten.',
                               f'Ratenbegrenzung: mehr als {self.policy.attempts_per_minute} Versuche pro Minute',
                               audited)
            attempts.append(now)
        return None

    def account_refusal(self, user: str, client: str, now: float, *, admin: bool = False) -> Refusal | None:
        """Why ``user`` may not try from ``client`` now (a lockout of the address or of the name
        there), or None. ``admin``: the name is an admin account."""
        if admin and is_local(client):
            return None
        with self._lock:
            if self._locked_until.get(client, 0.0) > now:
                return Refusal('Anmeldung von dieser Adresse vorübergehend gesperrt (zu viele Fehlversuche). '
                               'Bitte später erneut versuchen oder die Leitstelle verständigen.',
                               'Adresse gesperrt nach Fehlversuchen')
            if self._locked_until.get(_pair(user, client), 0.0) > now:
                return Refusal('Konto an dieser Adresse vorübergehend gesperrt (zu viele Fehlversuche). '
                               'Bitte später erneut versuchen oder einen Administrator um Entsperrung bitten.',
                               'Konto an dieser Adresse gesperrt nach Fehlversuchen')
        return None

    def record_failure(self, user: str, client: str, now: float) -> bool:
        """Count a failed login; True if it locked the name at this address, or the address, just now."""
        locked = False
        with self._lock:
            for key, limit in ((_pair(user, client), self.policy.max_failures),
                               (client, self.policy.address_failures)):
                self._failures[key] = self._failures.get(key, 0) + 1
                if self._failures[key] >= limit:
                    self._locked_until[key] = now + self.policy.lockout_s
                    self._failures[key] = 0
                    locked = True
            self._forget_expired(now)
            self._save()
        return locked

    def accept_totp_step(self, user: str, step: int) -> bool:
        """False for a TOTP time step at or before one already used (a replayed code)."""
        with self._lock:
            if step <= self._last_totp_step.get(user, -1):
                return False
            self._last_totp_step[user] = step
            self._save()
        return True

    def record_success(self, user: str, client: str) -> None:
        with self._lock:
            for key in (_pair(user, client), client):
                self._failures.pop(key, None)
            self._save()

    def is_locked(self, user: str, now: float) -> bool:
        """Locked at any address."""
        with self._lock:
            return any(until > now for key, until in self._locked_until.items() if key.startswith(f'{user}\n'))

    def unlock(self, user: str) -> None:
        """Lift the user's lockouts at every address."""
        with self._lock:
            for table in (self._failures, self._locked_until):
                for key in [key for key in table if key.startswith(f'{user}\n')]:
                    del table[key]
            self._save()

    def _forget_expired(self, now: float) -> None:
        self._locked_until = {key: until for key, until in self._locked_until.items() if until > now}
