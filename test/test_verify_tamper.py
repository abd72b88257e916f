"""vss-verify against each way an incident can be tampered with on disk (real sealed bags)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from kaiserslautern_vss.recordings.integrity import (load_or_create_signing_key, load_public_key, mark_evidence,
                                                     sha256_file, verify_incident)
from kaiserslautern_vss.tools import verify
from test_events_integrity import WHEN, keys, record_sealed  # noqa: F401  (fixture)
from test_events_recorder import SECOND, T0


@pytest.fixture
def sealed(tmp_path, keys):  # noqa: F811
    key, public = keys
    return record_sealed(tmp_path / 'recordings', key), load_public_key(public), key


def _findings(folder: Path, public) -> set[tuple[str, str]]:
    return {(f.kind, f.path) for f in verify_incident(folder, public)}


def test_flipped_byte(sealed):
    folder, public, _ = sealed
    mcap = folder / f'{folder.name}.mcap'
    data = bytearray(mcap.read_bytes())
    data[len(data) // 2] ^= 0x01
    mcap.write_bytes(bytes(data))
    assert _findings(folder, public) == {('altered', mcap.name)}


def test_truncation(sealed):
    folder, public, _ = sealed
    mcap = folder / f'{folder.name}.mcap'
    os.truncate(mcap, mcap.stat().st_size - 1000)
    assert _findings(folder, public) == {('altered', mcap.name)}


def test_added_file_link_and_fifo(sealed, tmp_path):
    folder, public, _ = sealed
    (folder / 'extra.jpg').write_bytes(b'x')
    (folder / 'key.pem').symlink_to(tmp_path / 'keys' / 'signing_key.pem')
    os.mkfifo(folder / 'pipe')
    assert _findings(folder, public) == {('added', 'extra.jpg'), ('added', 'key.pem'), ('added', 'pipe')}


def test_removed_file(sealed):
    folder, public, _ = sealed
    (folder / 'incident.json').unlink()
    assert _findings(folder, public) == {('removed', 'incident.json')}


def test_renamed_to_another_date_and_camera(sealed, capsys):
    folder, public, _ = sealed
    renamed = folder.with_name(folder.name.replace('20261118T', '20261201T').replace('_cam01_', '_cam07_'))
    folder.rename(renamed)
    assert _findings(renamed, public) == {('renamed', renamed.name)}
    assert verify.main(['--key', str(public_pem(renamed)), '--all', str(renamed.parent)]) == 1
    assert f'renamed: {renamed.name} (signed as {folder.name})' in capsys.readouterr().out


def public_pem(folder: Path) -> Path:
    return folder.parents[1] / 'keys' / 'signing_key.pem.pub'


def test_bag_swapped_in_from_another_incident(sealed, tmp_path):
    """Moving another incident's files (and their hashes) in is still caught by the signature."""
    folder, public, key = sealed
    other = record_sealed(tmp_path / 'other', key, camera='cam02', started_ns=T0 + 50 * SECOND,
                          incident_id='b' * 32)
    for name in ('metadata.yaml', 'incident.json'):
        shutil.copy(other / name, folder / name)
    findings = _findings(folder, public)
    assert ('altered', 'metadata.yaml') in findings and ('altered', 'incident.json') in findings


def test_edited_evidence_and_unsigned_evidence(sealed):
    folder, public, key = sealed
    mark_evidence(folder, key, 'PHK Meier', 'Az. 1/26', WHEN)
    mark = json.loads((folder / 'evidence.json').read_text())
    (folder / 'evidence.json').write_text(json.dumps({**mark, 'who': 'someone else'}))
    assert _findings(folder, public) == {('evidence', 'evidence.json')}
    (folder / 'evidence.sig').unlink()
    assert _findings(folder, public) == {('evidence', 'evidence.json')}


def test_evidence_mark_copied_from_another_incident(sealed, tmp_path):
    folder, public, key = sealed
    other = record_sealed(tmp_path / 'other', key, started_ns=T0 + 50 * SECOND, incident_id='b' * 32)
    mark_evidence(other, key, 'PHK Meier', 'Az. 1/26', WHEN)
    for name in ('evidence.json', 'evidence.sig'):
        shutil.copy(other / name, folder / name)
    assert [str(f) for f in verify_incident(folder, public)] == [
        f"evidence: evidence.json (signed for '{other.name}')"]


def test_another_key_and_a_rehashed_manifest(sealed, tmp_path):
    folder, public, _ = sealed
    other, _ = load_or_create_signing_key(tmp_path / 'other.pem')
    assert _findings(folder, other.public_key()) == {('bad signature', 'manifest.json')}
    (folder / 'incident.json').write_text('{"forged": true}')
    manifest = json.loads((folder / 'manifest.json').read_text())
    manifest['files']['incident.json']['sha256'] = sha256_file(folder / 'incident.json')
    (folder / 'manifest.json').write_text(json.dumps(manifest))
    assert _findings(folder, public) == {('bad signature', 'manifest.json')}
    # Re-signed with another key: the right key still refuses it.
    (folder / 'manifest.sig').write_bytes(other.sign((folder / 'manifest.json').read_bytes()))
    assert _findings(folder, public) == {('bad signature', 'manifest.json')}


def test_no_manifest(sealed):
    folder, public, _ = sealed
    (folder / 'manifest.sig').unlink()
    assert _findings(folder, public) == {('no manifest', folder.name)}
