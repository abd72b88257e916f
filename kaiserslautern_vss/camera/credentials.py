"""Camera credentials: kept out of logs, parameters and describe() texts."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from kaiserslautern_vss.camera.source_types import SourceError

MASK = '***'
# Query parameters cameras commonly take secrets in (compared case-insensitively).
SECRET_QUERY_KEYS = frozenset({'password', 'pwd', 'pass', 'passwd', 'token', 'auth', 'key', 'secret'})


class CredentialsError(SourceError):
    """A configured password cannot be obtained; the message names where it was looked for, never the secret."""


def _host_port(netloc: str) -> str:
    return netloc.rpartition('@')[2]


def mask_url(url: str) -> str:
    """``url`` with the password in the user info and secret query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f'{url.partition(":")[0]}:{MASK}'  # unparseable: show the scheme only
    netloc = parts.netloc
    if '@' in netloc:
        userinfo, _, host = netloc.rpartition('@')
        user, has_password, _ = userinfo.partition(':')
        netloc = f'{user}:{MASK}@{host}' if has_password else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in SECRET_QUERY_KEYS for key, _ in pairs):
            query = urlencode([(key, MASK if key.lower() in SECRET_QUERY_KEYS else value) for key, value in pairs],
                              safe='*')
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def inline_secret(url: str) -> str:
    """Which secret ``url`` carries, e.g. ``'a password in its user info'``; '' when none."""
    _, _, password = split_credentials(url)
    if password:
        return 'a password in its user info'
    secret_keys = sorted({key for key, _ in parse_qsl(urlsplit(url).query) if key.lower() in SECRET_QUERY_KEYS})
    return f'the secret query parameter(s) {", ".join(secret_keys)}' if secret_keys else ''


def split_credentials(url: str) -> tuple[str, str, str]:
    """(url without user info, username, password), the latter two percent-decoded ('' if absent)."""
    parts = urlsplit(url)
    if '@' not in parts.netloc:
        return url, '', ''
    userinfo, _, host = parts.netloc.rpartition('@')
    user, _, password = userinfo.partition(':')
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), unquote(user), unquote(password)


def inject_credentials(url: str, username: str, password: str) -> str:
    """``url`` with ``username:password@`` as its user info (percent-encoded; replaces any present)."""
    if not username:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe='') + (':' + quote(password, safe='') if password else '')
    return urlunsplit((parts.scheme, f'{userinfo}@{_host_port(parts.netloc)}', parts.path, parts.query,
                       parts.fragment))


def resolve_password(password_env: str, password_file: str) -> str:
    """The password from the environment variable or file named ('' when neither is configured).

    A file's trailing newline is dropped. Errors name the variable or file, never the secret.
    """
    if password_env and password_file:
        raise CredentialsError('give either password_env or password_file, not both')
    if password_env:
        password = os.environ.get(password_env, '')
        if not password:
            raise CredentialsError(f'password environment variable {password_env} is not set or empty')
        return password
    if password_file:
        try:
            password = Path(password_file).read_text(encoding='utf-8').rstrip('\r\n')
        except OSError as error:
            raise CredentialsError(f'password file {password_file} cannot be read: {error.strerror}') from None
        if not password:
            raise CredentialsError(f'password file {password_file} is empty')
        return password
    return ''
