"""Tamper evidence for incident folders: a signed manifest of every file and of what the
folder is about.

``manifest.json`` lists each file of the incident (relative path -> SHA-256 and size) and
binds the meaning: the folder name (which carries date and camera), the incident id,
camera, rule and start from ``incident.json``, the bag's time range and topics from its
``metadata.yaml``, and whether the bag was recovered after a crash or cut for lack of
space. ``manifest.sig`` is the Ed25519 signature of the manifest's exact bytes. The
signing key lives outside the recordings (a recordings copy never carries the means to
re-sign it). The evidence mark (``evidence.json``) is signed with the same key
(``evidence.sig``) and names its incident; it is outside the manifest because it changes
after sealing. Nothing here follows a symbolic link: a link or special file in an
incident folder is a finding, never read.

Key handling decision: the node generates the key on first use (and logs its path and
the public key fingerprint); ``vss-verify`` only needs the public key, which is written
beside the private key as ``<name>.pub``.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kaiserslautern_vss.recordings.bag_writer import bag_directory_name
from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModeError, FileModes, read_regular
from kaiserslautern_vss.ros.topics import EVENTS

MANIFEST_SCHEMA = 'kaiserslautern_vss/manifest/v2'
EVIDENCE_SCHEMA = 'kaiserslautern_vss/evidence/v1'
MANIFEST_FILE = 'manifest.json'
SIGNATURE_FILE = 'manifest.sig'
EVIDENCE_FILE = 'evidence.json'
EVIDENCE_SIGNATURE_FILE = 'evidence.sig'
INCIDENT_FILE = 'incident.json'  # written when the bag opens: what the folder is about
METADATA_FILE = 'metadata.yaml'
UNSIGNED_FILES = frozenset({MANIFEST_FILE, SIGNATURE_FILE, EVIDENCE_FILE, EVIDENCE_SIGNATURE_FILE})
_CHUNK = 1 << 20
BAG_START_TOLERANCE_NS = 300 * 10**9


class IntegrityError(RuntimeError):
    """A key, manifest or incident record that cannot be used (unreadable, wrong type, misplaced)."""


@dataclass(frozen=True)
class Finding:
    """One way an incident folder differs from what was signed."""

    kind: str  # 'altered', 'removed', 'added', 'bad signature', 'no manifest', 'renamed', ...
    path: str
    detail: str = ''

    def __str__(self) -> str:
        return f'{self.kind}: {self.path}' + (f' ({self.detail})' if self.detail else '')


@dataclass(frozen=True)
class IncidentRecord:
    """What an incident folder holds, written as ``incident.json`` when its bag opens."""

    incident_id: str
    camera: str
    rule: str
    started_ns: int

    @property
    def folder_name(self) -> str:
        started = datetime.fromtimestamp(self.started_ns / 1e9, tz=timezone.utc)
        return bag_directory_name(started, self.camera, self.rule, self.incident_id[:8])

    def write(self, folder: Path, modes: FileModes = PRIVATE) -> Path:
        return modes.write(Path(folder) / INCIDENT_FILE, json.dumps(asdict(self), sort_keys=True).encode())

    @classmethod
    def read(cls, folder: Path) -> IncidentRecord:
        try:
            return cls(**json.loads(read_regular(Path(folder) / INCIDENT_FILE)))
        except (OSError, ValueError, TypeError, FileModeError) as error:
            raise IntegrityError(f'{folder}: no usable {INCIDENT_FILE}: {error}') from error


def describe_bag(metadata_yaml: bytes) -> dict[str, Any]:
    """Time range, message count and topics from a rosbag2 ``metadata.yaml``."""
    try:
        info = yaml.safe_load(metadata_yaml)['rosbag2_bagfile_information']
        start = int(info['starting_time']['nanoseconds_since_epoch'])
        return {'start_ns': start, 'end_ns': start + int(info['duration']['nanoseconds']),
                'messages': int(info['message_count']),
                'topics': sorted(t['topic_metadata']['name'] for t in info['topics_with_message_count'])}
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise IntegrityError(f'{METADATA_FILE} is not a rosbag2 description: {error}') from error


def bag_problems(record: IncidentRecord, bag: dict[str, Any]) -> list[str]:
    """Ways the bag contradicts its incident: another camera's topic, a start outside the bag."""
    problems = [f'topic {topic} is not of camera {record.camera}' for topic in bag['topics']
                if topic != EVENTS and record.camera not in topic.strip('/').split('/')]
    # The bag starts with the pre-event seconds (at most 120 s before the incident) and a
    # crash-recovered one may end before it; a bag far from its incident is another one.
    if bag['messages'] and abs(bag['start_ns'] - record.started_ns) > BAG_START_TOLERANCE_NS:
        problems.append(f'bag starts {(bag["start_ns"] - record.started_ns) / 1e9:+.1f} s from the incident start')
    return problems


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_entries(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """``(regular files, other entries)`` below ``folder`` by relative name, links never
    followed; other entries (links, pipes, devices) map to what they are."""
    files, others = {}, {}
    pending = [Path(folder)]
    while pending:
        for path in sorted(pending.pop().iterdir()):
            name = path.relative_to(folder).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                pending.append(path)
            elif stat.S_ISREG(mode):
                files[name] = path
            else:
                others[name] = 'symbolic link' if stat.S_ISLNK(mode) else 'special file'
    return files, others


def public_key_path(private_key_path: Path) -> Path:
    return private_key_path.with_name(private_key_path.name + '.pub')


def load_or_create_signing_key(path: Path, recordings: Path | None = None,
                               modes: FileModes = PRIVATE) -> tuple[Ed25519PrivateKey, bool]:
    """The Ed25519 key in ``path`` (PEM, PKCS8), created (mode 0600) if absent.

    Returns ``(key, created)``. Refuses a path inside ``recordings``: whoever can alter
    the recordings must not be able to re-sign them.
    """
    path = Path(path).expanduser().resolve()
    if recordings is not None and path.is_relative_to(Path(recordings).resolve()):
        raise IntegrityError(f'signing key {path} is inside the recordings {recordings}; keep it outside')
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as error:
            raise IntegrityError(f'cannot read signing key {path}: {error}') from error
        if not isinstance(key, Ed25519PrivateKey):
            raise IntegrityError(f'signing key {path} is not an Ed25519 key')
        modes.file(path)
        return key, False
    key = Ed25519PrivateKey.generate()
    try:
        if not path.parent.exists():
            modes.folder(path.parent)
        modes.write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()), exclusive=True)
        public = public_key_path(path)
        public.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        public.chmod(0o644)  # the public half is for whoever verifies
    except OSError as error:
        raise IntegrityError(f'cannot create signing key {path}: {error}') from error
    return key, True


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key PEM, or the public half of a private key PEM."""
    try:
        data = Path(path).read_bytes()
        key = (serialization.load_pem_private_key(data, password=None).public_key()
               if b'PRIVATE KEY' in data else serialization.load_pem_public_key(data))
    except (OSError, ValueError) as error:
        raise IntegrityError(f'cannot read key {path}: {error}') from error
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError(f'key {path} is not an Ed25519 key')
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_manifest(folder: Path, key: Ed25519PrivateKey, record: IncidentRecord, bag: dict[str, Any], *,
                   recovered: bool = False, cut: str | None = None, modes: FileModes = PRIVATE) -> Path:
    """Hash every file of ``folder``, write ``manifest.json`` binding ``record`` and ``bag``
    to the folder name, and its signature."""
    folder = Path(folder)
    files, others = folder_entries(folder)
    if others:
        raise IntegrityError(f'{folder}: will not sign links or special files: {sorted(others)}')
    listed = {name: {'sha256': sha256_file(path), 'size': path.stat().st_size}
              for name, path in files.items() if name not in UNSIGNED_FILES}
    manifest = json.dumps({'schema': MANIFEST_SCHEMA, 'incident': folder.name, 'record': asdict(record),
                           'bag': bag, 'recovered': recovered, 'cut': cut, 'files': listed,
                           'key': fingerprint(key.public_key())}, sort_keys=True, indent=1).encode()
    modes.write(folder / MANIFEST_FILE, manifest)
    modes.write(folder / SIGNATURE_FILE, key.sign(manifest))
    return folder / MANIFEST_FILE


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest as signed (not verified here)."""
    try:
        return json.loads(read_regular(Path(folder) / MANIFEST_FILE))
    except (OSError, ValueError, FileModeError) as error:
        raise IntegrityError(f'{folder}: no readable manifest: {error}') from error


