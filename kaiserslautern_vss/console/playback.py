"""An incident bag made ready for the browser player: JPEG frames, boxes, trigger time.

Encrypted bags are decrypted into memory only (``decrypt_file``); nothing plain is
written. Bags still being written (open incidents) are read up to their last flushed
chunk (``read_unfinished_mcap``). A few recordings stay cached so stepping through
frames costs nothing more than sending the JPEG.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaiserslautern_vss.console.live import short_id
from kaiserslautern_vss.console.messages import Box, MessageError, decode_detections, decode_event, jpeg_from_cdr
from kaiserslautern_vss.recordings.bag_writer import read_unfinished_mcap
from kaiserslautern_vss.recordings.encryption import ENCRYPTED_SUFFIX, EncryptionError, decrypt_file
from kaiserslautern_vss.ros.topics import EVENTS


class PlaybackError(RuntimeError):
    """An incident that cannot be played (no bag, encrypted without key, undecryptable)."""


@dataclass(frozen=True)
class PlaybackFrame:
    stamp_ns: int
    jpeg: bytes
    boxes: tuple[Box, ...]


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
        """What the player needs besides the JPEGs: frame times (s from the first), boxes, trigger."""
        first = self.frames[0].stamp_ns if self.frames else 0
        trigger = self.trigger_ns
        return {'name': self.name, 'encrypted': self.encrypted,
                'frames': [{'t': round((f.stamp_ns - first) / 1e9, 3), 'boxes': [b.to_dict() for b in f.boxes]}
                           for f in self.frames],
                'trigger_s': None if trigger is None else round((trigger - first) / 1e9, 3),
                'events': [{'phase': e.get('phase'), 'rule': e.get('rule'), 'state': e.get('state'),
                            't': round((e.get('updated_ns', first) - first) / 1e9, 3)} for e in self.events]}


def _bag_bytes(folder: Path, encryption_key: bytes | None) -> tuple[bytes, bool]:
    plain = sorted(folder.glob('*.mcap'))
    if plain:
        return plain[0].read_bytes(), False
    encrypted = sorted(folder.glob(f'*.mcap{ENCRYPTED_SUFFIX}'))
    if not encrypted:
        raise PlaybackError(f'{folder.name}: keine Aufzeichnung (MCAP) im Vorfallordner')
    if encryption_key is None:
        raise PlaybackError(f'{folder.name} ist verschlüsselt und der Leitstelle ist kein Schlüssel konfiguriert')
    try:
        return decrypt_file(encrypted[0], encryption_key, encrypted[0].name[:-len(ENCRYPTED_SUFFIX)]), True
    except EncryptionError as error:
        raise PlaybackError(f'{folder.name}: Entschlüsselung fehlgeschlagen (falscher Schlüssel oder verändert)') \
            from error


def load_recording(folder: Path, encryption_key: bytes | None) -> Recording:
    """Every anonymised frame of the incident with the detections of the same instant."""
    data, encrypted = _bag_bytes(Path(folder), encryption_key)
    images: list[tuple[int, bytes]] = []
    boxes: dict[int, tuple[Box, ...]] = {}
    events: list[dict[str, Any]] = []
    for topic, _, cdr in read_unfinished_mcap(io.BytesIO(data)):
        try:
            if topic.endswith('/image_anonymized/compressed'):
                images.append(jpeg_from_cdr(cdr))
            elif topic.endswith('/detections'):
                stamp, found = decode_detections(cdr)
                boxes[stamp] = tuple(found)
            elif topic == EVENTS:
                events.append(decode_event(cdr))
        except MessageError:
            continue  # one bad message must not hide the rest of the recording
    images.sort(key=lambda image: image[0])
    frames = tuple(PlaybackFrame(stamp, jpeg, boxes.get(stamp, ())) for stamp, jpeg in images)
    return Recording(Path(folder).name, frames, tuple(events), encrypted)


class RecordingCache:
    """The last few loaded recordings, reloaded when the bag file changed (still recording)."""

    def __init__(self, encryption_key: bytes | None, size: int = 2) -> None:
        self._key = encryption_key
        self._size = size
        self._items: OrderedDict[Path, tuple[tuple[int, int], Recording]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: Path) -> Recording:
        bags = sorted(folder.glob('*.mcap*'))
        stat = bags[0].stat() if bags else None
        version = (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)
        with self._lock:
            cached = self._items.get(folder)
            if cached is not None and cached[0] == version:
                self._items.move_to_end(folder)
                return cached[1]
        recording = load_recording(folder, self._key)
        with self._lock:
            self._items[folder] = (version, recording)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return recording
