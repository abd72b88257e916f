"""Signed manifests binding name, camera and times; signed evidence marks; encryption at
rest; keys and file modes. Tampering cases: test_verify_tamper.py; export: test_export_safety.py."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader

from kaiserslautern_vss.events.incident import IncidentUpdate
from kaiserslautern_vss.recordings.encryption import EncryptionError, decrypt_folder, encrypt_folder, load_or_create_key
from kaiserslautern_vss.recordings.file_modes import FileModes
from kaiserslautern_vss.recordings.integrity import (IntegrityError, load_or_create_signing_key, load_public_key,
                                                     mark_evidence, public_key_path, read_manifest, release_evidence,
                                                     verify_incident)
from kaiserslautern_vss.recordings.sealing import recover_incidents, seal_incident
from kaiserslautern_vss.tools import verify
from test_events_recorder import IMAGE, SECOND, T0, feed, incident, recorder

WHEN = datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc)


@pytest.fixture
def keys(tmp_path):
    key, created = load_or_create_signing_key(tmp_path / 'keys' / 'signing_key.pem')
    assert created
    return key, public_key_path(tmp_path / 'keys' / 'signing_key.pem')


def record_sealed(root: Path, key, aes: bytes | None = None, *, camera: str = 'cam01',
                  started_ns: int = T0 + 5 * SECOND, incident_id: str = 'a' * 32) -> Path:
    """One real incident bag (1 s pre-event, 0.5 s post-event) written, closed and sealed."""
    rec = recorder(root, pre_event_s=1.0, post_event_s=0.5,
                   on_closed=lambda folder, cut: seal_incident(folder, key, aes, cut=cut))
    topic = IMAGE.replace('cam01', camera)
    feed(rec, started_ns - 2 * SECOND, started_ns + 1, camera=camera, topic=topic)
    current = incident(camera=camera, started_ns=started_ns, incident_id=incident_id)
    path = rec.on_incident(IncidentUpdate('start', current), now_ns=started_ns)
    current.ended_ns = started_ns
    rec.on_incident(IncidentUpdate('end', current), now_ns=started_ns)
    feed(rec, started_ns + 1, started_ns + 2 * SECOND, camera=camera, topic=topic)
    assert rec.open_bags == {} and rec.last_error is None
    return path


def modes_below(folder: Path) -> set[int]:
    return {stat.S_IMODE(p.lstat().st_mode) for p in [folder, *folder.rglob('*')]}


def test_sealed_incident_verifies_binds_its_meaning_and_is_private(tmp_path, keys, capsys):
    key, public = keys
    folder = record_sealed(tmp_path / 'recordings', key)
    assert verify_incident(folder, load_public_key(public)) == []
    manifest = read_manifest(folder)
    assert manifest['incident'] == folder.name and manifest['record']['camera'] == 'cam01'
    assert manifest['record']['started_ns'] == T0 + 5 * SECOND and manifest['recovered'] is False
    assert manifest['bag']['start_ns'] == T0 + 4 * SECOND and manifest['bag']['topics'] == [IMAGE]
    assert modes_below(folder) == {0o700, 0o600}  # whatever the umask
    assert verify.main(['--key', str(public), str(folder)]) == 0
    assert capsys.readouterr().out == f'OK {folder}\n'
    again, created = load_or_create_signing_key(tmp_path / 'keys' / 'signing_key.pem')
    assert not created and verify_incident(folder, again.public_key()) == []
    assert stat.S_IMODE((tmp_path / 'keys' / 'signing_key.pem').stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / 'keys').stat().st_mode) == 0o700


def test_a_configured_group_may_read(tmp_path, keys):
    import grp
    import os
    group = grp.getgrgid(os.getgid()).gr_name
    modes = FileModes.for_group(group)
    key, _ = keys
    rec = recorder(tmp_path / 'recordings', pre_event_s=1.0, post_event_s=0.0, modes=modes,
                   on_closed=lambda folder, cut: seal_incident(folder, key, modes=modes))
    feed(rec, T0, T0 + 2 * SECOND)
    current = incident(started_ns=T0 + SECOND)
    folder = rec.on_incident(IncidentUpdate('start', current), T0 + SECOND)
    rec.close_all()
    assert modes_below(folder) == {0o750, 0o640}
    with pytest.raises(ValueError, match="file_group 'no-such-group-x' is not a group"):
        FileModes.for_group('no-such-group-x')


def test_evidence_mark_is_signed_for_its_incident(tmp_path, keys):
    key, public = keys
    folder = record_sealed(tmp_path / 'recordings', key)
    mark_evidence(folder, key, 'PHK Meier', 'Az. 1/26', WHEN)
    assert verify_incident(folder, load_public_key(public)) == []
    assert json.loads((folder / 'evidence.json').read_text())['incident'] == folder.name
    assert stat.S_IMODE((folder / 'evidence.json').stat().st_mode) == 0o600
    assert release_evidence(folder) and not release_evidence(folder)
    assert verify_incident(folder, load_public_key(public)) == []
    with pytest.raises(FileNotFoundError, match='not a sealed incident'):
        mark_evidence(tmp_path, key, 'a', 'b', WHEN)


def test_keys_inside_the_recordings_are_refused(tmp_path):
    with pytest.raises(IntegrityError, match='inside the recordings'):
        load_or_create_signing_key(tmp_path / 'rec' / 'key.pem', recordings=tmp_path / 'rec')
    with pytest.raises(EncryptionError, match='inside the recordings'):
        load_or_create_key(tmp_path / 'rec' / 'aes.key', recordings=tmp_path / 'rec')


def test_encrypted_incident_has_nothing_plain_at_rest_and_decrypts(tmp_path, keys):
    key, public = keys
    aes, created = load_or_create_key(tmp_path / 'keys' / 'recordings.key')
    assert created and stat.S_IMODE((tmp_path / 'keys' / 'recordings.key').stat().st_mode) == 0o600
    folder = record_sealed(tmp_path / 'recordings', key, aes)
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        f'{folder.name}.mcap.enc', 'metadata.yaml.enc', 'incident.json', 'manifest.json', 'manifest.sig'])
    assert verify_incident(folder, load_public_key(public)) == []
    assert read_manifest(folder)['bag']['messages'] == 16  # described before encryption
    decrypt_folder(folder, aes, tmp_path / 'plain')
    with Reader(tmp_path / 'plain') as reader:
        assert sum(c.msgcount for c in reader.connections if c.topic == IMAGE) == 16
    with open(tmp_path / 'plain' / f'{folder.name}.mcap', 'rb') as stream:
        assert sum(1 for _ in make_reader(stream).iter_messages()) == 16
    wrong, _ = load_or_create_key(tmp_path / 'other.key')
    with pytest.raises(EncryptionError, match='wrong key or altered'):
        decrypt_folder(folder, wrong, tmp_path / 'nope')


@pytest.mark.parametrize('crash_point', ['closed', 'encrypted_before_unlink', 'encrypted', 'manifest_unsigned'])
def test_sealing_resumes_after_a_crash_anywhere_in_it(tmp_path, keys, crash_point):
    """Start-up recovery finishes what a crash interrupted: encryption and the signature."""
    key, public = keys
    aes, _ = load_or_create_key(tmp_path / 'keys' / 'recordings.key')
    root = tmp_path / 'recordings'
    rec = recorder(root, pre_event_s=1.0, post_event_s=0.0)
    feed(rec, T0, T0 + 2 * SECOND)
    folder = rec.on_incident(IncidentUpdate('start', incident(started_ns=T0 + SECOND)), T0 + SECOND)
    rec.close_all()  # closed, never sealed
    mcap = folder / f'{folder.name}.mcap'
    if crash_point == 'encrypted_before_unlink':
        encrypt_folder(folder, aes)
        decrypt_folder(folder, aes, folder)  # as if killed before the plain files were removed
    elif crash_point in ('encrypted', 'manifest_unsigned'):
        encrypt_folder(folder, aes)
    if crash_point == 'manifest_unsigned':
        seal_incident(folder, key, aes)
        (folder / 'manifest.sig').unlink()
    assert mcap.exists() == (crash_point in ('closed', 'encrypted_before_unlink'))
    (result,) = recover_incidents(root, key, aes)
    assert result.outcome == 'sealed' and verify_incident(folder, load_public_key(public)) == []
    assert not mcap.exists() and read_manifest(folder)['recovered'] is True
    assert read_manifest(folder)['bag']['messages'] == 20  # every buffered frame since 1 s before the start


def test_a_folder_killed_before_any_message_reached_the_disk_is_removed(tmp_path, keys):
    """No empty incident stays behind: the crash left a bag header only."""
    key, _ = keys
    root = tmp_path / 'recordings'
    rec = recorder(root, pre_event_s=0.0)
    folder = rec.on_incident(IncidentUpdate('start', incident()), T0)  # nothing buffered yet
    assert folder.is_dir()  # and the process dies here: never closed
    (result,) = recover_incidents(root, key)
    assert result.outcome == 'removed' and not folder.exists()
