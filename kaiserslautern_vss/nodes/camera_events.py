"""Camera events: the cameras' own IP Notify messages -> ``/vss/<cam>/alarm`` (std_msgs/String, the event type).

The event manager turns alarms into incidents; its ``camera_event`` rules choose which event
types do. The receiver (:mod:`kaiserslautern_vss.camera_events.receiver`) listens only on the
configured camera-network address and counts what it refused; the counts are on /diagnostics.
"""

from __future__ import annotations

import time
from pathlib import Path

from rclpy.node import Node
from std_msgs.msg import String

from kaiserslautern_vss.camera_events.receiver import (CameraEvent, IpNotifyReceiver, ReceiverConfigError,
                                                       ReceiverSettings)
from kaiserslautern_vss.camera_events.secrets import load_secrets
from kaiserslautern_vss.parameters.camera_events import PARAMETERS
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.diagnostics import OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.payload_guard import PayloadGuard
from kaiserslautern_vss.ros.topics import camera_topic

PROBLEM_WARN_S = 60.0  # a refused request keeps the receiver at WARN this long


class CameraEventsNode(Node):
    def __init__(self) -> None:
        super().__init__('camera_events')
        self.guard = PayloadGuard(self)  # rclpy's parameter services take anyone's requests
        s = declare_parameters(self, PARAMETERS)
        try:
            settings = ReceiverSettings(
                bind_address=s['bind_address'], port=s['port'],
                secrets=load_secrets(s['cameras'], Path(s['secrets_dir']).expanduser()),
                max_body_bytes=s['max_body_bytes'], rate_per_s=s['rate_per_s'], burst=s['burst'],
                max_connections=s['max_connections'], max_connections_per_sender=s['max_connections_per_sender'],
                request_timeout_s=s['request_timeout_s'], replay_window_s=s['replay_window_s'])
        except ReceiverConfigError as error:
            raise StartupError(f'camera_events: {error}') from None
        self.alarm_pubs = {camera_id: self.create_publisher(String, camera_topic(camera_id, 'alarm'), qos.RELIABLE)
                           for camera_id in s['cameras']}
        self.receiver = IpNotifyReceiver(settings, self._publish)
        try:
            self.receiver.start()
        except ReceiverConfigError as error:
            raise StartupError(f'camera_events: {error}') from None
        except OSError as error:
            raise StartupError(f'camera_events: cannot listen on {settings.bind_address}:{settings.port}: '
                               f'{error.strerror or error}') from None
        self._problems_seen = 0
        self._problem_at = float('-inf')
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics, guard=self.guard)
        self.get_logger().info(f'IP Notify receiver on {settings.bind_address}:{self.receiver.port} for '
                               f'{", ".join(s["cameras"])}')

    def _publish(self, event: CameraEvent) -> None:
        self.alarm_pubs[event.camera_id].publish(String(data=event.event_type))
        self.get_logger().info(f'{event.camera_id}: camera event {event.event_type} from {event.source}')

    def _diagnostics(self) -> dict:
        counts = self.receiver.counts()
        problems = sum(counts.values()) - counts['accepted']
        if problems > self._problems_seen:
            self._problems_seen, self._problem_at = problems, time.monotonic()
        recent = time.monotonic() - self._problem_at < PROBLEM_WARN_S
        return {'ip_notify': (WARN if recent else OK, self.receiver.last_problem if recent else 'receiving',
                              {**counts, 'last_problem': self.receiver.last_problem,
                               'address': f'{self.receiver.settings.bind_address}:{self.receiver.port}'})}

    def destroy_node(self) -> None:
        receiver = getattr(self, 'receiver', None)  # None: refused at start (rclpy still destroys the node)
        if receiver is not None:
            receiver.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraEventsNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