def is_sealed(folder: Path) -> bool:
    return (Path(folder) / MANIFEST_FILE).is_file() and (Path(folder) / SIGNATURE_FILE).is_file()


def mark_evidence(folder: Path, key: Ed25519PrivateKey, who: str, why: str, when: datetime) -> Path:
    """Keep ``folder`` beyond retention and quota; the signed mark says who, why and when."""
    folder = Path(folder)
    if not is_sealed(folder):
        raise FileNotFoundError(f'{folder} is not a sealed incident folder')
    modes = FileModes.like(folder)
    mark = json.dumps({'schema': EVIDENCE_SCHEMA, 'incident': folder.name, 'who': who, 'why': why,
                       'when': when.isoformat(), 'key': fingerprint(key.public_key())}, sort_keys=True).encode()
    modes.write(folder / EVIDENCE_SIGNATURE_FILE, key.sign(mark))
    return modes.write(folder / EVIDENCE_FILE, mark)


def release_evidence(folder: Path) -> bool:
    """Remove the evidence mark; False if there was none."""
    mark = Path(folder) / EVIDENCE_FILE
    if not mark.is_file():
        return False
    mark.unlink()
    (Path(folder) / EVIDENCE_SIGNATURE_FILE).unlink(missing_ok=True)
    return True


