"""vss-users: manage the Leitstelle console's named users (argon2 password, TOTP, role).

    vss-users add mueller --role investigator --display-name "PHK Müller"   # asks for the password
    vss-users list
    vss-users passwd mueller          vss-users role mueller admin
    vss-users reset-totp mueller      vss-users remove mueller

``add`` and ``reset-totp`` print the TOTP secret and its otpauth:// URI once: enter it in
the user's authenticator app. Passwords are read from the terminal (or one line on stdin
with --password-stdin); they never appear on the command line. Every change is written to
the console's keyed audit log (who: --by, default the login name) before the users file
is replaced; if the log cannot be written, nothing changes. Exit 0 done, 2 refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from pathlib import Path

from kaiserslautern_vss.console.accounts import (Account, AccountError, hash_password, load_accounts,
                                                 new_totp_secret, save_accounts, totp_uri, validate_name)
from kaiserslautern_vss.console.roles import ROLES
from kaiserslautern_vss.parameters.operator_console import PARAMETERS
from kaiserslautern_vss.recordings.audit import AuditError, AuditLog, default_audit_log
from kaiserslautern_vss.recordings.file_modes import FileModeError

_DEFAULTS = {spec.name: spec.default for spec in PARAMETERS}
DEFAULT_FILE = _DEFAULTS['users_file']


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip('\n')
    password = getpass.getpass('Passwort: ')
    if password != getpass.getpass('Passwort wiederholen: '):
        raise AccountError('passwords differ')
    return password


def _print_totp(account: Account) -> None:
    print(f'TOTP secret for {account.name}: {account.totp_secret}')
    print(f'authenticator URI: {totp_uri(account)}')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-users', description=__doc__.split('\n\n')[0])
    parser.add_argument('--file', type=Path, default=Path(DEFAULT_FILE), help=f'users file (default {DEFAULT_FILE})')
    parser.add_argument('--audit-log', type=Path, help='the console\'s audit log (default: audit.log beside the '
                        'default recordings folder, as the console)')
    parser.add_argument('--audit-key', type=Path, default=Path(_DEFAULTS['audit_key_file']).expanduser())
    parser.add_argument('--by', default=getpass.getuser(), help='who makes the change (default: the login name)')
    commands = parser.add_subparsers(dest='command', required=True)
    add = commands.add_parser('add', help='create a user')
    add.add_argument('name')
    add.add_argument('--role', required=True, choices=ROLES)
    add.add_argument('--display-name', default='')
    add.add_argument('--password-stdin', action='store_true')
    passwd = commands.add_parser('passwd', help='set a new password')
    passwd.add_argument('name')
    passwd.add_argument('--password-stdin', action='store_true')
    role = commands.add_parser('role', help='change the role')
    role.add_argument('name')
    role.add_argument('role', choices=ROLES)
    for name, text in (('reset-totp', 'new TOTP secret (lost phone)'), ('remove', 'delete a user')):
        commands.add_parser(name, help=text).add_argument('name')
    commands.add_parser('list', help='users and roles')
    args = parser.parse_args(argv)
    try:
        accounts = load_accounts(args.file)
        if args.command == 'list':
            for account in accounts.values():
                print(f'{account.name:20} {account.role:13} {account.display_name}')
            return 0
        name = validate_name(args.name)
        if args.command == 'add':
            if name in accounts:
                raise AccountError(f'user {name!r} exists; use passwd, role or reset-totp')
            accounts[name] = Account(name, args.role, hash_password(_read_password(args.password_stdin)),
                                     new_totp_secret(), args.display_name)
        elif name not in accounts:
            raise AccountError(f'no user {name!r} in {args.file}')
        elif args.command == 'passwd':
            accounts[name] = dataclasses.replace(
                accounts[name], password_hash=hash_password(_read_password(args.password_stdin)))
        elif args.command == 'role':
            accounts[name] = dataclasses.replace(accounts[name], role=args.role)
        elif args.command == 'reset-totp':
            accounts[name] = dataclasses.replace(accounts[name], totp_secret=new_totp_secret())
        else:
            del accounts[name]
        audit = AuditLog(args.audit_log or default_audit_log(Path(_DEFAULTS['record_root'])), args.audit_key)
        role = f' ({accounts[name].role})' if name in accounts else ''
        audit.record(args.by, f'user {args.command}', name, f'vss-users {args.command} {name}{role}')
        save_accounts(args.file, accounts)
    except (AccountError, AuditError, FileModeError) as error:
        print(f'vss-users: {error}', file=sys.stderr)
        return 2
    if args.command in ('add', 'reset-totp'):
        _print_totp(accounts[name])
    print(f'{args.command}: {name} ({args.file})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
