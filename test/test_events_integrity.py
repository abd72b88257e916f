"""Signed manifests, vss-verify, encryption at rest, vss-export and the audit chain."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader

from kaiserslautern_vss.events.audit import append_audit, verify_audit
from kaiserslautern_vss.events.encryption import EncryptionError, decrypt_folder, load_or_create_key
from kaiserslautern_vss.events.integrity import (IntegrityError, load_or_create_signing_key, load_public_key,
                                                 public_key_path, verify_incident, write_manifest)
from kaiserslautern_vss.events.sealing import seal_incident
from kaiserslautern_vss.tools import export, verify
from kaiserslautern_vss.events.incident import IncidentUpdate
from test_events_recorder import IMAGE, SECOND, T0, feed, incident, recorder

NAME = '20261126T153012Z_cam01_lawn_1a2b3c4d'


@pytest.fixture
def keys(tmp_path):
    key, created = load_or_create_signing_key(tmp_path / 'keys' / 'signing_key.pem')
    assert created
    return key, public_key_path(tmp_path / 'keys' / 'signing_key.pem')


def _incident(root: Path) -> Path:
    folder = root / 'recordings' / NAME
    folder.mkdir(parents=True)
    (folder / f'{NAME}.mcap').write_bytes(bytes(range(256)) * 40)
    (folder / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
    return folder


def test_intact_incident_verifies_and_key_is_reused(tmp_path, keys):
    key, public = keys
    folder = _incident(tmp_path)
    write_manifest(folder, key)
    assert verify_incident(folder, load_public_key(public)) == []
    again, created = load_or_create_signing_key(tmp_path / 'keys' / 'signing_key.pem')
    assert not created and verify_incident(folder, again.public_key()) == []
    assert (tmp_path / 'keys' / 'signing_key.pem').stat().st_mode & 0o077 == 0
    assert verify.main(['--key', str(public), str(folder)]) == 0


def test_verify_names_flipped_byte_removed_and_added_files(tmp_path, keys, capsys):
    key, public = keys
    folder = _incident(tmp_path)
    write_manifest(folder, key)
    mcap = folder / f'{NAME}.mcap'
    data = bytearray(mcap.read_bytes())
    data[5000] ^= 0x01
    mcap.write_bytes(bytes(data))
    (folder / 'metadata.yaml').unlink()
    (folder / 'extra.jpg').write_bytes(b'x')
    findings = {(f.kind, f.path) for f in verify_incident(folder, load_public_key(public))}
    assert findings == {('altered', f'{NAME}.mcap'), ('removed', 'metadata.yaml'), ('added', 'extra.jpg')}
    assert verify.main(['--key', str(public), '--all', str(folder.parent)]) == 1
    output = capsys.readouterr().out
    assert f'altered: {NAME}.mcap' in output and 'removed: metadata.yaml' in output and 'added: extra.jpg' in output


def test_edited_manifest_or_other_key_is_a_bad_signature(tmp_path, keys):
    key, public = keys
    folder = _incident(tmp_path)
    write_manifest(folder, key)
    other, _ = load_or_create_signing_key(tmp_path / 'other.pem')
    assert [f.kind for f in verify_incident(folder, other.public_key())] == ['bad signature']
    # Re-hashing a tampered file into the manifest does not help without the key.
    (folder / 'metadata.yaml').write_text('forged\n')
    manifest = json.loads((folder / 'manifest.json').read_text())
    from kaiserslautern_vss.events.integrity import sha256_file
    manifest['files']['metadata.yaml']['sha256'] = sha256_file(folder / 'metadata.yaml')
    (folder / 'manifest.json').write_text(json.dumps(manifest))
    assert [f.kind for f in verify_incident(folder, load_public_key(public))] == ['bad signature']


def test_keys_inside_the_recordings_are_refused(tmp_path):
    with pytest.raises(IntegrityError, match='inside the recordings'):
        load_or_create_signing_key(tmp_path / 'rec' / 'key.pem', recordings=tmp_path / 'rec')
    with pytest.raises(EncryptionError, match='inside the recordings'):
        load_or_create_key(tmp_path / 'rec' / 'aes.key', recordings=tmp_path / 'rec')


def test_recorder_seals_each_closed_bag_encrypted(tmp_path, keys):
    key, public = keys
    aes, _ = load_or_create_key(tmp_path / 'keys' / 'recordings.key')
    rec = recorder(tmp_path / 'recordings', pre_event_s=1.0, post_event_s=0.5,
                   on_closed=lambda folder: seal_incident(folder, key, aes))
    feed(rec, T0, T0 + 5 * SECOND + 1)
    current = incident()
    rec.on_incident(IncidentUpdate('start', current), now_ns=T0 + 5 * SECOND)
    current.ended_ns = T0 + 5 * SECOND
    rec.on_incident(IncidentUpdate('end', current), now_ns=T0 + 5 * SECOND)
    feed(rec, T0 + 5 * SECOND + 1, T0 + 7 * SECOND)
    assert rec.open_bags == {} and rec.last_error is None
    (folder,) = [p for p in (tmp_path / 'recordings').iterdir()]
    assert not list(folder.glob('*.mcap')) and list(folder.glob('*.mcap.enc'))  # nothing plain at rest
    assert verify_incident(folder, load_public_key(public)) == []
    out = tmp_path / 'export'
    assert export.main([str(folder), '--to', str(out), '--by', 'PHK Meier', '--why', 'Az. 123/26',
                        '--encryption-key', str(tmp_path / 'keys' / 'recordings.key'),
                        '--verify-key', str(public), '--audit-log', str(tmp_path / 'audit.log')]) == 0
    with Reader(out) as reader:
        assert sum(c.msgcount for c in reader.connections if c.topic == IMAGE) == 16  # 1 s before the start frame, it, 0.5 s after
    entry = json.loads((tmp_path / 'audit.log').read_text())
    assert entry['who'] == 'PHK Meier' and entry['what'] == 'export' and entry['target'] == folder.name
    wrong, _ = load_or_create_key(tmp_path / 'other.key')
    with pytest.raises(EncryptionError, match='wrong key or altered'):
        decrypt_folder(folder, wrong, tmp_path / 'nope')


def test_export_refuses_an_altered_incident(tmp_path, keys):
    key, public = keys
    folder = _incident(tmp_path)
    write_manifest(folder, key)
    (folder / 'metadata.yaml').write_text('changed\n')
    assert export.main([str(folder), '--to', str(tmp_path / 'out'), '--by', 'a', '--why', 'b',
                        '--verify-key', str(public), '--audit-log', str(tmp_path / 'audit.log')]) == 1
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'audit.log').exists()


def test_audit_chain_detects_edited_and_removed_lines(tmp_path):
    log = tmp_path / 'audit.log'
    when = datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc)
    for n in range(4):
        append_audit(log, who=f'user{n}', what='export', target=NAME, why=f'case {n}', when=when)
    assert verify_audit(log) == []
    lines = log.read_text().splitlines()
    edited = lines.copy()
    edited[1] = edited[1].replace('user1', 'someone')
    log.write_text('\n'.join(edited) + '\n')
    assert verify_audit(log) == ['line 2: content changed']
    log.write_text('\n'.join(lines[:1] + lines[2:]) + '\n')
    assert verify_audit(log) == ['line 2: chain broken (a line before it was changed, removed or inserted)']
    with pytest.raises(ValueError, match='who and why'):
        append_audit(log, who='x', what='export', target=NAME, why=' ', when=when)
