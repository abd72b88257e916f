"""Camera driver node: one supervised camera feeding the vision pipeline, camera_info on the bus,
health on /diagnostics.

Hosted by the vision_pipeline process (nodes/vision_pipeline.py): frames go to the detector
and the privacy stage in memory. The camera thread (:class:`SupervisedCamera`) reconnects
forever and fills the static privacy zones before a frame is handed over; the feed thread
(:class:`CameraFeed`) stamps and hands on the newest frame only.

``/vss/<cam>/image_raw`` is published only with the commissioning switch ``publish_raw: true``
(and only while someone subscribes): unmasked frames on the bus are readable by every local
process, so the switch is logged as a warning and keeps the camera's diagnostics at WARN.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from kaiserslautern_vss.camera.calibration import CameraCalibration
from kaiserslautern_vss.camera.driver_config import CameraConfigError, build_driver_config
from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.parameters.camera_driver import PARAMETERS
from kaiserslautern_vss.parameters.spec import ParameterError
from kaiserslautern_vss.pipeline.camera_feed import CameraFeed
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.image_conversion import bgr_to_image
from kaiserslautern_vss.ros.node_main import StartupError
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.payload_guard import PayloadGuard
from kaiserslautern_vss.ros.stamps import time_from_ns
from kaiserslautern_vss.ros.topics import camera_topic

LATENCY_WINDOW = 300  # recent frames behind the latency percentiles in /diagnostics
STATE_LEVELS = {'streaming': OK, 'ended': OK, 'connecting': WARN}  # stalled, backoff: ERROR
RAW_ON_BUS = 'publish_raw is on: unmasked frames on /vss/{camera}/image_raw (commissioning only)'

#: where a frame goes: (camera id, BGR image, stamp in ns, header) -> accepted
Submit = Callable[[str, np.ndarray, int, Header], bool]


def camera_info_msg(calibration: CameraCalibration | None, width: int, height: int) -> CameraInfo:
    """CameraInfo for images of ``width x height``: the calibration scaled to that size, or size only."""
    if calibration is None:
        return CameraInfo(width=width, height=height)
    scaled = calibration.scaled_to(width, height)
    return CameraInfo(width=width, height=height, distortion_model=scaled.distortion_model, d=list(scaled.d),
                      k=list(scaled.k), r=list(scaled.r), p=list(scaled.p))


class CameraDriverNode(Node):
    def __init__(self, name: str = 'camera_driver', namespace: str | None = None) -> None:
        super().__init__(name, namespace=namespace)
        self.guard = PayloadGuard(self)  # rclpy's parameter services take anyone's requests
        try:
            self.config = build_driver_config(declare_parameters(self, PARAMETERS))
        except (ParameterError, CameraConfigError) as error:
            super().destroy_node()  # half-built: release its handles before rclpy shuts down
            raise StartupError(str(error)) from None
        self.camera_id = camera_id = self.config.camera_id
        self.publish_raw = self.get_parameter('publish_raw').value
        self.raw_pub = (self.create_publisher(Image, camera_topic(camera_id, 'image_raw'), qos.SENSOR)
                        if self.publish_raw else None)
        self.info_pub = self.create_publisher(CameraInfo, camera_topic(camera_id, 'camera_info'), qos.SENSOR)
        self.description = self.config.create_source().describe()  # masked: never credentials
        self.info_by_size: dict[tuple[int, int], CameraInfo] = {}
        self.refused = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.feed: CameraFeed | None = None
        self._submit: Submit | None = None
        zones = f', {len(self.config.privacy_zones)} privacy zone(s)' if self.config.privacy_zones else ''
        self.get_logger().info(f'camera {camera_id}: {self.description}{zones}')
        if self.publish_raw:
            self.get_logger().warning(RAW_ON_BUS.format(camera=camera_id))
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics, guard=self.guard)

    def start(self, submit: Submit) -> None:
        """Start capturing; every frame goes to ``submit``."""
        self._submit = submit
        self.feed = CameraFeed(self.config.supervise(), self.config.max_rate_hz, self._deliver, self.camera_id)
        self.feed.start()

    @property
    def finished(self) -> bool:
        """A finite source ended and its last frame was handed on."""
        return self.feed is not None and self.feed.finished.is_set()

    def _deliver(self, frame: Frame) -> None:
        if not self.context.ok():
            return  # shutting down (SIGINT/SIGTERM): nowhere to publish
        header = Header(stamp=time_from_ns(frame.capture_time_ns), frame_id=self.config.frame_id)
        height, width = frame.image.shape[:2]
        info = self.info_by_size.get((width, height))
        if info is None:
            info = self.info_by_size[(width, height)] = camera_info_msg(self.config.calibration, width, height)
        info.header = header
        self.info_pub.publish(info)
        if self.raw_pub is not None and self.raw_pub.get_subscription_count():
            self.raw_pub.publish(bgr_to_image(frame.image, header))
        self.refused += not self._submit(self.camera_id, frame.image, frame.capture_time_ns, header)
        self.latencies_ms.append((time.time_ns() - frame.capture_time_ns) / 1e6)

    def _diagnostics(self) -> dict:
        if self.feed is None:
            return {}
        stats = self.feed.camera.stats()
        latency = np.percentile(self.latencies_ms, [50, 99]) if self.latencies_ms else (0.0, 0.0)
        level = STATE_LEVELS.get(stats.state, ERROR)
        message = stats.state if stats.state == 'streaming' or not stats.last_error \
            else f'{stats.state}: {stats.last_error}'
        if self.publish_raw:
            level, message = max(level, WARN), f'{message}; {RAW_ON_BUS.format(camera=self.camera_id)}'
        if stats.warnings:  # camera health: clock offset, recent resolution or rate change
            level, message = max(level, WARN), '; '.join((message, *stats.warnings))
        return {self.camera_id: (level, message, {
            'state': stats.state, 'fps': f'{stats.fps:.1f}', 'frames': stats.frames,
            'published': self.feed.delivered, 'refused': self.refused,
            'dropped': stats.dropped, 'rate_skipped': self.feed.rate_skipped, 'corrupt_frames': stats.corrupt_frames,
            'reconnects': stats.reconnects, 'failures': stats.failures, 'last_error': stats.last_error,
            'latency_p50_ms': f'{latency[0]:.1f}', 'latency_p99_ms': f'{latency[1]:.1f}',
            'publish_raw': self.publish_raw, 'source': self.description, **stats.health_fields()})}

    def destroy_node(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        super().destroy_node()
