"""Records camera topics to disk only around incidents: pre-event buffer, live, post-event.

Every camera's messages pass through a bounded in-memory :class:`RingBuffer`; nothing
touches the disk until an incident starts. Then the camera's bag gets its latched
messages, the buffered pre-event seconds and the live stream, until ``post_event_s``
after the incident ended. One bag per camera at a time: if a new incident starts on a
camera whose previous bag is still in its post-event window, that bag is closed early
(the new bag's pre-event seconds cover the same time).

Disk trouble (``OSError``: full disk, permissions) never raises out of
:meth:`IncidentRecorder.on_message`: the affected bag is abandoned, the error is counted
in ``error_count`` and kept in ``last_error``, and buffering goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rosbags.rosbag2 import WriterError

from kaiserslautern_vss.events.bag_writer import (BagWriterError, IncidentBagWriter,
                                                  bag_directory_name, is_latched_by_convention)
from kaiserslautern_vss.events.incident import IncidentUpdate
from kaiserslautern_vss.events.ring_buffer import BufferedMessage, RingBuffer


class RecorderConfigError(ValueError):
    """The recorder was configured or called with something it cannot record."""


@dataclass
class _OpenBag:
    writer: IncidentBagWriter
    incident_id: str
    close_at_ns: int | None = None  # set when the incident ends


class IncidentRecorder:
    """Per-camera pre-event buffers and incident bags under ``root``.

    ``topics`` maps every recordable topic to its ROS type; ``latched`` (default: the
    ``camera_info``/``events`` naming convention) are kept aside per camera, newest only,
    and written first into every new bag, stamped with the bag's first instant as
    ``ros2 bag record`` does for latched samples it receives at start.
    """

    def __init__(self, root: Path, pre_event_s: float, post_event_s: float,
                 buffer_max_bytes: int, topics: Mapping[str, str], *,
                 latched: Collection[str] | None = None, flush_interval_s: float = 1.0,
                 on_closed: Callable[[Path], None] | None = None) -> None:
        if not pre_event_s >= 0 or not post_event_s >= 0:
            raise RecorderConfigError(f'pre_event_s and post_event_s must be >= 0, '
                                      f'got {pre_event_s!r} and {post_event_s!r}')
        if not topics:
            raise RecorderConfigError('no topics to record')
        self.root = Path(root)
        self.topics = dict(topics)
        self.latched = (frozenset(latched) if latched is not None
                        else frozenset(t for t in self.topics if is_latched_by_convention(t)))
        self._pre_event_ns = int(pre_event_s * 1e9)
        self._post_event_ns = int(post_event_s * 1e9)
        # A little more than the pre-event window so the oldest frame needed is never
        # evicted just before an incident starts.
        self._buffer_seconds = max(pre_event_s, 0.0) + 1.0
        self._buffer_max_bytes = buffer_max_bytes
        self._flush_interval_s = flush_interval_s
        self._on_closed = on_closed  # e.g. sealing: runs on every completely written bag
        self._buffers: dict[str, RingBuffer] = {}
        self._latched_messages: dict[str, dict[str, BufferedMessage]] = {}
        self._bags: dict[str, _OpenBag] = {}
        self.error_count = 0
        self.last_error: str | None = None

    @property
    def open_bags(self) -> dict[str, Path]:
        """Camera -> directory of its bag being written."""
        return {camera: bag.writer.path for camera, bag in self._bags.items()}

    def on_message(self, camera: str, topic: str, stamp_ns: int, payload: bytes) -> None:
        if topic not in self.topics:
            raise RecorderConfigError(f'camera {camera!r}: topic {topic!r} is not configured for recording')
        message = BufferedMessage(topic, stamp_ns, bytes(payload))
        if topic in self.latched:
            self._latched_messages.setdefault(camera, {})[topic] = message
        else:
            self._buffer(camera).push(message)
        bag = self._bags.get(camera)
        if bag is None:
            return
        if bag.close_at_ns is not None and stamp_ns > bag.close_at_ns:
            self._close(camera)
            return
        self._write(camera, bag, message)

    def on_incident(self, update: IncidentUpdate, now_ns: int) -> Path | None:
        """Open (start), keep (update) or schedule closing (end) the incident's bag.

        Returns the bag directory, also set as ``update.incident.bag_path``; None when
        no bag could be written (see ``last_error``).
        """
        incident = update.incident
        camera = incident.camera
        bag = self._bags.get(camera)
        if update.phase == 'start':
            if bag is not None:
                self._close(camera)
            bag = self._open(camera, incident.id, incident.rule, incident.started_ns)
        elif bag is not None and bag.incident_id != incident.id:
            bag = None  # an earlier incident's bag was already replaced
        if bag is None:
            return None
        if update.phase == 'end':
            bag.close_at_ns = (incident.ended_ns or now_ns) + self._post_event_ns
        incident.bag_path = str(bag.writer.path)
        self.poll(now_ns)
        return bag.writer.path

    def poll(self, now_ns: int) -> None:
        """Close bags whose post-event window is over (also for cameras gone silent)."""
        for camera, bag in list(self._bags.items()):
            if bag.close_at_ns is not None and now_ns >= bag.close_at_ns:
                self._close(camera)
            else:
                self._guard(camera, bag.writer.flush)

    def close_all(self) -> None:
        for camera in list(self._bags):
            self._close(camera)

    def _buffer(self, camera: str) -> RingBuffer:
        buffer = self._buffers.get(camera)
        if buffer is None:
            buffer = self._buffers[camera] = RingBuffer(self._buffer_seconds, self._buffer_max_bytes)
        return buffer

    def _open(self, camera: str, incident_id: str, rule: str, started_ns: int) -> _OpenBag | None:
        first_ns = started_ns - self._pre_event_ns
        pre_event = self._buffer(camera).since(first_ns)
        latched = list(self._latched_messages.get(camera, {}).values())
        start_time = datetime.fromtimestamp(started_ns / 1e9, tz=timezone.utc)
        path = self.root / bag_directory_name(start_time, camera, rule, incident_id[:8])
        topics = {m.topic: self.topics[m.topic] for m in [*latched, *pre_event]}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            writer = IncidentBagWriter(path, topics, latched=self.latched,
                                       flush_interval_s=self._flush_interval_s)
        except (OSError, WriterError, BagWriterError) as error:
            self._report(camera, 'open', error)
            return None
        bag = self._bags[camera] = _OpenBag(writer, incident_id)
        first_stamp = min((m.stamp_ns for m in pre_event), default=started_ns)
        for message in latched:
            if not self._write(camera, bag, BufferedMessage(message.topic, first_stamp, message.payload)):
                return None
        for message in pre_event:
            if not self._write(camera, bag, message):
                return None
        return bag

    def _write(self, camera: str, bag: _OpenBag, message: BufferedMessage) -> bool:
        def write() -> None:
            if message.topic not in bag.writer.topics:
                bag.writer.add_topic(message.topic, self.topics[message.topic])
            bag.writer.write(message.topic, message.stamp_ns, message.payload)
        return self._guard(camera, write)

    def _guard(self, camera: str, action: Callable[[], None]) -> bool:
        """Run a disk action for ``camera``'s bag; on OSError abandon that bag, report."""
        try:
            action()
        except OSError as error:
            self._report(camera, 'write', error)
            bag = self._bags.pop(camera, None)
            if bag is not None:
                bag.writer.abort()
            return False
        return True

    def _close(self, camera: str) -> None:
        bag = self._bags.pop(camera)
        try:
            bag.writer.close()
            if self._on_closed is not None:
                self._on_closed(bag.writer.path)
        except OSError as error:
            self._report(camera, 'close', error)
            bag.writer.abort()

    def _report(self, camera: str, action: str, error: Exception) -> None:
        self.error_count += 1
        self.last_error = f'camera {camera!r}: cannot {action} incident bag: {error}'
