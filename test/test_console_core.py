"""The console's ROS-free building blocks: roles, accounts and vss-users, login guard,
sessions, certificates, incident names, message decoding."""

from __future__ import annotations

import io
import json
import stat
from datetime import datetime, timezone

import numpy as np
import pyotp
import pytest
from cryptography import x509

from console_support import T0, event_cdr, jpeg_cdr, scene
from kaiserslautern_vss.console import roles
from kaiserslautern_vss.console.accounts import (Account, AccountBook, AccountError, hash_password, load_accounts,
                                                 password_matches, save_accounts, totp_counter, totp_uri)
from kaiserslautern_vss.console.incidents import IncidentNotFound, incident_folder, split_name
from kaiserslautern_vss.console.live import LiveState
from kaiserslautern_vss.console.login_guard import LoginGuard, LoginPolicy
from kaiserslautern_vss.console.messages import MessageError, NotAnIncident, decode_event, jpeg_from_cdr
from kaiserslautern_vss.console.sessions import SessionStore
from kaiserslautern_vss.console.tls import TlsError, certificate_fingerprint, ensure_certificate
from kaiserslautern_vss.detection.grade import DetectorGrade, detector_info_json
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.ros.typestore import vss_typestore
from kaiserslautern_vss.tools import users

PASSWORD = 'a long enough passphrase'


def test_each_role_includes_the_one_before():
    assert roles.allowed('operator', roles.TRIGGER) and not roles.allowed('operator', roles.EVIDENCE)
    assert roles.allowed('investigator', roles.EXPORT) and not roles.allowed('investigator', roles.READ_AUDIT)
    assert all(roles.allowed('admin', p) for p in roles.PERMISSIONS['admin'])
    assert not roles.allowed('guest', roles.VIEW_LIVE)


