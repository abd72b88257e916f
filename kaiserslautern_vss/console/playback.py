"""An incident bag made ready for the browser player: JPEG frames, boxes, skeletons and cues,
trigger time.

Encrypted bags are decrypted into memory only (``decrypt_file``); nothing plain is
written. Bags still being written (open incidents) are read up to their last flushed
chunk (``read_unfinished_mcap``). A few opened recordings stay cached (by content hash)
so stepping through frames costs nothing more than sending the JPEG.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaiserslautern_vss.console.behaviour_overlay import decode_cues, decode_skeletons
from kaiserslautern_vss.console.live import short_id
from kaiserslautern_vss.console.messages import Box, MessageError, decode_detections, decode_event, jpeg_from_cdr
from kaiserslautern_vss.recordings.bag_writer import read_unfinished_mcap
from kaiserslautern_vss.recordings.encryption import ENCRYPTED_SUFFIX, EncryptionError, decrypt_file
from kaiserslautern_vss.recordings.file_modes import FileModeError, read_regular
from kaiserslautern_vss.recordings.integrity import IntegrityError, incident_files
from kaiserslautern_vss.ros.topics import EVENTS


class PlaybackError(RuntimeError):
    """An incident that cannot be played (no bag, encrypted without key, undecryptable)."""


@dataclass(frozen=True)
class PlaybackFrame:
    stamp_ns: int
    jpeg: bytes
    boxes: tuple[Box, ...]
    skeletons: tuple[dict[str, Any], ...] = ()
    cues: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Recording:
    name: str
    frames: tuple[PlaybackFrame, ...]
    events: tuple[dict[str, Any], ...]
    encrypted: bool

    @property
    def trigger_ns(self) -> int | None:
        """When the incident started (its first event), else None."""
        own = [e for e in self.events if short_id(e['id']) == short_id(self.name)]
        return min((e['started_ns'] for e in own if 'started_ns' in e), default=None)

    def timeline(self) -> dict[str, Any]:
        """What the player needs besides the JPEGs: frame times (s from the first), boxes,
        skeletons and cues, trigger, and the events (with the cues that made them fire)."""
        first = self.frames[0].stamp_ns if self.frames else 0
        trigger = self.trigger_ns
        return {'name': self.name, 'encrypted': self.encrypted,
                'frames': [{'t': round((f.stamp_ns - first) / 1e9, 3), 'boxes': [b.to_dict() for b in f.boxes],
                            'skeletons': list(f.skeletons), 'cues': list(f.cues)} for f in self.frames],
                'trigger_s': None if trigger is None else round((trigger - first) / 1e9, 3),
                'events': [{'phase': e.get('phase'), 'rule': e.get('rule'), 'state': e.get('state'),
                            'cues': e.get('cues', []),
                            't': round((e.get('updated_ns', first) - first) / 1e9, 3)} for e in self.events]}


def bag_bytes(folder: Path, encryption_key: bytes | None) -> tuple[bytes, bool]:
    """``(plain bag bytes, encrypted)`` of an incident, read once; refuses a linked folder and
    one holding links or special files (as vss-verify and vss-export do)."""
    try:
        files = incident_files(folder)
        plain = sorted(name for name in files if name.endswith('.mcap'))
        if plain:
            return read_regular(files[plain[0]]), False
        encrypted = sorted(name for name in files if name.endswith(f'.mcap{ENCRYPTED_SUFFIX}'))
    except (IntegrityError, FileModeError, OSError) as error:
        raise PlaybackError(f'{folder.name}: Vorfallordner nicht lesbar oder unzulässig verändert') from error
    if not encrypted:
        raise PlaybackError(f'{folder.name}: keine Aufzeichnung (MCAP) im Vorfallordner')
    if encryption_key is None:
        raise PlaybackError(f'{folder.name} ist verschlüsselt und der Leitstelle ist kein Schlüssel konfiguriert')
    try:
        return decrypt_file(files[encrypted[0]], encryption_key, encrypted[0][:-len(ENCRYPTED_SUFFIX)]), True
    except (EncryptionError, FileModeError, OSError) as error:
        raise PlaybackError(f'{folder.name}: Entschlüsselung fehlgeschlagen (falscher Schlüssel oder verändert)') \
            from error


def recording_from_bag(name: str, data: bytes, encrypted: bool) -> Recording:
    """Every anonymised frame in the bag ``data`` with the detections, skeletons and cues of the same instant."""
    images: list[tuple[int, bytes]] = []
    boxes: dict[int, tuple[Box, ...]] = {}
    behaviour: dict[str, dict[int, tuple[dict[str, Any], ...]]] = {'skeletons': {}, 'cues': {}}
    events: list[dict[str, Any]] = []
    for topic, _, cdr in read_unfinished_mcap(io.BytesIO(data)):
        try:
            if topic.endswith('/image_anonymized/compressed'):
                images.append(jpeg_from_cdr(cdr))
            elif topic.endswith('/detections'):
                stamp, found = decode_detections(cdr)
                boxes[stamp] = tuple(found)
            elif topic.endswith(('/skeletons', '/behaviour')):
                key, decode = ('skeletons', decode_skeletons) if topic.endswith('/skeletons') else ('cues', decode_cues)
                stamp, found = decode(cdr)
                behaviour[key][stamp] = tuple(found)
            elif topic == EVENTS:
                events.append(decode_event(cdr))
        except MessageError:
            continue  # one bad message must not hide the rest of the recording
    images.sort(key=lambda image: image[0])
    frames = tuple(PlaybackFrame(stamp, jpeg, boxes.get(stamp, ()), behaviour['skeletons'].get(stamp, ()),
                                 behaviour['cues'].get(stamp, ())) for stamp, jpeg in images)
    return Recording(name, frames, tuple(events), encrypted)


class RecordingCache:
    """The last few opened recordings for viewing, keyed by the SHA-256 of the bag bytes they
    were decoded from: every opening reads the bag, so a swapped (or restored) bag is never
    shown from an older decode, and frames are served from exactly what was opened.
    Exports never use it (they decode the bytes they verified)."""

    def __init__(self, encryption_key: bytes | None, size: int = 2) -> None:
        self._key = encryption_key
        self._size = size
        self._items: OrderedDict[str, Recording] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, folder: Path) -> tuple[str, Recording]:
        """``(content digest, recording)`` of the incident's bag as it is now."""
        data, encrypted = bag_bytes(folder, self._key)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            cached = self._items.get(digest)
            if cached is not None and cached.name == folder.name:
                self._items.move_to_end(digest)
                return digest, cached
        recording = recording_from_bag(folder.name, data, encrypted)
        with self._lock:
            self._items[digest] = recording
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return digest, recording

    def get(self, digest: str) -> Recording | None:
        """The recording opened with this digest, if still cached."""
        with self._lock:
            return self._items.get(digest)