def _signature_ok(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _evidence_findings(folder: Path, key: Ed25519PublicKey, present: dict[str, Path]) -> list[Finding]:
    if EVIDENCE_FILE not in present:
        return ([Finding('evidence', EVIDENCE_SIGNATURE_FILE, 'signature without a mark (mark removed)')]
                if EVIDENCE_SIGNATURE_FILE in present else [])
    mark = present[EVIDENCE_FILE].read_bytes()
    signature = present[EVIDENCE_SIGNATURE_FILE].read_bytes() if EVIDENCE_SIGNATURE_FILE in present else b''
    if not _signature_ok(key, signature, mark):
        return [Finding('evidence', EVIDENCE_FILE, 'mark unsigned, edited, or signed with another key')]
    signed_for = json.loads(mark).get('incident')
    if signed_for != folder.name:
        return [Finding('evidence', EVIDENCE_FILE, f'signed for {signed_for!r}')]
    return []


def _meaning_findings(folder: Path, manifest: dict[str, Any], present: dict[str, Path]) -> list[Finding]:
    """Folder name, incident record and bag against what the manifest signed."""
    if manifest.get('schema') != MANIFEST_SCHEMA:
        return [Finding('old manifest', MANIFEST_FILE, f'schema {manifest.get("schema")!r} does not bind '
                        'the folder name, camera and times')]
    findings = []
    if manifest['incident'] != folder.name:
        findings.append(Finding('renamed', folder.name, f'signed as {manifest["incident"]}'))
    try:
        record = IncidentRecord(**manifest['record'])
    except TypeError as error:
        return [*findings, Finding('bad manifest', MANIFEST_FILE, str(error))]
    if record.folder_name != manifest['incident']:
        findings.append(Finding('name mismatch', manifest['incident'],
                                f'record says {record.folder_name} (camera {record.camera})'))
    findings += [Finding('bag mismatch', METADATA_FILE, problem) for problem in bag_problems(record, manifest['bag'])]
    if METADATA_FILE in present:  # plain at rest: the bag must describe itself as signed
        try:
            actual = describe_bag(present[METADATA_FILE].read_bytes())
        except IntegrityError as error:
            actual = {'unreadable': str(error)}
        if actual != manifest['bag']:
            findings.append(Finding('bag mismatch', METADATA_FILE, f'bag {actual} != signed {manifest["bag"]}'))
    return findings


def verify_incident(folder: Path, key: Ed25519PublicKey) -> list[Finding]:
    """Everything that differs from what was signed; empty means intact."""
    folder = Path(folder)
    try:
        manifest_bytes = read_regular(folder / MANIFEST_FILE)
        signature = read_regular(folder / SIGNATURE_FILE)
    except (OSError, FileModeError) as error:
        return [Finding('no manifest', folder.name, str(error))]
    findings = []
    if not _signature_ok(key, signature, manifest_bytes):
        findings.append(Finding('bad signature', MANIFEST_FILE, 'manifest or signature was changed, '
                                'or signed with another key'))
    try:
        manifest = json.loads(manifest_bytes)
        listed = manifest['files']
    except (ValueError, KeyError, TypeError) as error:
        return [*findings, Finding('bad manifest', MANIFEST_FILE, str(error))]
    present, others = folder_entries(folder)
    findings += [Finding('added', name, kind) for name, kind in sorted(others.items())]
    signed = {name: path for name, path in present.items() if name not in UNSIGNED_FILES}
    for name, entry in sorted(listed.items()):
        path = signed.get(name)
        if path is None:
            findings.append(Finding('removed', name))
        elif (digest := sha256_file(path)) != entry['sha256']:
            findings.append(Finding('altered', name, f'sha256 {digest[:16]}... != signed {entry["sha256"][:16]}...'))
    findings += [Finding('added', name) for name in sorted(set(signed) - set(listed))]
    findings += _meaning_findings(folder, manifest, present)
    findings += _evidence_findings(folder, key, present)
    return findings
