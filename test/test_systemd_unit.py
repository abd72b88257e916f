"""The site's systemd unit: valid for systemd, and it stops, restarts and confines the graph as
docs/SITE.md says."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT

UNIT = REPO_ROOT / 'deploy' / 'systemd' / 'kaiserslautern-vss.service'
SYSUSERS = REPO_ROOT / 'deploy' / 'systemd' / 'kaiserslautern-vss.sysusers.conf'


def _unit() -> configparser.ConfigParser:
    # systemd allows repeated keys (Environment=); keep every value.
    class MultiDict(dict):
        def __setitem__(self, key, value):
            if key in self and isinstance(value, list):
                self[key].extend(value)
            else:
                super().__setitem__(key, value)

    parser = configparser.RawConfigParser(dict_type=MultiDict, strict=False, empty_lines_in_values=False,
                                          interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def _values(key: str, section: str = 'Service') -> list[str]:
    return _unit()[section][key].split('\n')


def test_systemd_analyze_verify_accepts_the_unit():
    if shutil.which('systemd-analyze') is None:
        pytest.skip('systemd-analyze is not installed (Debian package systemd); the checks below still run')
    result = subprocess.run(['systemd-analyze', 'verify', str(UNIT)], capture_output=True, text=True, timeout=60)
    # verify prints what it ignored (unknown keys, bad values) without failing: none allowed.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), \
        result.stdout + result.stderr


def test_stops_with_sigint_to_ros2_launch_only():
    """SIGTERM makes upstream launch exit and leave its nodes running; SIGINT makes it stop them.
    KillMode=mixed sends it to launch alone (nodes would otherwise get it twice)."""
    service = _unit()['Service']
    assert service['KillSignal'] == 'SIGINT'
    assert service['KillMode'] == 'mixed'
    command = shlex.split(service['ExecStart'])
    assert command[:2] == ['/bin/bash', '-c'] and 'exec ros2 launch kaiserslautern_vss vss.launch.py' in command[2]
    assert int(service['TimeoutStopSec']) >= 30  # launch's own SIGINT -> SIGTERM -> SIGKILL takes 10 s


def test_restarts_on_failure_with_a_limit():
    unit = _unit()
    assert unit['Service']['Restart'] == 'on-failure'
    assert int(unit['Service']['RestartSec']) >= 5
    assert {'StartLimitIntervalSec', 'StartLimitBurst'} <= set(unit['Unit'])


def test_dedicated_user_and_secret_environment_file():
    service = _unit()['Service']
    assert service['User'] == service['Group'] == 'vss'
    assert _values('EnvironmentFile') == ['/etc/vss/cameras.env']
    assert 'stat -c %%a:%%U /etc/vss/cameras.env)" = 600:root' in service['ExecStartPre']
    user_line = [line.split() for line in SYSUSERS.read_text().splitlines() if line.startswith('u ')]
    assert user_line and user_line[0][1] == 'vss'


def test_sandbox_leaves_only_state_logs_and_recordings_writable():
    service = _unit()['Service']
    for key, value in {'NoNewPrivileges': 'yes', 'ProtectSystem': 'strict', 'ProtectHome': 'yes',
                       'PrivateTmp': 'yes', 'RestrictSUIDSGID': 'yes', 'CapabilityBoundingSet': ''}.items():
        assert service[key] == value, key
    record_root = next(v.split('=', 1)[1] for v in _values('Environment') if v.startswith('VSS_RECORD_ROOT='))
    assert service['ReadWritePaths'] == record_root
    assert 'record_root:="$VSS_RECORD_ROOT"' in service['ExecStart']
    assert service['StateDirectory'] == 'vss' and service['LogsDirectory'] == 'vss'



def test_explicit_file_limit_above_the_servers_connection_caps():
    """A flood of connections meets the servers' caps long before the process runs out of files."""
    from kaiserslautern_vss.parameters import camera_events, operator_console

    def default(parameters, name):
        return next(spec.default for spec in parameters if spec.name == name)

    caps = default(operator_console.PARAMETERS, 'max_connections') + \
        default(camera_events.PARAMETERS, 'max_connections')
    limit = int(_unit()['Service']['LimitNOFILE'])
    assert limit >= 4096 and limit >= 8 * caps
