"""Named console users in one JSON file: argon2id password hashes, TOTP secrets, roles.

The file is written atomically with mode 0600 (it holds the TOTP secrets, which the
server needs in clear to check codes). ``vss-users`` manages it; the console only reads
it (and re-reads it when it changed, so a removed user is refused at once).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kaiserslautern_vss.console.roles import ROLES

USERS_SCHEMA = 'kaiserslautern_vss/console-users/v1'
MIN_PASSWORD_LENGTH = 12
TOTP_ISSUER = 'VSS Rathausvorplatz'

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


class AccountError(ValueError):
    """A users file or an account change that cannot be used; the message says why."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str
    totp_secret: str
    display_name: str = ''


def credentials(account: Account) -> str:
    """What a session depends on: role, password and second factor (a change logs the user out)."""
    return hashlib.sha256(f'{account.role}\n{account.password_hash}\n{account.totp_secret}'.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f'password too short: at least {MIN_PASSWORD_LENGTH} characters')
    return _hasher.hash(password)


def password_matches(account: Account, password: str) -> bool:
    try:
        return _hasher.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(account: Account) -> str:
    """The ``otpauth://`` URI an authenticator app imports (as QR code or text)."""
    return pyotp.TOTP(account.totp_secret).provisioning_uri(name=account.name, issuer_name=TOTP_ISSUER)


def totp_counter(account: Account, code: str, now: float) -> int | None:
    """The time step ``code`` is valid for (this or the neighbouring 30 s step), else None.

    The caller refuses a step already used, so an observed code cannot be replayed.
    """
    code = code.strip().replace(' ', '')
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(account.totp_secret)
    for offset in (0, -1, 1):
        moment = now + offset * totp.interval
        if totp.verify(code, for_time=moment, valid_window=0):
            return int(moment // totp.interval)
    return None


def load_accounts(path: Path) -> dict[str, Account]:
    """All accounts by name; a missing file means no users (nobody can log in)."""
    path = Path(path).expanduser()
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as error:
        raise AccountError(f'cannot read users file {path}: {error}') from error
    if not isinstance(document, dict) or document.get('schema') != USERS_SCHEMA:
        raise AccountError(f'{path} is not a console users file ({USERS_SCHEMA})')
    accounts = {}
    for name, fields in document.get('users', {}).items():
        try:
            account = Account(name=name, **fields)
        except TypeError as error:
            raise AccountError(f'{path}: user {name!r}: {error}') from error
        if account.role not in ROLES:
            raise AccountError(f'{path}: user {name!r} has unknown role {account.role!r}')
        accounts[name] = account
    return accounts


def save_accounts(path: Path, accounts: dict[str, Account]) -> None:
    """Replace the users file atomically (mode 0600)."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    users = {name: {k: v for k, v in asdict(account).items() if k != 'name'}
             for name, account in sorted(accounts.items())}
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as stream:
            json.dump({'schema': USERS_SCHEMA, 'users': users}, stream, indent=1, sort_keys=True)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise AccountError(f'cannot write users file {path}: {error}') from error


def validate_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in '._-' for c in name) or len(name) > 64:
        raise AccountError(f'user name {name!r}: use 1-64 letters, digits, ".", "_" or "-"')
    return name


class AccountBook:
    """The users file as the console sees it: reloaded when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._stamp: int | None = None
        self._accounts: dict[str, Account] = {}

    def get(self, name: str) -> Account | None:
        return self.all().get(name)

    def all(self) -> dict[str, Account]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._accounts, self._stamp = load_accounts(self.path), stamp
        return self._accounts
