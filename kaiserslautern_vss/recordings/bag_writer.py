"""Incident snippets as rosbag2 (MCAP) directories, written incrementally with ``rosbags``.

A snippet is written while the incident is still going on, so a crash must not lose it:
the MCAP chunk being filled is closed and handed to the OS at least every
``flush_interval_s`` of message time (rosbags 0.11 itself closes chunks only at 1 MiB).
After a SIGKILL the ``.mcap`` file has no summary/footer and there is no
``metadata.yaml``: ``rosbags.rosbag2.Reader`` refuses the directory, mcap's
``make_reader`` (seeking) fails on the missing footer and its ``NonSeekingReader``
raises at the truncated end before yielding anything; mcap's record-level
``StreamReader`` does read every closed chunk, i.e. all but the last
``flush_interval_s`` at most: :func:`read_unfinished_mcap` wraps that, and
:func:`rebuild_unfinished_bag` rewrites such a bag as a complete one (summary, footer,
``metadata.yaml``) that every reader accepts.

The bag folder and files get the configured private modes as soon as they exist.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import uuid
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.interfaces import (Connection, Qos, QosDurability, QosHistory, QosLiveliness,
                                QosReliability, QosTime)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.typesys.store import Typestore

from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModes
from kaiserslautern_vss.ros.typestore import vss_typestore

ROSBAG2_VERSION = 9
# Topics whose last publisher sample must be in every snippet (they are published once,
# latched, by the camera driver and the event manager).
LATCHED_TOPIC_NAMES = ('camera_info', 'events')

_UNSPECIFIED_TIME = QosTime(0, 0)  # rmw "default": no deadline/lifespan/lease
_TRANSIENT_LOCAL = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE,
                       QosDurability.TRANSIENT_LOCAL, _UNSPECIFIED_TIME, _UNSPECIFIED_TIME,
                       QosLiveliness.AUTOMATIC, _UNSPECIFIED_TIME, False)


class BagWriterError(RuntimeError):
    """An incident bag cannot be written as asked (unknown topic or type, closed bag)."""


def is_latched_by_convention(topic: str) -> bool:
    """True for ``.../camera_info`` and ``.../events`` topics."""
    return topic.rstrip('/').rsplit('/', 1)[-1] in LATCHED_TOPIC_NAMES


def bag_directory_name(start_time: datetime, camera: str, rule: str,
                       short_id: str | None = None) -> str:
    """``20261126T153012Z_cam01_zone_intrusion_1a2b3c4d``: sortable, filesystem-safe.

    ``start_time`` must be timezone-aware; it is written in UTC. ``short_id`` (default:
    random) keeps two incidents starting in the same second apart.
    """
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise ValueError(f'bag_directory_name needs a timezone-aware start_time, got {start_time!r}')
    stamp = start_time.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    parts = [stamp, camera, rule, short_id if short_id is not None else uuid.uuid4().hex[:8]]
    return '_'.join(re.sub(r'[^A-Za-z0-9_-]+', '_', part).strip('_') or 'x' for part in parts)


class IncidentBagWriter:
    """One rosbag2 directory (MCAP storage) for one incident snippet.

    ``topics`` maps topic name to ROS type (``sensor_msgs/msg/CompressedImage``); payloads
    are already CDR-serialized. ``latched`` (default: :func:`is_latched_by_convention`)
    get a transient-local offered QoS so ``ros2 bag play`` re-latches them.
    """

    def __init__(self, path: Path, topics: Mapping[str, str], *,
                 latched: Collection[str] | None = None, flush_interval_s: float = 1.0,
                 typestore: Typestore | None = None, modes: FileModes = PRIVATE) -> None:
        if not flush_interval_s > 0:
            raise BagWriterError(f'incident bag {path}: flush_interval_s must be > 0, '
                                 f'got {flush_interval_s!r}')
        self._typestore = typestore or vss_typestore()
        unknown = {topic: msgtype for topic, msgtype in topics.items()
                   if msgtype not in self._typestore.types}
        if unknown:
            raise BagWriterError(f'incident bag {path}: unknown message types {unknown}')
        self._latched = frozenset(latched) if latched is not None else None
        self.path = Path(path)
        self._flush_interval_ns = int(flush_interval_s * 1e9)
        self._writer = Writer(self.path, version=ROSBAG2_VERSION,
                              storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._modes = modes
        modes.folder(self.path)
        modes.file(self.mcap_path)
        self._connections: dict[str, Connection] = {}
        self._chunk_first_stamp_ns: int | None = None
        self._closed = False
        self.message_count = 0
        for topic, msgtype in topics.items():
            self.add_topic(topic, msgtype)

    @property
    def mcap_path(self) -> Path:
        return self.path / f'{self.path.name}.mcap'

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._connections)

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare one more topic (MCAP allows channels to appear mid-file)."""
        if self._closed:
            raise BagWriterError(f'incident bag {self.path} is closed')
        if msgtype not in self._typestore.types:
            raise BagWriterError(f'incident bag {self.path}: unknown message type {msgtype!r} '
                                 f'for topic {topic!r}')
        if topic in self._connections:
            raise BagWriterError(f'incident bag {self.path}: topic {topic!r} declared twice')
        latched = (topic in self._latched if self._latched is not None
                   else is_latched_by_convention(topic))
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self._typestore,
            offered_qos_profiles=[_TRANSIENT_LOCAL] if latched else [])

    def write(self, topic: str, stamp_ns: int, payload_cdr: bytes) -> None:
        if self._closed:
            raise BagWriterError(f'incident bag {self.path} is closed')
        connection = self._connections.get(topic)
        if connection is None:
            raise BagWriterError(f'incident bag {self.path}: topic {topic!r} was not declared')
        self._writer.write(connection, stamp_ns, payload_cdr)
        self.message_count += 1
        if self._chunk_first_stamp_ns is None:
            self._chunk_first_stamp_ns = stamp_ns
        elif abs(stamp_ns - self._chunk_first_stamp_ns) >= self._flush_interval_ns:
            self.flush()

    def flush(self) -> None:
        """Close the chunk being filled and hand it to the OS (survives a process crash).

        rosbags has no public chunking option, so this uses its MCAP storage's own
        ``close_chunk`` (rosbags is pinned, and a test reads the result back).
        """
        storage = self._writer.storage
        if self._closed or not isinstance(storage, McapWriter):
            return
        if storage.chunk.msgs:
            storage.close_chunk()
        storage.bio.flush()
        self._chunk_first_stamp_ns = None

    def close(self) -> None:
        """Write the MCAP summary and ``metadata.yaml``; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._modes.tree(self.path)

    def abort(self) -> None:
        """Give up the bag (after a disk error): no summary, no metadata.yaml; never raises.

        What reached the disk stays readable with :func:`read_unfinished_mcap`.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.abort()
        except OSError:
            pass  # the disk already failed; nothing more to save

    def __enter__(self) -> IncidentBagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _unfinished_records(stream: BinaryIO) -> Iterator[tuple[str, str, int, bytes]]:
    """``(topic, type, log_time_ns, data)`` of every complete message, stopping quietly at
    the first incomplete or corrupt record (the crash point)."""
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    try:
        for record in StreamReader(stream, skip_magic=False, emit_chunks=False).records:
            if isinstance(record, Schema):
                schemas[record.id] = record.name
            elif isinstance(record, Channel):
                channels[record.id] = (record.topic, schemas.get(record.schema_id, ''))
            elif isinstance(record, Message):
                topic, msgtype = channels[record.channel_id]
                yield topic, msgtype, record.log_time, record.data
    except (McapError, EOFError, ValueError, struct.error):
        return


