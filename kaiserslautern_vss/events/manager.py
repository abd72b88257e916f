"""The event side without ROS: detections, behaviour cues, alarms and triggers -> incidents,
their bags (sealed, recovered after a crash, kept within retention), the audit log and alerts.

    on_detections / on_behaviour / alarm / trigger --RuleEngine--> incident updates
        -> IncidentRecorder (pre-event buffer, bag) -> /vss/events JSON (returned), alert

Messages stay serialized (CDR): the pre-event ring buffer and the bag writer never
deserialize images. Message times come in as arguments (the node's clock); wall time, for
retention, evidence marks and disk checks, from ``clock``. Each input returns the JSON texts
the node publishes on /vss/events, in order; they are also recorded into the camera's bag.

At start, bags a crash left unfinished or unsealed are rebuilt and sealed (manifest
``recovered: true``). Disk space is made before writing (recordings.retention.DiskGuard); a
bag that gets none is announced: an ``update`` event with ``recording`` ``failed`` or
``cut``, ``recording_problem`` set and an alert. Evidence marks, deletions and recoveries go
into the keyed audit log.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from kaiserslautern_vss.behaviour.messages import BehaviourMessageError, decode_behaviour
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.alerts import (SENDERS, AlertConfigError, AlertDispatcher, alert_body, alert_settings,
                                              small_snapshot)
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.events.outbox import Outbox
from kaiserslautern_vss.events.recorder import IncidentRecorder, RecordingProblem
from kaiserslautern_vss.events.rule_engine import RuleEngine
from kaiserslautern_vss.events.rule_schema import RuleConfigError, load_rules_file
from kaiserslautern_vss.log_throttle import ReasonThrottle
from kaiserslautern_vss.recordings.audit import AuditError, AuditLog, default_audit_log
from kaiserslautern_vss.recordings.encryption import EncryptionError, load_or_create_key
from kaiserslautern_vss.recordings.file_modes import FileModeError, FileModes
from kaiserslautern_vss.recordings.integrity import (IntegrityError, fingerprint, load_or_create_signing_key,
                                                     mark_evidence, public_key_path)
from kaiserslautern_vss.recordings.retention import DiskGuard, RetentionPolicy, StoredIncident, enforce_retention
from kaiserslautern_vss.recordings.sealing import recover_incidents, seal_incident
from kaiserslautern_vss.ros.topics import EVENTS, RECORDED_PER_CAMERA, camera_topic
from kaiserslautern_vss.ros.typestore import vss_typestore

STRING = 'std_msgs/msg/String'
#: distinct reasons counted for dropped behaviour messages (then 'other'), and their length
MALFORMED_REASONS, MALFORMED_REASON_CHARS = 16, 80
DROP_LOG_PERIOD_S = 10.0
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'


#: characters of an alarm's text kept as the incident's reason
MAX_ALARM_TEXT = 200


class EventManagerError(RuntimeError):
    """The event manager cannot start as configured (rules, keys, file modes, alert channels)."""


class Log(Protocol):
    """Where log lines go (an rclpy logger, a ``logging.Logger``)."""

    def info(self, message: str) -> Any: ...

    def warning(self, message: str) -> Any: ...

    def error(self, message: str) -> Any: ...


class EventManager:
    """Everything the event_manager node does between its subscriptions and its publisher.

    ``settings`` are the node's parameters (:data:`kaiserslautern_vss.parameters.event_manager.PARAMETERS`).
    """

    def __init__(self, settings: Mapping[str, Any], log: Log, clock: Callable[[], datetime]) -> None:
        self.settings, self.log, self.clock = settings, log, clock
        cameras = settings['cameras']
        try:
            rules = load_rules_file(Path(settings['rules_file']))
        except RuleConfigError as error:
            raise EventManagerError(str(error)) from error
        # A camera subset (--cameras) runs with the site's rules file: rules of cameras not
        # started here are skipped, loudly, so a misspelt camera id is still noticed.
        skipped = [rule for rule in rules if not any(rule.applies_to(camera) for camera in cameras)]
        if skipped:
            log.warning('rules for cameras not served here are skipped: ' + ', '.join(
                f'{rule.name} ({", ".join(rule.cameras)})' for rule in skipped))
        self.rules = [rule for rule in rules if rule not in skipped]
        self.engine = RuleEngine(self.rules, end_hold_s=settings['end_hold_s'],
                                 manual_duration_s=settings['alarm_duration_s'])
        topics = {camera_topic(c, name): msgtype for c in cameras for name, msgtype in RECORDED_PER_CAMERA.items()}
        topics[EVENTS] = STRING
        self.record_root = Path(settings['record_root']).resolve()
        self._load_keys()
        self.retention = RetentionPolicy(settings['retention_hours'] * 3600.0,
                                         settings['quota_mb'] * 1024 * 1024,
                                         settings['min_free_mb'] * 1024 * 1024)
        self.disk_guard = DiskGuard(self.record_root, self.retention, in_use=lambda: self.recorder.open_bags.values(),
                                    clock=clock, copy_on_seal=self.encryption_key is not None,
                                    on_deleted=self._deleted)
        self.recorder = IncidentRecorder(
            self.record_root, pre_event_s=settings['pre_event_s'],
            post_event_s=settings['post_event_s'],
            buffer_max_bytes=settings['buffer_max_mb'] * 1024 * 1024, topics=topics,
            on_closed=self._seal, room=self.disk_guard.room_for, modes=self.modes)
        self.alerts = self._make_alerts()
        self.latest_anonymized: dict[str, bytes] = {}  # camera -> serialized CompressedImage
        self.latest_bag: dict[str, Path] = {}
        self.latest_incident: dict[str, Incident] = {}
        self.incidents_started = 0
        self.deleted_incidents = 0
        self.recording_problem: str | None = None  # until a bag is sealed complete again
        self.recovery = {'sealed': 0, 'removed': 0, 'failed': 0}
        self.retention_errors: list[str] = []
        self.audit_error: str | None = None
        self._recorder_errors_seen = 0
        self.pose_cues: dict[str, bool] = {}  # camera -> whether its behaviour stage has the pose model
        self.behaviour_dropped: Counter[str] = Counter()  # malformed behaviour messages by reason
        self._drop_log = ReasonThrottle(DROP_LOG_PERIOD_S)
        self._recover()

    def _load_keys(self) -> None:
        try:
            self.modes = FileModes.for_group(self.settings['file_group'])
            self.modes.folder(self.record_root)
            audit_log = self.settings['audit_log_file'] or default_audit_log(self.record_root)
            self.audit = AuditLog(Path(audit_log).expanduser(), Path(self.settings['audit_key_file']).expanduser(),
                                  modes=self.modes)
            key_path = Path(self.settings['signing_key_file']).expanduser()
            self.signing_key, created = load_or_create_signing_key(key_path, self.record_root, self.modes)
            if created:
                self.log.warning(
                    f'created signing key {key_path} (fingerprint {fingerprint(self.signing_key.public_key())}); '
                    f'give {public_key_path(key_path)} to whoever runs vss-verify, back up the key')
            self.encryption_key = None
            if self.settings['encryption']:
                aes_path = Path(self.settings['encryption_key_file']).expanduser()
                self.encryption_key, created = load_or_create_key(aes_path, self.record_root, self.modes)
                if created:
                    self.log.warning(f'created encryption key {aes_path}: without it no incident '
                                     'can be exported; back it up')
        except (IntegrityError, EncryptionError, FileModeError, OSError) as error:
            raise EventManagerError(str(error)) from error

    def _make_alerts(self) -> AlertDispatcher | None:
        s = self.settings
        try:
            senders = {name: SENDERS[name](channel) for name, channel in alert_settings(s).items()}
        except AlertConfigError as error:
            raise EventManagerError(str(error)) from error
        if not senders:
            return None
        # delivery retries run on the dispatcher's own thread, on wall time
        dispatcher = AlertDispatcher(Outbox(Path(s['outbox_path']).expanduser(), self.modes), senders,
                                     clock=time.time)
        dispatcher.start()
        return dispatcher

    def on_recorded(self, camera_id: str, topic: str, stamp_ns: int, payload: bytes) -> None:
        """A message of a recorded topic other than detections (serialized)."""
        if topic.endswith('/compressed'):
            self.latest_anonymized[camera_id] = payload
        self.recorder.on_message(camera_id, topic, stamp_ns, payload)

    def on_detections(self, camera_id: str, topic: str, stamp_ns: int, payload: bytes, detections: Detections,
                      now_ns: int) -> list[str]:
        """One Detection2DArray (serialized, and as decoded detections): recorded, then ruled on."""
        self.recorder.on_message(camera_id, topic, stamp_ns, payload)
        return self._handle(self.engine.update(camera_id, stamp_ns, detections), now_ns)

    def on_behaviour(self, camera_id: str, topic: str, payload: bytes, now_ns: int) -> list[str]:
        """One ``/vss/<cam>/behaviour`` message (serialized std_msgs/String, ``vss.behaviour/1``):
        recorded, then its cues ruled on. Anyone on the host may publish there, so a malformed
        message (or one naming another camera) is counted per reason, logged (throttled) and dropped."""
        try:
            text = vss_typestore().deserialize_cdr(payload, STRING).data
        except Exception:  # noqa: BLE001 - rosbags raises assorted errors on malformed CDR
            return self._drop_behaviour(camera_id, 'not a std_msgs/String', f'{len(payload)} bytes')
        try:
            message = decode_behaviour(text)
        except BehaviourMessageError as error:
            return self._drop_behaviour(camera_id, str(error)[:MALFORMED_REASON_CHARS], str(error))
        if message.camera_id != camera_id:
            return self._drop_behaviour(camera_id, 'camera does not match the topic', message.camera_id[:40])
        self.pose_cues[camera_id] = message.pose_cues
        self.recorder.on_message(camera_id, topic, message.stamp_ns, payload)
        return self._handle(self.engine.behaviour(camera_id, message.stamp_ns, message.cues), now_ns)

    def _drop_behaviour(self, camera_id: str, reason: str, detail: str) -> list[str]:
        if reason not in self.behaviour_dropped and len(self.behaviour_dropped) >= MALFORMED_REASONS:
            reason = 'other'  # a flood of ever new texts cannot grow the counters
        self.behaviour_dropped[reason] += 1
        held_back = self._drop_log.admit((camera_id, reason))
        if held_back is not None:
            self.log.warning(f'{camera_id}: behaviour message dropped: {reason} ({detail})'
                             + (f'; {held_back} more like it since the last report' if held_back else ''))
        return []

    def trigger(self, camera_id: str, now_ns: int) -> tuple[list[str], str]:
        """The operator's trigger: the events, and what to answer (the incident, or that it merged)."""
        updates = self.engine.trigger(camera_id, now_ns, source='operator', reason='manual trigger')
        answer = f'incident {updates[0].incident.id} on {camera_id}' if updates else 'merged'
        return self._handle(updates, now_ns), answer

    def alarm(self, camera_id: str, now_ns: int, text: str) -> list[str]:
        """An alarm input; ``text`` is the reason (for a camera event, its type)."""
        reason = text.strip()[:MAX_ALARM_TEXT] or 'alarm input'  # anyone on the bus may send the text
        return self._handle(self.engine.alarm(camera_id, now_ns, reason), now_ns)

    def mark_evidence(self, camera_id: str) -> tuple[bool, str]:
        """Mark the camera's latest incident as evidence: success and the folder, or why not."""
        folder = self.latest_bag.get(camera_id)
        try:
            if folder is None:
                raise FileNotFoundError(f'no incident recorded on {camera_id} since start')
            mark_evidence(folder, self.signing_key, who='operator (mark_evidence service)',
                          why='marked from the control room', when=self.clock())
            self.audit.append('operator (mark_evidence service)', 'evidence mark', folder.name,
                              'marked from the control room')
        except (OSError, AuditError) as error:
            return False, str(error)
        self.log.info(f'incident {folder.name} marked as evidence')
        return True, str(folder)

    def tick(self, now_ns: int) -> list[str]:
        """End expired incidents, close bags whose post-event time is over, announce bag problems."""
        events = self._handle(self.engine.tick(now_ns), now_ns)
        self.recorder.poll(now_ns)
        for problem in self.recorder.take_problems():
            events += self._announce(problem)
        if self.recorder.error_count > self._recorder_errors_seen:  # e.g. disk full: make room now
            self._recorder_errors_seen = self.recorder.error_count
            self.log.error(f'{self.recorder.last_error}; enforcing retention')
            self.enforce_retention()
        return events

    def enforce_retention(self) -> None:
        deleted, self.retention_errors = enforce_retention(
            self.record_root, self.clock(), self.retention, in_use=self.recorder.open_bags.values())
        for incident in deleted:
            self._deleted(incident)
        self._recover()  # bags a disk error left unsealed, once there is room again

    def close(self) -> None:
        self.recorder.close_all()
        if self.alerts is not None:
            self.alerts.stop()

    def _deleted(self, incident: StoredIncident) -> None:
        self.deleted_incidents += 1
        self.log.info(f'retention: deleted {incident.path.name} ({incident.size_bytes} bytes)')
        self._audit('delete', incident.path.name, 'retention period, quota or free-space floor')

    def _recover(self) -> None:
        for result in recover_incidents(self.record_root, self.signing_key, self.encryption_key,
                                        in_use=self.recorder.open_bags.values(), modes=self.modes):
            self.recovery[result.outcome] += 1
            log = self.log.error if result.outcome == 'failed' else self.log.warning
            log(f'crash recovery: {result.path.name} {result.outcome}: {result.detail}')
            if result.outcome != 'failed':
                self._audit(f'recover ({result.outcome})', result.path.name, result.detail)

    def _seal(self, folder: Path, cut: str | None) -> None:
        """Seal a closed bag; one that cannot be sealed now is left to recovery."""
        try:
            seal_incident(folder, self.signing_key, self.encryption_key, cut=cut, modes=self.modes)
        except (OSError, IntegrityError, EncryptionError) as error:
            self.recording_problem = f'cannot seal {folder.name} (retried later): {error}'
            self.log.error(self.recording_problem)
            return
        if cut is None:
            self.recording_problem = None

    def _announce(self, problem: RecordingProblem) -> list[str]:
        """A failed or cut bag: an update event (with an alert) for the camera's latest incident."""
        self.recording_problem = str(problem)
        self.log.error(f'incident {problem.incident_id} {self.recording_problem}')
        incident = self.latest_incident.get(problem.camera)
        if incident is None or incident.id != problem.incident_id:
            return []  # an earlier incident's bag: its events are over, the log and diagnostics tell
        incident.recording, incident.recording_problem = problem.outcome, problem.detail
        if problem.outcome == 'failed':
            incident.bag_path = None
        return [self._publish(IncidentUpdate('update', incident), alert=True)]

    def _audit(self, action: str, target: str, reason: str) -> None:
        try:
            self.audit.append('event_manager', action, target, reason)
            self.audit_error = None
        except (OSError, AuditError) as error:
            self.audit_error = str(error)
            self.log.error(f'audit log: {error}')

    def _handle(self, updates: list[IncidentUpdate], now_ns: int) -> list[str]:
        events = []
        for update in updates:
            bag = self.recorder.on_incident(update, now_ns)
            if bag is not None:
                update.incident.bag_path = str(bag)
                self.latest_bag[update.incident.camera] = bag
            if update.phase == 'start':
                self.incidents_started += 1
                self.latest_incident[update.incident.camera] = update.incident
            for problem in self.recorder.take_problems():  # a failed start is in this very event
                if problem.incident_id != update.incident.id:
                    events += self._announce(problem)
                else:
                    self.recording_problem = str(problem)
            events.append(self._publish(update, alert=update.phase in ('start', 'end')))
        return events

    def _publish(self, update: IncidentUpdate, alert: bool) -> str:
        """The event's JSON, to publish; recorded into the camera's bag and alerted here."""
        if self.alerts is not None and alert:
            self.alerts.enqueue(alert_body(update.to_dict(), self._snapshot(update.incident.camera)))
        text = update.to_json()
        typestore = vss_typestore()
        self.recorder.on_message(update.incident.camera, EVENTS, update.incident.updated_ns,
                                 bytes(typestore.serialize_cdr(typestore.types[STRING](data=text), STRING)))
        self.log.info(f'incident {update.incident.id} {update.phase}: rule '
                      f'{update.incident.rule} on {update.incident.camera}'
                      + ''.join(f', {cue.kind} score {cue.score:.2f}' for cue in update.incident.cues.values())
                      + (f', bag {update.incident.recording}' if update.incident.recording else ''))
        return text

    def _snapshot(self, camera_id: str) -> bytes | None:
        latest = self.latest_anonymized.get(camera_id)
        if latest is None or self.settings['snapshot_width'] == 0:
            return None
        jpeg = bytes(vss_typestore().deserialize_cdr(latest, COMPRESSED_IMAGE).data)
        return small_snapshot(jpeg, self.settings['snapshot_width'])
