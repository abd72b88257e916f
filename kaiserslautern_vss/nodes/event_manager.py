"""Event manager: detections + anonymised images -> incidents on /vss/events,
incident-only rosbag2 snippets (signed, optionally encrypted), alerts and retention.

Messages are kept serialized (CDR) from the moment they arrive: the pre-event ring
buffer and the bag writer never deserialize images, which keeps ten cameras cheap.

Inputs besides the rules: ``/vss/<cam>/alarm`` (std_msgs/String, the text is the reason,
e.g. from an alarm panel) and the ``/vss/<cam>/trigger_recording`` service open an
incident of ``alarm_duration_s``; ``/vss/<cam>/mark_evidence`` (std_srvs/Trigger) marks
the camera's latest incident as evidence (``vss-evidence`` does the same for any one).

At start-up, bags a crash left unfinished or unsealed are rebuilt and sealed (manifest
``recovered: true``). Disk space is made before writing (events.retention.DiskGuard);
a bag that gets none is announced: an ``update`` event with ``recording`` ``failed`` or
``cut``, diagnostics ERROR and an alert. Evidence marks, deletions and recoveries go
into the keyed audit log.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_msgs.msg import String
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.events.alerts import (AlertConfigError, AlertDispatcher, MqttSender, MqttSettings,
                                              WebhookSender, WebhookSettings, alert_body, small_snapshot)
from kaiserslautern_vss.events.audit import AuditError, AuditLog, default_audit_log
from kaiserslautern_vss.events.encryption import EncryptionError, load_or_create_key
from kaiserslautern_vss.events.file_modes import FileModeError, FileModes
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.events.integrity import (IntegrityError, fingerprint, load_or_create_signing_key,
                                                 mark_evidence, public_key_path)
from kaiserslautern_vss.events.outbox import Outbox
from kaiserslautern_vss.events.recorder import IncidentRecorder, RecordingProblem
from kaiserslautern_vss.events.retention import DiskGuard, RetentionPolicy, StoredIncident, enforce_retention
from kaiserslautern_vss.events.rules import RuleConfigError, RuleEngine, load_rules_file
from kaiserslautern_vss.events.sealing import recover_incidents, seal_incident
from kaiserslautern_vss.parameters.event_manager import PARAMETERS
from kaiserslautern_vss.ros import cdr, qos
from kaiserslautern_vss.ros.batching_executor import BatchingExecutor
from kaiserslautern_vss.ros.detection_conversion import detections_from_cdr
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.topics import EVENTS, RECORDED_PER_CAMERA, camera_topic

#: messages arriving within this time are handled in one executor pass (batching_executor)
INPUT_BATCH_S = 0.05
#: rclpy's default QoS-event handlers (they log incompatible QoS) are one more waitable per
#: subscription that every executor wake-up walks through in Python; thirty camera-rate
#: subscriptions go without them
NO_QOS_EVENTS = SubscriptionEventCallbacks(use_default_callbacks=False)
#: how each recorded topic (ros.topics.RECORDED_PER_CAMERA) is subscribed: serialized, since the
#: recorder keeps CDR and only the stamp (and for detections the boxes) is needed here
SUBSCRIBED = {
    'image_anonymized/compressed': (CompressedImage, qos.SENSOR),
    'detections': (Detection2DArray, qos.RELIABLE),
    'camera_info': (CameraInfo, qos.SENSOR),
}


class EventManagerNode(Node):
    def __init__(self) -> None:
        super().__init__('event_manager')
        self.settings = declare_parameters(self, PARAMETERS)
        cameras = self.settings['cameras']
        try:
            rules = load_rules_file(Path(self.settings['rules_file']))
        except RuleConfigError as error:
            raise StartupError(f'event_manager: {error}') from error
        # A camera subset (--cameras) runs with the site's rules file: rules of cameras not
        # started here are skipped, loudly, so a misspelt camera id is still noticed.
        skipped = [rule for rule in rules if not any(rule.applies_to(camera) for camera in cameras)]
        if skipped:
            self.get_logger().warning('rules for cameras not served here are skipped: ' + ', '.join(
                f'{rule.name} ({", ".join(rule.cameras)})' for rule in skipped))
        rules = [rule for rule in rules if rule not in skipped]
        self.engine = RuleEngine(rules, end_hold_s=self.settings['end_hold_s'],
                                 manual_duration_s=self.settings['alarm_duration_s'])
        topics = {camera_topic(c, name): msgtype for c in cameras for name, msgtype in RECORDED_PER_CAMERA.items()}
        topics[EVENTS] = 'std_msgs/msg/String'
        self.record_root = Path(self.settings['record_root']).resolve()
        self._load_keys()
        self.retention = RetentionPolicy(self.settings['retention_hours'] * 3600.0,
                                         self.settings['quota_mb'] * 1024 * 1024,
                                         self.settings['min_free_mb'] * 1024 * 1024)
        self.disk_guard = DiskGuard(self.record_root, self.retention, in_use=lambda: self.recorder.open_bags.values(),
                                    clock=lambda: datetime.now(timezone.utc),
                                    copy_on_seal=self.encryption_key is not None, on_deleted=self._deleted)
        self.recorder = IncidentRecorder(
            self.record_root, pre_event_s=self.settings['pre_event_s'],
            post_event_s=self.settings['post_event_s'],
            buffer_max_bytes=self.settings['buffer_max_mb'] * 1024 * 1024, topics=topics,
            on_closed=self._seal, room=self.disk_guard.room_for, modes=self.modes)
        self.alerts = self._make_alerts()
        self.latest_anonymized: dict[str, bytes] = {}  # camera -> serialized CompressedImage
        self.latest_bag: dict[str, Path] = {}
        self.latest_incident: dict[str, Incident] = {}
        self.deleted_incidents = 0
        self.recording_problem: str | None = None  # until a bag is sealed complete again
        self.recovery = {'sealed': 0, 'removed': 0, 'failed': 0}
        self.retention_errors: list[str] = []
        self.audit_error: str | None = None
        self._recorder_errors_seen = 0
        self._recover()
        self.events_pub = self.create_publisher(String, EVENTS, qos.LATCHED)
        for camera_id in cameras:
            for name, (msg_class, profile) in SUBSCRIBED.items():
                topic = camera_topic(camera_id, name)
                callback = self._on_detections if name == 'detections' else self._on_recorded
                self.create_subscription(msg_class, topic, partial(callback, camera_id, topic), profile, raw=True,
                                         event_callbacks=NO_QOS_EVENTS)
            self.create_service(Trigger, camera_topic(camera_id, 'trigger_recording'),
                                partial(self._on_manual_trigger, camera_id))
            self.create_service(Trigger, camera_topic(camera_id, 'mark_evidence'),
                                partial(self._on_mark_evidence, camera_id))
            self.create_subscription(String, camera_topic(camera_id, 'alarm'),
                                     partial(self._on_alarm, camera_id), qos.RELIABLE)
        self.incidents_started = 0
        self.create_timer(0.2, self._tick)
        self.create_timer(self.settings['retention_check_s'], self._enforce_retention)
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics)
        self.get_logger().info(f'{len(rules)} rule(s) on {", ".join(cameras)}; bags go to {self.record_root}')

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
                self.get_logger().warning(
                    f'created signing key {key_path} (fingerprint {fingerprint(self.signing_key.public_key())}); '
                    f'give {public_key_path(key_path)} to whoever runs vss-verify, back up the key')
            self.encryption_key = None
            if self.settings['encryption']:
                aes_path = Path(self.settings['encryption_key_file']).expanduser()
                self.encryption_key, created = load_or_create_key(aes_path, self.record_root, self.modes)
                if created:
                    self.get_logger().warning(f'created encryption key {aes_path}: without it no incident '
                                              'can be exported; back it up')
        except (IntegrityError, EncryptionError, FileModeError, OSError) as error:
            raise StartupError(f'event_manager: {error}') from error

    def _make_alerts(self) -> AlertDispatcher | None:
        s = self.settings
        try:
            senders = {}
            if s['mqtt_host']:
                senders['mqtt'] = MqttSender(MqttSettings(
                    s['mqtt_host'], s['mqtt_port'], s['mqtt_topic'], s['mqtt_tls'], s['mqtt_ca_file'],
                    s['mqtt_username'], s['mqtt_password_file']))
            if s['webhook_url']:
                senders['webhook'] = WebhookSender(WebhookSettings(
                    s['webhook_url'], s['webhook_secret_file'], s['webhook_ca_file']))
        except AlertConfigError as error:
            raise StartupError(f'event_manager: {error}') from error
        if not senders:
            return None
        dispatcher = AlertDispatcher(Outbox(Path(s['outbox_path']).expanduser(), self.modes), senders,
                                     clock=time.time)
        dispatcher.start()
        return dispatcher

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_recorded(self, camera_id: str, topic: str, payload: bytes) -> None:
        if topic.endswith('/compressed'):
            self.latest_anonymized[camera_id] = payload
        self.recorder.on_message(camera_id, topic, cdr.header_stamp_ns(payload), payload)

    def _on_detections(self, camera_id: str, topic: str, payload: bytes) -> None:
        stamp = cdr.header_stamp_ns(payload)
        self.recorder.on_message(camera_id, topic, stamp, payload)
        self._handle(self.engine.update(camera_id, stamp, detections_from_cdr(payload)))

    def _on_manual_trigger(self, camera_id: str, request: Trigger.Request,
                           response: Trigger.Response) -> Trigger.Response:
        updates = self.engine.trigger(camera_id, self._now_ns(), source='operator', reason='manual trigger')
        self._handle(updates)
        response.success = True
        response.message = f'incident {updates[0].incident.id} on {camera_id}' if updates else 'merged'
        return response

    def _on_alarm(self, camera_id: str, msg: String) -> None:
        self._handle(self.engine.alarm(camera_id, self._now_ns(), msg.data.strip() or 'alarm input'))

    def _on_mark_evidence(self, camera_id: str, request: Trigger.Request,
                          response: Trigger.Response) -> Trigger.Response:
        folder = self.latest_bag.get(camera_id)
        try:
            if folder is None:
                raise FileNotFoundError(f'no incident recorded on {camera_id} since start')
            mark_evidence(folder, self.signing_key, who='operator (mark_evidence service)',
                          why='marked from the control room', when=datetime.now(timezone.utc))
            self.audit.append('operator (mark_evidence service)', 'evidence mark', folder.name,
                              'marked from the control room')
        except (OSError, AuditError) as error:
            response.success, response.message = False, str(error)
            return response
        response.success, response.message = True, str(folder)
        self.get_logger().info(f'incident {folder.name} marked as evidence')
        return response

    def _tick(self) -> None:
        now = self._now_ns()
        self._handle(self.engine.tick(now))
        self.recorder.poll(now)
        for problem in self.recorder.take_problems():
            self._announce(problem)
        if self.recorder.error_count > self._recorder_errors_seen:  # e.g. disk full: make room now
            self._recorder_errors_seen = self.recorder.error_count
            self.get_logger().error(f'{self.recorder.last_error}; enforcing retention')
            self._enforce_retention()

    def _enforce_retention(self) -> None:
        deleted, self.retention_errors = enforce_retention(
            self.record_root, datetime.now(timezone.utc), self.retention, in_use=self.recorder.open_bags.values())
        for incident in deleted:
            self._deleted(incident)
        self._recover()  # bags a disk error left unsealed, once there is room again

    def _deleted(self, incident: StoredIncident) -> None:
        self.deleted_incidents += 1
        self.get_logger().info(f'retention: deleted {incident.path.name} ({incident.size_bytes} bytes)')
        self._audit('delete', incident.path.name, 'retention period, quota or free-space floor')

    def _recover(self) -> None:
        for result in recover_incidents(self.record_root, self.signing_key, self.encryption_key,
                                        in_use=self.recorder.open_bags.values(), modes=self.modes):
            self.recovery[result.outcome] += 1
            log = self.get_logger().error if result.outcome == 'failed' else self.get_logger().warning
            log(f'crash recovery: {result.path.name} {result.outcome}: {result.detail}')
            if result.outcome != 'failed':
                self._audit(f'recover ({result.outcome})', result.path.name, result.detail)

    def _seal(self, folder: Path, cut: str | None) -> None:
        """Seal a closed bag; one that cannot be sealed now is left to recovery."""
        try:
            seal_incident(folder, self.signing_key, self.encryption_key, cut=cut, modes=self.modes)
        except (OSError, IntegrityError, EncryptionError) as error:
            self.recording_problem = f'cannot seal {folder.name} (retried later): {error}'
            self.get_logger().error(self.recording_problem)
            return
        if cut is None:
            self.recording_problem = None

    def _announce(self, problem: RecordingProblem) -> None:
        """A failed or cut bag: /vss/events update, diagnostics ERROR, alert."""
        self.recording_problem = str(problem)
        self.get_logger().error(f'incident {problem.incident_id} {self.recording_problem}')
        incident = self.latest_incident.get(problem.camera)
        if incident is None or incident.id != problem.incident_id:
            return  # an earlier incident's bag: its events are over, the log and diagnostics tell
        incident.recording, incident.recording_problem = problem.outcome, problem.detail
        if problem.outcome == 'failed':
            incident.bag_path = None
        self._publish(IncidentUpdate('update', incident), alert=True)

    def _audit(self, action: str, target: str, reason: str) -> None:
        try:
            self.audit.append('event_manager', action, target, reason)
            self.audit_error = None
        except (OSError, AuditError) as error:
            self.audit_error = str(error)
            self.get_logger().error(f'audit log: {error}')

    def _handle(self, updates: list[IncidentUpdate]) -> None:
        for update in updates:
            bag = self.recorder.on_incident(update, self._now_ns())
            if bag is not None:
                update.incident.bag_path = str(bag)
                self.latest_bag[update.incident.camera] = bag
            if update.phase == 'start':
                self.incidents_started += 1
                self.latest_incident[update.incident.camera] = update.incident
            for problem in self.recorder.take_problems():  # a failed start is in this very event
                if problem.incident_id != update.incident.id:
                    self._announce(problem)
                else:
                    self.recording_problem = str(problem)
            self._publish(update, alert=update.phase in ('start', 'end'))

    def _publish(self, update: IncidentUpdate, alert: bool) -> None:
        if self.alerts is not None and alert:
            self.alerts.enqueue(alert_body(update.to_dict(), self._snapshot(update.incident.camera)))
        event = String(data=update.to_json())
        self.events_pub.publish(event)
        self.recorder.on_message(update.incident.camera, EVENTS, update.incident.updated_ns,
                                 serialize_message(event))
        self.get_logger().info(f'incident {update.incident.id} {update.phase}: rule '
                               f'{update.incident.rule} on {update.incident.camera}'
                               + (f', bag {update.incident.recording}' if update.incident.recording else ''))

    def _snapshot(self, camera_id: str) -> bytes | None:
        latest = self.latest_anonymized.get(camera_id)
        if latest is None or self.settings['snapshot_width'] == 0:
            return None
        jpeg = bytes(deserialize_message(latest, CompressedImage).data)
        return small_snapshot(jpeg, self.settings['snapshot_width'])

    def _diagnostics(self) -> dict:
        error = self.recording_problem
        status = {'recorder': (ERROR if error else OK, error or 'recording on incidents only', {
            'incidents_started': self.incidents_started,
            'open_incidents': len(self.engine.open_incidents),
            'disk_errors': self.recorder.error_count,
            'pre_event_buffer_bytes': self.recorder.buffered_bytes,
            'last_disk_error': self.recorder.last_error or '',
            'recovered_incidents': self.recovery['sealed'],
            'record_root': self.record_root}),
            'retention': (WARN if self.retention_errors or self.disk_guard.errors else OK,
                          '; '.join(self.retention_errors + self.disk_guard.errors) or 'ok', {
                              'deleted_incidents': self.deleted_incidents,
                              'retention_hours': self.settings['retention_hours']}),
            'audit': (ERROR if self.audit_error else OK, self.audit_error or 'ok', {'log': self.audit.path})}
        if self.alerts is not None:
            problems = {channel: error for channel, error in self.alerts.status().items() if error}
            status['alerts'] = (WARN if problems else OK, '; '.join(f'{c}: {e}' for c, e in problems.items())
                                or 'delivering', {'pending': self.alerts.outbox.pending(),
                                                  'delivered': self.alerts.delivered})
        return status

    def destroy_node(self) -> None:
        self.recorder.close_all()
        if self.alerts is not None:
            self.alerts.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(EventManagerNode, args, executor=partial(BatchingExecutor, INPUT_BATCH_S))


if __name__ == '__main__':
    raise SystemExit(main())