def test_passwords_are_argon2_and_totp_steps_are_checked():
    with pytest.raises(AccountError, match='too short'):
        hash_password('short')
    account = Account('olga', 'operator', hash_password(PASSWORD), pyotp.random_base32())
    assert account.password_hash.startswith('$argon2id$')
    assert password_matches(account, PASSWORD) and not password_matches(account, PASSWORD + 'x')
    totp, now = pyotp.TOTP(account.totp_secret), 1_800_000_000.0
    step = int(now // 30)
    assert totp_counter(account, totp.at(now), now) == step
    assert totp_counter(account, totp.at(now - 30), now) == step - 1  # one step of clock drift
    assert totp_counter(account, totp.at(now + 90), now) is None
    assert totp_counter(account, 'abcdef', now) is None
    assert totp_uri(account).startswith('otpauth://totp/')


def test_users_file_round_trip_is_private_and_checked(tmp_path):
    path = tmp_path / 'users.json'
    save_accounts(path, {'olga': Account('olga', 'operator', hash_password(PASSWORD), 'JBSWY3DPEHPK3PXP')})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_accounts(path)['olga'].role == 'operator'
    assert load_accounts(tmp_path / 'missing.json') == {}
    book = AccountBook(path)
    assert book.get('olga') is not None
    save_accounts(path, {})
    assert book.get('olga') is None  # a removed user is refused at once
    document = json.loads(path.read_text())
    document['users'] = {'eve': {'role': 'root', 'password_hash': 'x', 'totp_secret': 'y'}}
    path.write_text(json.dumps(document))
    with pytest.raises(AccountError, match="unknown role 'root'"):
        load_accounts(path)
    path.write_text('{"users": {}}')
    with pytest.raises(AccountError, match='not a console users file'):
        load_accounts(path)


def test_vss_users_manages_the_file(tmp_path, monkeypatch, capsys):
    path = str(tmp_path / 'users.json')

    def run(*argv, password=PASSWORD):
        monkeypatch.setattr('sys.stdin', io.StringIO(password + '\n'))
        return users.main(['--file', path, *argv])

    assert run('add', 'ingo', '--role', 'investigator', '--display-name', 'KHK Ingo', '--password-stdin') == 0
    out = capsys.readouterr().out
    secret = load_accounts(path)['ingo'].totp_secret
    assert secret in out and 'otpauth://totp/' in out
    assert run('add', 'ingo', '--role', 'admin', '--password-stdin') == 2
    assert run('add', 'x/y', '--role', 'admin', '--password-stdin') == 2
    assert run('add', 'kurt', '--role', 'admin', '--password-stdin', password='short') == 2
    assert 'too short' in capsys.readouterr().err
    assert run('role', 'ingo', 'admin') == 0 and load_accounts(path)['ingo'].role == 'admin'
    assert run('reset-totp', 'ingo') == 0 and load_accounts(path)['ingo'].totp_secret != secret
    assert run('passwd', 'ingo', '--password-stdin', password='another long passphrase') == 0
    assert password_matches(load_accounts(path)['ingo'], 'another long passphrase')
    capsys.readouterr()
    assert run('list') == 0 and 'ingo' in capsys.readouterr().out
    assert run('remove', 'ingo') == 0 and load_accounts(path) == {}
    assert run('remove', 'ingo') == 2


def test_login_guard_rate_limits_locks_out_and_refuses_replayed_codes():
    guard = LoginGuard(LoginPolicy(max_failures=3, lockout_s=600.0, attempts_per_minute=5))
    assert guard.refusal('olga', '10.0.0.1', 0.0) is None
    assert not guard.record_failure('olga', 0.0) and not guard.record_failure('olga', 1.0)
    assert guard.record_failure('olga', 2.0)  # third in a row: locked
    assert 'gesperrt' in guard.refusal('olga', '10.0.0.2', 3.0)
    assert guard.refusal('olga', '10.0.0.2', 603.0) is None  # lock over
    for moment in range(4):
        guard.refusal('someone', '10.0.0.3', 10.0 + moment)
    assert guard.refusal('other', '10.0.0.3', 14.0) is None
    assert 'Zu viele' in guard.refusal('third', '10.0.0.3', 15.0)  # sixth try within a minute
    assert guard.refusal('third', '10.0.0.3', 71.0) is None
    assert guard.accept_totp_step('olga', 100) and not guard.accept_totp_step('olga', 100)
    assert not guard.accept_totp_step('olga', 99) and guard.accept_totp_step('olga', 101)


def test_sessions_end_when_idle_or_old_and_background_requests_do_not_renew():
    store = SessionStore(idle_s=60.0, max_age_s=3600.0)
    session = store.create('olga', 'operator', 'c', 0.0)
    assert store.get(session.id, 50.0) is session
    assert store.get(session.id, 100.0, activity=False) is session  # 50 s since activity
    assert store.get(session.id, 111.0) is None  # idle since 50 s
    old = store.create('olga', 'operator', 'c', 0.0)
    for moment in range(50, 3600, 50):
        assert store.get(old.id, float(moment)) is old
    assert store.get(old.id, 3601.0) is None
    ended = store.create('olga', 'operator', 'c', 0.0)
    store.end(ended.id)
    assert store.get(ended.id, 1.0) is None and store.get(None, 1.0) is None
    assert session.csrf_token != old.csrf_token


def test_self_signed_certificate_only_when_allowed(tmp_path):
    cert, key = tmp_path / 'tls' / 'cert.pem', tmp_path / 'tls' / 'key.pem'
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    with pytest.raises(TlsError, match='tls_self_signed'):
        ensure_certificate(cert, key, self_signed=False, host='10.20.40.2', now=now)
    assert ensure_certificate(cert, key, self_signed=True, host='10.20.40.2', now=now)
    assert not ensure_certificate(cert, key, self_signed=True, host='10.20.40.2', now=now)  # kept
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ['10.20.40.2']
    assert len(certificate_fingerprint(cert).split(':')) == 32


def test_incident_names(tmp_path):
    name = '20261118T110642Z_cam_north_zone_intrusion_a1a1a1a1'
    assert split_name(name, ['cam_north', 'cam']) == ('cam_north', 'zone_intrusion')
    assert split_name('20261118T110642Z_cam01_manual_b2b2b2b2', []) == ('cam01', 'manual')
    (tmp_path / name).mkdir()
    assert incident_folder(tmp_path, name) == tmp_path / name
    for bad in ('..', '../etc', '.hidden', 'notes', '20261118T110642Z_x/../../etc', ''):
        with pytest.raises(IncidentNotFound):
            incident_folder(tmp_path, bad)


def test_only_jpeg_images_and_json_events_are_shown():
    stamp, jpeg = jpeg_from_cdr(jpeg_cdr(T0, scene(0)[0]))
    assert stamp == T0 and jpeg[:2] == b'\xff\xd8'
    store = vss_typestore()
    t = store.types
    header = t['std_msgs/msg/Header'](stamp=t['builtin_interfaces/msg/Time'](sec=1, nanosec=0), frame_id='x')
    png = store.serialize_cdr(t['sensor_msgs/msg/CompressedImage'](
        header=header, format='png', data=np.frombuffer(b'\x89PNG....', np.uint8)), 'sensor_msgs/msg/CompressedImage')
    with pytest.raises(MessageError, match='not JPEG'):
        jpeg_from_cdr(bytes(png))
    with pytest.raises(MessageError):
        jpeg_from_cdr(b'\x00\x01garbage')
    text = store.serialize_cdr(t['std_msgs/msg/String'](data='not json'), 'std_msgs/msg/String')
    with pytest.raises(MessageError, match='not JSON'):
        decode_event(bytes(text))


def test_other_news_on_the_events_topic_is_neither_an_alert_nor_a_dropped_message():
    store = vss_typestore()

    def string_cdr(text: str) -> bytes:
        return bytes(store.serialize_cdr(store.types['std_msgs/msg/String'](data=text), 'std_msgs/msg/String'))

    detector_info = string_cdr(detector_info_json('/vss/detector', 'yolox_nano.onnx', DetectorGrade.MODEL,
                                                  ['cam01']))
    with pytest.raises(NotAnIncident, match='detector_info'):
        decode_event(detector_info)
    live = LiveState(['cam01'], lambda: 0.0)
    live.on_event(detector_info)
    assert (live.alerts(), live.dropped_messages) == ([], 0)
    live.on_event(string_cdr('not json'))
    assert live.dropped_messages == 1
    incident = Incident(id='c3' * 16, rule='zone_intrusion', camera='cam01', kind='zone_intrusion',
                        started_ns=T0, updated_ns=T0)
    live.on_event(event_cdr(IncidentUpdate('start', incident)))
    assert [alert['id'] for alert in live.alerts()] == ['c3' * 16] and live.dropped_messages == 1
