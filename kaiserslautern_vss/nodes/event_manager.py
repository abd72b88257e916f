"""Event manager node: detections + anonymised images -> incidents on /vss/events,
incident-only rosbag2 snippets (signed, optionally encrypted), alerts and retention.

The logic is :class:`kaiserslautern_vss.events.manager.EventManager` (ROS-free); this node
declares its parameters, subscribes (serialized: the recorder keeps CDR), runs its timers and
services, publishes what the manager returns and reports diagnostics.

Behaviour: ``/vss/<cam>/behaviour`` (the vision pipeline's cues) feeds the behaviour rules and
is recorded with ``/vss/<cam>/skeletons``; malformed cue messages are dropped, counted per
reason under ``event_manager: behaviour`` on /diagnostics (WARN), which also names cameras
whose behaviour stage runs without the pose model.

Inputs besides the rules: ``/vss/<cam>/alarm`` (std_msgs/String, the text is the reason,
e.g. from an alarm panel) and the ``/vss/<cam>/trigger_recording`` service open an
incident of ``alarm_duration_s``; ``/vss/<cam>/mark_evidence`` (std_srvs/Trigger) marks
the camera's latest incident as evidence (``vss-evidence`` does the same for any one).
A bag that cannot be written or is cut is also a diagnostics ERROR.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_msgs.msg import String
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from kaiserslautern_vss.behaviour.model_status import model_less_warning
from kaiserslautern_vss.events.manager import EventManager, EventManagerError
from kaiserslautern_vss.parameters.event_manager import PARAMETERS
from kaiserslautern_vss.ros import cdr, qos
from kaiserslautern_vss.ros.batching_executor import BatchingExecutor
from kaiserslautern_vss.ros.detection_reading import detections_from_cdr
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.payload_guard import PayloadGuard
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic

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
    'behaviour': (String, qos.RELIABLE),
    'skeletons': (MarkerArray, qos.RELIABLE),
}


class EventManagerNode(Node):
    def __init__(self) -> None:
        super().__init__('event_manager')
        self.guard = PayloadGuard(self)  # a payload it cannot handle is dropped, never a crash
        self.settings = declare_parameters(self, PARAMETERS)
        cameras = self.settings['cameras']
        try:
            self.manager = EventManager(self.settings, self.get_logger(), clock=lambda: datetime.now(timezone.utc))
        except EventManagerError as error:
            raise StartupError(f'event_manager: {error}') from error
        self.events_pub = self.create_publisher(String, EVENTS, qos.LATCHED)
        for camera_id in cameras:
            for name, (msg_class, profile) in SUBSCRIBED.items():
                topic = camera_topic(camera_id, name)
                callback = {'detections': self._on_detections, 'behaviour': self._on_behaviour,
                            'skeletons': self._on_skeletons}.get(name, self._on_recorded)
                self.guard.subscribe(msg_class, topic, partial(callback, camera_id, topic), profile, raw=True,
                                     event_callbacks=NO_QOS_EVENTS)
            self.guard.serve(Trigger, camera_topic(camera_id, 'trigger_recording'),
                             partial(self._on_manual_trigger, camera_id))
            self.guard.serve(Trigger, camera_topic(camera_id, 'mark_evidence'),
                             partial(self._on_mark_evidence, camera_id))
            self.guard.subscribe(String, camera_topic(camera_id, 'alarm'), partial(self._on_alarm, camera_id),
                                 qos.RELIABLE)
        self.create_timer(0.2, self._tick)
        self.create_timer(self.settings['retention_check_s'], self.manager.enforce_retention)
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics, guard=self.guard)
        self.get_logger().info(f'{len(self.manager.rules)} rule(s) on {", ".join(cameras)}; '
                               f'bags go to {self.manager.record_root}')

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _publish(self, events: list[str]) -> None:
        for text in events:
            self.events_pub.publish(String(data=text))

    def _on_recorded(self, camera_id: str, topic: str, payload: bytes) -> None:
        self.manager.on_recorded(camera_id, topic, cdr.header_stamp_ns_from_cdr(payload), payload)

    def _on_detections(self, camera_id: str, topic: str, payload: bytes) -> None:
        self._publish(self.manager.on_detections(camera_id, topic, cdr.header_stamp_ns_from_cdr(payload), payload,
                                                 detections_from_cdr(payload), self._now_ns()))

    def _on_behaviour(self, camera_id: str, topic: str, payload: bytes) -> None:
        self._publish(self.manager.on_behaviour(camera_id, topic, payload, self._now_ns()))

    def _on_skeletons(self, camera_id: str, topic: str, payload: bytes) -> None:
        try:
            stamp_ns = cdr.first_element_stamp_ns_from_cdr(payload)
        except cdr.CdrError:
            return  # no marker, no stamp: nothing to show in a recording either
        self.manager.on_recorded(camera_id, topic, stamp_ns, payload)

    def _on_manual_trigger(self, camera_id: str, request: Trigger.Request,
                           response: Trigger.Response) -> Trigger.Response:
        events, response.message = self.manager.trigger(camera_id, self._now_ns())
        self._publish(events)
        response.success = True
        return response

    def _on_alarm(self, camera_id: str, msg: String) -> None:
        self._publish(self.manager.alarm(camera_id, self._now_ns(), msg.data))

    def _on_mark_evidence(self, camera_id: str, request: Trigger.Request,
                          response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.manager.mark_evidence(camera_id)
        return response

    def _tick(self) -> None:
        self._publish(self.manager.tick(self._now_ns()))

    def _diagnostics(self) -> dict:
        m = self.manager
        error = m.recording_problem
        status = {'recorder': (ERROR if error else OK, error or 'recording on incidents only', {
            'incidents_started': m.incidents_started,
            'open_incidents': len(m.engine.open_incidents),
            'disk_errors': m.recorder.error_count,
            'pre_event_buffer_bytes': m.recorder.buffered_bytes,
            'last_disk_error': m.recorder.last_error or '',
            'recovered_incidents': m.recovery['sealed'],
            'record_root': m.record_root}),
            'retention': (WARN if m.retention_errors or m.disk_guard.errors else OK,
                          '; '.join(m.retention_errors + m.disk_guard.errors) or 'ok', {
                              'deleted_incidents': m.deleted_incidents,
                              'retention_hours': self.settings['retention_hours']}),
            'audit': (ERROR if m.audit_error else OK, m.audit_error or 'ok', {'log': m.audit.path}),
            'behaviour': self._behaviour_status()}
        if m.alerts is not None:
            problems = {channel: error for channel, error in m.alerts.status().items() if error}
            status['alerts'] = (WARN if problems else OK, '; '.join(f'{c}: {e}' for c, e in problems.items())
                                or 'delivering', {'pending': m.alerts.outbox.pending(),
                                                  'delivered': m.alerts.delivered})
        return status

    def _behaviour_status(self) -> tuple[bytes, str, dict]:
        """Dropped cue messages by reason, and cameras whose cues come without the pose model."""
        m = self.manager
        dropped = sum(m.behaviour_dropped.values())
        model_less = sorted(camera for camera, pose_cues in m.pose_cues.items() if not pose_cues)
        problems = ([f'{dropped} malformed behaviour message(s) dropped'] if dropped else []) + \
            ([f'{", ".join(model_less)}: {model_less_warning()}'] if model_less else [])
        return (WARN if problems else OK, '; '.join(problems) or 'ok', {
            'cameras_with_cues': ', '.join(sorted(m.pose_cues)), 'without_pose_model': ', '.join(model_less),
            **{f'dropped: {reason}': count for reason, count in m.behaviour_dropped.items()}})

    def destroy_node(self) -> None:
        manager = getattr(self, 'manager', None)  # None: refused at start (rclpy still destroys the node)
        if manager is not None:
            manager.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(EventManagerNode, args, executor=partial(BatchingExecutor, INPUT_BATCH_S))


if __name__ == '__main__':
    raise SystemExit(main())
