"""Operator console node: anonymised topics in, the Leitstelle web console (HTTPS) out.

Subscribes ONLY ``/vss/<cam>/image_anonymized/compressed``, ``/vss/<cam>/detections``,
``/vss/<cam>/behaviour``, ``/vss/<cam>/skeletons`` and ``/vss/events`` (serialized; decoded
when a browser looks), and calls the event manager's ``/vss/<cam>/trigger_recording``
service for manual triggers. Never
``image_raw``: :data:`SUBSCRIBED_PER_CAMERA` is the whole list, and a test checks the
node's subscriptions in the ROS graph. The camera topics are subscribed only while a
browser watches the live view (and ``WATCH_GRACE_S`` after), so ten camera streams cost
nothing while nobody looks; ``/vss/events`` always (alerts). The web application itself
is ROS-free (kaiserslautern_vss.console).
"""

from __future__ import annotations

import threading
import time
from functools import partial

from rclpy.node import Node
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from kaiserslautern_vss.bind_address import BindAddressError
from kaiserslautern_vss.console.accounts import AccountError
from kaiserslautern_vss.console.app import Console
from kaiserslautern_vss.console.live import LiveState
from kaiserslautern_vss.console.login_guard import LoginStateError
from kaiserslautern_vss.console.server import ConsoleServer
from kaiserslautern_vss.console.settings import ConsoleSettings
from kaiserslautern_vss.console.tls import TlsError, certificate_fingerprint
from kaiserslautern_vss.parameters.operator_console import PARAMETERS
from kaiserslautern_vss.recordings.audit import AuditError
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.diagnostics import OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.payload_guard import PayloadGuard
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic

#: everything the console reads per camera: anonymised data only
SUBSCRIBED_PER_CAMERA = {
    'image_anonymized/compressed': (CompressedImage, qos.SENSOR, LiveState.on_image),
    'detections': (Detection2DArray, qos.RELIABLE, LiveState.on_detections),
    'behaviour': (String, qos.RELIABLE, LiveState.on_behaviour),
    'skeletons': (MarkerArray, qos.RELIABLE, LiveState.on_skeletons),
}
TRIGGER_TIMEOUT_S = 5.0
WATCH_GRACE_S = 10.0


class OperatorConsoleNode(Node):
    def __init__(self) -> None:
        super().__init__('operator_console')
        self.guard = PayloadGuard(self)
        try:
            settings = ConsoleSettings.from_parameters(declare_parameters(self, PARAMETERS))
        except OSError as error:
            raise StartupError(f'operator_console: {error}') from error
        self.live = LiveState(list(settings.cameras), time.time)
        self._trigger_clients = {camera: self.create_client(Trigger, camera_topic(camera, 'trigger_recording'))
                                 for camera in settings.cameras}
        self._camera_subscriptions: list = []
        self.guard.subscribe(String, EVENTS, self.live.on_event, qos.LATCHED, raw=True)
        self.create_timer(1.0, self._follow_viewers)
        self.url = f'https://{settings.bind_address}:{settings.port}/'
        try:
            self.console = Console(settings, self.live, trigger=self.trigger)
            self.server = ConsoleServer(self.console.app(), settings)
            self.server.start()
        except (AccountError, LoginStateError, TlsError, AuditError, BindAddressError, OSError) as error:
            raise StartupError(f'operator_console: {error}') from error
        if not self.console.accounts.all():
            self.get_logger().warning(f'no users in {settings.users_file}: nobody can log in; create them with '
                                      f'vss-users --file {settings.users_file} add NAME --role admin')
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics, period_s=5.0, guard=self.guard)
        self.get_logger().info(f'Leitstelle on {self.url} for {", ".join(settings.cameras)} (certificate SHA-256 '
                               f'{certificate_fingerprint(settings.tls_cert_file)}); audit log {settings.audit_log}')

    def _follow_viewers(self) -> None:
        """Subscribe the camera topics while someone watches the live view, drop them after."""
        watched = self.live.watched(time.time(), WATCH_GRACE_S)
        if watched and not self._camera_subscriptions:
            self._camera_subscriptions = [
                self.guard.subscribe(msg_class, camera_topic(camera, name), partial(store, self.live, camera),
                                     profile, raw=True)
                for camera in self.live.cameras for name, (msg_class, profile, store) in SUBSCRIBED_PER_CAMERA.items()]
        elif not watched and self._camera_subscriptions:
            for subscription in self._camera_subscriptions:
                self.destroy_subscription(subscription)
            self._camera_subscriptions = []

    def trigger(self, camera: str) -> tuple[bool, str]:
        """Call the camera's trigger_recording service (from a web worker thread; the executor
        thread delivers the answer)."""
        client = self._trigger_clients[camera]
        if not client.service_is_ready():
            return False, f'Dienst {client.srv_name} nicht erreichbar (läuft der event_manager?)'
        done = threading.Event()
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        if not done.wait(TRIGGER_TIMEOUT_S):
            future.cancel()
            return False, f'keine Antwort von {client.srv_name} in {TRIGGER_TIMEOUT_S:.0f} s'
        response = future.result()
        return bool(response.success), response.message

    def _diagnostics(self) -> dict:
        cameras = self.live.cameras_status(viewer=False)
        silent = [c['camera'] for c in cameras if self._camera_subscriptions
                  and (c['age_s'] is None or c['age_s'] > 5.0)]
        problems = ([f'no frames from {", ".join(silent)}'] if silent else []) + (
            ['no signing key: evidence, verification and export unavailable']
            if self.console.signing_key is None else [])
        return {'console': (WARN if problems else OK, '; '.join(problems) or f'serving {self.url}', {
            'url': self.url, 'sessions': len(self.console.sessions),
            'live_view_watched': bool(self._camera_subscriptions),
            'cameras_silent': len(silent),
            'connections_refused': self.server.guard.refused, 'requests_timed_out': self.server.guard.timed_out,
            'undecodable_messages': self.live.dropped_messages})}

    def destroy_node(self) -> None:
        server = getattr(self, 'server', None)
        if server is not None:
            server.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    # one executor thread: a manual trigger waits in a web worker thread, not in a callback
    return run_node(OperatorConsoleNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
