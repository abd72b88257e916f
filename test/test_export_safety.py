"""vss-export is safe by default: verification is mandatory (skipping it is audited), links
and special files are never followed or copied, output is 0700/0600, every export audited."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader

from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.encryption import load_or_create_key
from kaiserslautern_vss.recordings.export import ExportError, export_incident
from kaiserslautern_vss.recordings.integrity import load_public_key
from kaiserslautern_vss.tools import export
from test_events_integrity import keys, modes_below, record_sealed  # noqa: F401  (fixture)
from test_events_recorder import IMAGE


@pytest.fixture
def setup(tmp_path, keys):  # noqa: F811
    key, public = keys
    folder = record_sealed(tmp_path / 'recordings', key)
    arguments = ['--by', 'PHK Meier', '--why', 'Az. 123/26', '--audit-log', str(tmp_path / 'audit.log'),
                 '--audit-key', str(tmp_path / 'keys' / 'audit.key')]
    return folder, public, arguments, key


def _audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / 'audit.log', tmp_path / 'keys' / 'audit.key')


def test_verified_export_is_private_and_audited(tmp_path, setup, capsys):
    folder, public, arguments, _ = setup
    out = tmp_path / 'out'
    old_umask = os.umask(0)  # the modes must not depend on it
    try:
        assert export.main([str(folder), '--to', str(out), '--verify-key', str(public), *arguments]) == 0
    finally:
        os.umask(old_umask)
    assert modes_below(out) == {0o700, 0o600}
    with Reader(out) as reader:
        assert sum(c.msgcount for c in reader.connections if c.topic == IMAGE) == 16
    (entry,) = _audit(tmp_path).entries()
    assert (entry['actor'], entry['action'], entry['target']) == ('PHK Meier', 'export', folder.name)
    assert entry['reason'] == f'Az. 123/26 -> {out.resolve()}'
    assert _audit(tmp_path).verify() == []


def test_verification_is_mandatory_and_skipping_it_is_audited(tmp_path, setup, capsys):
    folder, _, arguments, _ = setup
    with pytest.raises(SystemExit):
        export.main([str(folder), '--to', str(tmp_path / 'out'), *arguments])
    assert '--verify-key is required (or --no-verify' in capsys.readouterr().err
    assert export.main([str(folder), '--to', str(tmp_path / 'out'), '--no-verify', *arguments]) == 0
    assert 'WITHOUT verification (audited)' in capsys.readouterr().out
    assert [e['action'] for e in _audit(tmp_path).entries()] == ['export-unverified']


def test_altered_incident_is_refused_and_nothing_is_left(tmp_path, setup, capsys):
    folder, public, arguments, _ = setup
    (folder / 'metadata.yaml').write_text('changed\n')
    assert export.main([str(folder), '--to', str(tmp_path / 'out'), '--verify-key', str(public), *arguments]) == 1
    error = capsys.readouterr().err
    assert 'refused' in error and 'altered: metadata.yaml' in error
    assert not (tmp_path / 'out').exists() and _audit(tmp_path).entries() == []


def test_planted_link_to_the_signing_key_is_never_followed(tmp_path, setup, capsys):
    folder, public, arguments, _ = setup
    secret = tmp_path / 'keys' / 'signing_key.pem'
    (folder / 'evidence_photo.jpg').symlink_to(secret)
    for extra in (['--verify-key', str(public)], ['--no-verify']):
        assert export.main([str(folder), '--to', str(tmp_path / 'out'), *extra, *arguments]) == 1
        assert 'symbolic link evidence_photo.jpg' in capsys.readouterr().err
        assert not (tmp_path / 'out').exists()
    # A link swapped in for a signed file after the check is refused when opened.
    (folder / 'evidence_photo.jpg').unlink()
    (folder / 'incident.json').unlink()
    (folder / 'incident.json').symlink_to(secret)
    assert export.main([str(folder), '--to', str(tmp_path / 'out'), '--no-verify', *arguments]) == 1
    assert not (tmp_path / 'out').exists()
    assert not any(secret.read_bytes() in p.read_bytes() for p in tmp_path.rglob('*')
                   if p.is_file() and not p.is_symlink() and p != secret)


def test_special_file_and_linked_incident_are_refused(tmp_path, setup):
    folder, public, arguments, _ = setup
    os.mkfifo(folder / 'pipe')  # reading it would block forever
    assert export.main([str(folder), '--to', str(tmp_path / 'out'), '--no-verify', *arguments]) == 1
    (folder / 'pipe').unlink()
    link = tmp_path / 'recordings' / 'linked'
    link.symlink_to(folder)
    assert export.main([str(link), '--to', str(tmp_path / 'out'), '--no-verify', *arguments]) == 1
    assert not (tmp_path / 'out').exists()


def test_encrypted_incident_exports_decrypted_with_the_key_only(tmp_path, keys):  # noqa: F811
    key, public = keys
    aes, _ = load_or_create_key(tmp_path / 'keys' / 'recordings.key')
    folder = record_sealed(tmp_path / 'recordings', key, aes)
    audit = _audit(tmp_path)
    with pytest.raises(ExportError, match='encrypted; give the encryption key'):
        export_incident(folder, tmp_path / 'out', actor='a', reason='b', audit=audit,
                               verify_key=load_public_key(public))
    result = export_incident(folder, tmp_path / 'out', actor='PHK Meier', reason='Az. 1/26', audit=audit,
                                    verify_key=load_public_key(public), encryption_key=aes)
    assert result.verified and result.decrypted
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == sorted(
        [f'{folder.name}.mcap', 'metadata.yaml', 'incident.json'])
    assert stat.S_IMODE((tmp_path / 'out').stat().st_mode) == 0o700
    with Reader(tmp_path / 'out') as reader:
        assert reader.message_count == 16