def read_unfinished_mcap(stream: BinaryIO) -> Iterator[tuple[str, int, bytes]]:
    """``(topic, log_time_ns, data)`` of every complete message in a possibly truncated MCAP.

    For bags whose writer died: reads records in order with mcap's non-seeking reader
    and stops quietly at the first incomplete or corrupt record (the crash point).
    """
    for topic, _, log_time, data in _unfinished_records(stream):
        yield topic, log_time, data


def rebuild_unfinished_bag(folder: Path, modes: FileModes = PRIVATE) -> int:
    """Rewrite the unfinished bag in ``folder`` (no ``metadata.yaml``) as a complete one.

    The new bag is written beside the recordings (``<root>/.rebuild/<name>``, same
    filesystem) and moved in file by file, so a crash during the rebuild leaves a bag
    that the next rebuild reads again. Returns the messages kept (0: nothing readable,
    the folder is left as it was).
    """
    folder = Path(folder)
    mcap_path = folder / f'{folder.name}.mcap'
    if not mcap_path.is_file():
        return 0
    with open(mcap_path, 'rb') as stream:
        messages = list(_unfinished_records(stream))
    if not messages:
        return 0
    work = modes.folder(folder.parent / '.rebuild') / folder.name
    shutil.rmtree(work, ignore_errors=True)
    try:
        types = {topic: msgtype for topic, msgtype, _, _ in messages}  # in order of first appearance
        with IncidentBagWriter(work, types, modes=modes) as writer:
            for topic, _, log_time, data in messages:
                writer.write(topic, log_time, data)
        os.replace(work / mcap_path.name, mcap_path)
        os.replace(work / 'metadata.yaml', folder / 'metadata.yaml')
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return len(messages)
