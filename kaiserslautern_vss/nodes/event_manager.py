"""Event manager: detections + anonymised images -> incidents on /vss/events and
incident-only rosbag2 snippets.

Messages are kept serialized (CDR) from the moment they arrive: the pre-event ring
buffer and the bag writer never deserialize images, which keeps ten cameras cheap.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import yaml
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_msgs.msg import String
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.events.incident import IncidentUpdate
from kaiserslautern_vss.events.recorder import IncidentRecorder
from kaiserslautern_vss.events.rules import RuleConfigError, RuleEngine, parse_rules
from kaiserslautern_vss.parameters.event_manager import PARAMETERS
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import msg_to_detections
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, DiagnosticsReporter
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic

#: what an incident bag holds per camera (never image_raw)
RECORDED = {
    'image_anonymized/compressed': ('sensor_msgs/msg/CompressedImage', CompressedImage, qos.SENSOR),
    'detections': ('vision_msgs/msg/Detection2DArray', Detection2DArray, qos.RELIABLE),
    'camera_info': ('sensor_msgs/msg/CameraInfo', CameraInfo, qos.SENSOR),
}


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def load_rules_file(path: Path) -> list:
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RuleConfigError(f'cannot read rules file {path}: {error}') from error
    if not isinstance(document, dict) or 'rules' not in document:
        raise RuleConfigError(f'{path}: expected a mapping with a "rules" list')
    return parse_rules(document['rules'])


class EventManagerNode(Node):
    def __init__(self) -> None:
        super().__init__('event_manager')
        self.settings = declare_parameters(self, PARAMETERS)
        cameras = self.settings['cameras']
        try:
            rules = load_rules_file(Path(self.settings['rules_file']))
        except RuleConfigError as error:
            raise StartupError(f'event_manager: {error}') from error
        unknown = sorted({rule.camera for rule in rules} - set(cameras))
        if unknown:
            raise StartupError(f'event_manager: rules name cameras not served here: {", ".join(unknown)}')
        self.engine = RuleEngine(rules, end_hold_s=self.settings['end_hold_s'])
        topics = {camera_topic(c, name): msgtype for c in cameras for name, (msgtype, _, _) in RECORDED.items()}
        topics[EVENTS] = 'std_msgs/msg/String'
        self.record_root = Path(self.settings['record_root']).resolve()
        self.recorder = IncidentRecorder(
            self.record_root, pre_event_s=self.settings['pre_event_s'],
            post_event_s=self.settings['post_event_s'],
            buffer_max_bytes=self.settings['buffer_max_mb'] * 1024 * 1024, topics=topics)
        self.events_pub = self.create_publisher(String, EVENTS, qos.LATCHED)
        for camera_id in cameras:
            for name, (_, msg_class, profile) in RECORDED.items():
                topic = camera_topic(camera_id, name)
                callback = self._on_detections if name == 'detections' else self._on_recorded
                self.create_subscription(msg_class, topic, partial(callback, camera_id, topic), profile)
            self.create_service(Trigger, camera_topic(camera_id, 'trigger_recording'),
                                partial(self._on_manual_trigger, camera_id))
        self.incidents_started = 0
        self.create_timer(0.2, self._tick)
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics)
        self.get_logger().info(f'{len(rules)} rule(s) on {", ".join(cameras)}; bags go to {self.record_root}')

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_recorded(self, camera_id: str, topic: str, msg) -> None:
        self.recorder.on_message(camera_id, topic, stamp_ns(msg), serialize_message(msg))

    def _on_detections(self, camera_id: str, topic: str, msg: Detection2DArray) -> None:
        stamp = stamp_ns(msg)
        self.recorder.on_message(camera_id, topic, stamp, serialize_message(msg))
        self._handle(self.engine.update(camera_id, stamp, msg_to_detections(msg)))

    def _on_manual_trigger(self, camera_id: str, request: Trigger.Request,
                           response: Trigger.Response) -> Trigger.Response:
        updates = self.engine.trigger(camera_id, self._now_ns(), source='operator', reason='manual trigger')
        self._handle(updates)
        response.success = True
        response.message = f'incident {updates[0].incident.id} on {camera_id}' if updates else 'merged'
        return response

    def _tick(self) -> None:
        now = self._now_ns()
        self._handle(self.engine.tick(now))
        self.recorder.poll(now)

    def _handle(self, updates: list[IncidentUpdate]) -> None:
        for update in updates:
            bag = self.recorder.on_incident(update, self._now_ns())
            if bag is not None:
                update.incident.bag_path = str(bag)
            if update.phase == 'start':
                self.incidents_started += 1
            event = String(data=update.to_json())
            self.events_pub.publish(event)
            self.recorder.on_message(update.incident.camera, EVENTS, update.incident.updated_ns,
                                     serialize_message(event))
            self.get_logger().info(f'incident {update.incident.id} {update.phase}: rule '
                                   f'{update.incident.rule} on {update.incident.camera}')

    def _diagnostics(self) -> dict:
        error = self.recorder.last_error
        return {'recorder': (ERROR if error else OK, error or 'recording on incidents only', {
            'incidents_started': self.incidents_started,
            'open_incidents': len(self.engine.open_incidents),
            'record_root': self.record_root})}

    def destroy_node(self) -> None:
        self.recorder.close_all()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(EventManagerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
