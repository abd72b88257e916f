"""Records camera topics to disk only around incidents: pre-event buffer, live, post-event.

Every camera's messages pass through a bounded in-memory :class:`RingBuffer`; nothing
touches the disk until an incident starts. Then the camera's bag gets its latched
messages, the buffered pre-event seconds and the live stream, until ``post_event_s``
after the incident ended. One bag per camera at a time: if a new incident starts on a
camera whose previous bag is still in its post-event window, that bag is closed early
(the new bag's pre-event seconds cover the same time).

Space is asked for *before* writing (``room``, e.g. :class:`~kaiserslautern_vss.recordings.retention.DiskGuard`):
before a bag opens (its pre-event bytes) and every ``space_check_bytes`` while it grows.
Without room a bag is not started at all (``failed``: no folder, never an empty
incident) or is closed cleanly where it is (``cut``) and sealed with what it holds.

Disk trouble (``OSError``: full disk, permissions) never raises out of
:meth:`IncidentRecorder.on_message`: the bag is closed if it still can be, else left for
crash recovery (or removed if nothing readable reached the disk); the error is counted
in ``error_count`` and kept in ``last_error``, and buffering goes on. Every failed or cut
bag is also queued as a :class:`RecordingProblem` for :meth:`take_problems` (the node
announces them on /vss/events, in diagnostics and as an alert).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import WriterError

from kaiserslautern_vss.events.incident import IncidentUpdate
from kaiserslautern_vss.events.ring_buffer import BufferedMessage, RingBuffer
from kaiserslautern_vss.recordings.bag_writer import (BagWriterError, IncidentBagWriter, is_latched_by_convention,
                                                      read_unfinished_mcap)
from kaiserslautern_vss.recordings.file_modes import PRIVATE, FileModes
from kaiserslautern_vss.recordings.integrity import IncidentRecord


class RecorderConfigError(ValueError):
    """The recorder was configured or called with something it cannot record."""


@dataclass(frozen=True)
class RecordingProblem:
    """A bag that could not be started (``failed``) or was closed early (``cut``)."""

    camera: str
    incident_id: str
    outcome: str  # 'failed' or 'cut'
    detail: str
    path: Path | None  # the (cut) bag; None when nothing was written

    def __str__(self) -> str:
        return f'{self.camera}: bag {self.outcome}: {self.detail}'


@dataclass
class _OpenBag:
    writer: IncidentBagWriter
    incident_id: str
    close_at_ns: int | None = None  # set when the incident ends
    written_bytes: int = 0
    checked_bytes: int = 0  # written_bytes at the last space check


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
                 on_closed: Callable[[Path, str | None], None] | None = None,
                 room: Callable[[int, int], bool] | None = None, space_check_bytes: int = 256 * 1024,
                 modes: FileModes = PRIVATE) -> None:
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
        # e.g. sealing: runs on every completely written bag, with why it was cut (or None)
        self._on_closed = on_closed
        self._room = room  # (upcoming bytes, bag bytes so far) -> may they be written?
        self._space_check_bytes = space_check_bytes
        self._modes = modes
        self._problems: list[RecordingProblem] = []
        self._buffers: dict[str, RingBuffer] = {}
        self._latched_messages: dict[str, dict[str, BufferedMessage]] = {}
        self._bags: dict[str, _OpenBag] = {}
        self.error_count = 0
        self.last_error: str | None = None

    @property
    def buffered_bytes(self) -> int:
        """Payload bytes held in the pre-event buffers of all cameras."""
        return sum(buffer.nbytes for buffer in self._buffers.values())

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
        no bag could be written. ``incident.recording`` says ``recording``, ``failed`` or
        ``cut`` (already while writing the pre-event seconds), ``recording_problem`` why.
        """
        incident = update.incident
        camera = incident.camera
        bag = self._bags.get(camera)
        if update.phase == 'start':
            if bag is not None:
                self._close(camera)
            bag = self._open(camera, incident.id, incident.rule, incident.started_ns)
            incident.recording = 'recording'
            if bag is None:  # not started, or cut already while writing the pre-event seconds
                problem = self._problems[-1]
                incident.recording, incident.recording_problem = problem.outcome, problem.detail
                incident.bag_path = None if problem.path is None else str(problem.path)
                return problem.path
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
        record = IncidentRecord(incident_id, camera, rule, started_ns)
        path = self.root / record.folder_name
        topics = {m.topic: self.topics[m.topic] for m in [*latched, *pre_event]}
        upcoming = sum(len(m.payload) for m in [*latched, *pre_event]) + self._space_check_bytes
        if self._room is not None and not self._room(upcoming, 0):
            self._problem(camera, incident_id, 'failed', 'no disk space could be made for the bag', None)
            return None
        try:
            self._modes.folder(self.root)
            writer = IncidentBagWriter(path, topics, latched=self.latched,
                                       flush_interval_s=self._flush_interval_s, modes=self._modes)
            record.write(path, self._modes)
        except (OSError, WriterError, BagWriterError) as error:
            self._report(camera, 'open', error)
            shutil.rmtree(path, ignore_errors=True)  # never leave an empty incident behind
            self._problem(camera, incident_id, 'failed', self.last_error, None)
            return None
        bag = self._bags[camera] = _OpenBag(writer, incident_id)
        first_stamp = min((m.stamp_ns for m in pre_event), default=started_ns)
        for message in [*(BufferedMessage(m.topic, first_stamp, m.payload) for m in latched), *pre_event]:
            if not self._write(camera, bag, message):
                return None
        # The pre-event seconds exist only in RAM until now: on disk at once.
        return bag if self._guard(camera, writer.flush) else None

    def _write(self, camera: str, bag: _OpenBag, message: BufferedMessage) -> bool:
        if (self._room is not None and bag.written_bytes - bag.checked_bytes >= self._space_check_bytes):
            bag.checked_bytes = bag.written_bytes
            if not self._room(self._space_check_bytes, bag.written_bytes):
                self._close(camera, cut='disk space ran out and no incident could be deleted for it')
                return False

        def write() -> None:
            if message.topic not in bag.writer.topics:
                bag.writer.add_topic(message.topic, self.topics[message.topic])
            bag.writer.write(message.topic, message.stamp_ns, message.payload)
        if self._guard(camera, write):
            bag.written_bytes += len(message.payload)
            return True
        return False

    def _guard(self, camera: str, action: Callable[[], None]) -> bool:
        """Run a disk action for ``camera``'s bag; on OSError end that bag and report."""
        try:
            action()
        except OSError as error:
            self._report(camera, 'write', error)
            self._close(camera, cut=f'disk error: {error}')
            return False
        return True

    def take_problems(self) -> list[RecordingProblem]:
        """Failed and cut bags since the last call, oldest first."""
        problems, self._problems = self._problems, []
        return problems

    def _close(self, camera: str, cut: str | None = None) -> None:
        """Finish and hand on ``camera``'s bag; a bag that cannot be finished is left for
        crash recovery, or removed when nothing readable reached the disk."""
        bag = self._bags.pop(camera)
        path = bag.writer.path
        try:
            bag.writer.close()
        except OSError as error:
            self._report(camera, 'close', error)
            bag.writer.abort()
            if not self._readable(bag.writer.mcap_path):
                shutil.rmtree(path, ignore_errors=True)
                self._problem(camera, bag.incident_id, 'failed', self.last_error, None)
                return
            cut = cut or f'cannot close: {error}'
            self._problem(camera, bag.incident_id, 'cut', f'{cut}; left for recovery', path)
            return
        if cut is not None:
            self._problem(camera, bag.incident_id, 'cut', cut, path)
        if self._on_closed is not None:
            self._on_closed(path, cut)

    @staticmethod
    def _readable(mcap_path: Path) -> bool:
        try:
            with open(mcap_path, 'rb') as stream:
                return next(read_unfinished_mcap(stream), None) is not None
        except OSError:
            return False

    def _problem(self, camera: str, incident_id: str, outcome: str, detail: str, path: Path | None) -> None:
        self._problems.append(RecordingProblem(camera, incident_id, outcome, detail, path))

    def _report(self, camera: str, action: str, error: Exception) -> None:
        self.error_count += 1
        self.last_error = f'camera {camera!r}: cannot {action} incident bag: {error}'
