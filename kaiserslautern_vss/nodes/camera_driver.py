"""Camera driver: one supervised camera -> /vss/<cam>/image_raw (bgr8) + camera_info, health on /diagnostics.

The camera thread (:class:`SupervisedCamera`) reconnects forever and fills the static privacy
zones before a frame is handed over; this node only stamps, converts and publishes the newest
frame, so a slow subscriber never builds a backlog (replaced frames are counted as dropped).
A finite, non-looping file ends the node with exit status 0.

One camera per process (as launch files start nodes)::

    python -m kaiserslautern_vss.nodes.camera_driver --ros-args -r __ns:=/vss/cam01 --params-file cam01.yaml

Several cameras in one process, one capture thread each: name the nodes to host, with a
params file keyed by those names::

    python -m kaiserslautern_vss.nodes.camera_driver /vss/cam01/camera_driver /vss/cam02/camera_driver \\
        --ros-args --params-file cameras.yaml
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque

import numpy as np
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from kaiserslautern_vss.camera.calibration import CameraCalibration
from kaiserslautern_vss.camera.driver_config import CameraConfigError, build_driver_config
from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.pacing import RateDecimator
from kaiserslautern_vss.parameters.camera_driver import PARAMETERS
from kaiserslautern_vss.parameters.spec import ParameterError
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.image_conversion import bgr_to_image
from kaiserslautern_vss.ros.node_main import EXIT_BAD_CONFIG, StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.stamps import time_from_ns
from kaiserslautern_vss.ros.topics import camera_topic

WAIT_SLICE_S = 0.25  # how often the publishing thread looks at stop requests
LATENCY_WINDOW = 300  # recent frames behind the latency percentiles in /diagnostics
STATE_LEVELS = {'streaming': OK, 'ended': OK, 'connecting': WARN}  # stalled, backoff: ERROR


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
        try:
            self.config = build_driver_config(declare_parameters(self, PARAMETERS))
        except (ParameterError, CameraConfigError) as error:
            super().destroy_node()  # half-built: release its handles before rclpy shuts down
            raise StartupError(str(error)) from None
        camera_id = self.config.camera_id
        self.image_pub = self.create_publisher(Image, camera_topic(camera_id, 'image_raw'), qos.SENSOR)
        self.info_pub = self.create_publisher(CameraInfo, camera_topic(camera_id, 'camera_info'), qos.SENSOR)
        self.description = self.config.create_source().describe()  # masked: never credentials
        self.decimator = RateDecimator(self.config.max_rate_hz)
        self.info_by_size: dict[tuple[int, int], CameraInfo] = {}
        self.published = 0
        self.rate_skipped = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.finished = threading.Event()  # a finite source ended and its last frame is out
        self.stopping = threading.Event()
        zones = f', {len(self.config.privacy_zones)} privacy zone(s)' if self.config.privacy_zones else ''
        self.get_logger().info(f'camera {camera_id}: {self.description}{zones}')
        self.camera = self.config.supervise()
        self.publisher_thread = threading.Thread(target=self._publish_loop, name=f'publish-{camera_id}',
                                                 daemon=True)
        self.publisher_thread.start()
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics)

    def _publish_loop(self) -> None:
        while not self.stopping.is_set():
            frame = self.camera.wait_latest(WAIT_SLICE_S)
            if frame is None:
                if self.camera.stats().state == 'ended':
                    self.get_logger().info(f'end of {self.description} after {self.published} frames')
                    self.finished.set()
                    return
                continue
            if not self.decimator.keep(frame.capture_time_ns):
                self.rate_skipped += 1
                continue
            try:
                self._publish(frame)
            except Exception as error:  # noqa: BLE001 - the publishing thread must outlive any bad frame
                if not self.context.ok():
                    return  # shutting down (SIGINT/SIGTERM): the context went away under the publish
                self.get_logger().error(f'cannot publish a frame: {error!r}', throttle_duration_sec=5.0)

    def _publish(self, frame: Frame) -> None:
        header = Header(stamp=time_from_ns(frame.capture_time_ns), frame_id=self.config.frame_id)
        height, width = frame.image.shape[:2]
        info = self.info_by_size.get((width, height))
        if info is None:
            info = self.info_by_size[(width, height)] = camera_info_msg(self.config.calibration, width, height)
        info.header = header
        self.image_pub.publish(bgr_to_image(frame.image, header))
        self.info_pub.publish(info)
        self.published += 1
        self.latencies_ms.append((time.time_ns() - frame.capture_time_ns) / 1e6)

    def _diagnostics(self) -> dict:
        stats = self.camera.stats()
        latency = np.percentile(self.latencies_ms, [50, 99]) if self.latencies_ms else (0.0, 0.0)
        message = stats.state if stats.state == 'streaming' or not stats.last_error \
            else f'{stats.state}: {stats.last_error}'
        return {self.config.camera_id: (STATE_LEVELS.get(stats.state, ERROR), message, {
            'state': stats.state, 'fps': f'{stats.fps:.1f}', 'frames': stats.frames, 'published': self.published,
            'dropped': stats.dropped, 'rate_skipped': self.rate_skipped, 'corrupt_frames': stats.corrupt_frames,
            'reconnects': stats.reconnects, 'failures': stats.failures, 'last_error': stats.last_error,
            'latency_p50_ms': f'{latency[0]:.1f}', 'latency_p99_ms': f'{latency[1]:.1f}',
            'source': self.description})}

    def destroy_node(self) -> None:
        self.stopping.set()
        self.camera.stop()
        self.publisher_thread.join(timeout=2.0)
        super().destroy_node()


class RosLogHandler(logging.Handler):
    """Python logging (the camera threads') into a ROS logger, so it reaches /rosout and the console."""

    def __init__(self, logger: RcutilsLogger) -> None:
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self.logger.error(message)
        elif record.levelno >= logging.WARNING:
            self.logger.warning(message)
        else:
            self.logger.info(message)


def _shut_down_when_all_finished(nodes: list[CameraDriverNode]) -> None:
    """The process ends (status 0) once every hosted camera's finite source has ended."""
    def check() -> None:
        if all(node.finished.is_set() for node in nodes):
            timer.cancel()
            nodes[0].context.try_shutdown()
    timer = nodes[0].create_timer(0.2, check)


def _make_nodes(fqns: list[str]) -> list[CameraDriverNode]:
    nodes: list[CameraDriverNode] = []
    try:
        if not fqns:
            nodes.append(CameraDriverNode())
        for fqn in fqns:
            namespace, _, name = fqn.rpartition('/')
            nodes.append(CameraDriverNode(name, namespace or '/'))
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    camera_log = logging.getLogger('kaiserslautern_vss.camera')
    camera_log.setLevel(logging.INFO)
    camera_log.addHandler(RosLogHandler(nodes[0].get_logger()))
    _shut_down_when_all_finished(nodes)
    return nodes


def main(args: list[str] | None = None) -> int:
    fqns = remove_ros_args(sys.argv if args is None else args)[1:]
    bad = [fqn for fqn in fqns if not fqn.startswith('/') or fqn.endswith('/')]
    if bad:
        print(f'[FATAL] camera_driver: expected fully qualified node names like /vss/cam01/camera_driver, '
              f'got {" ".join(bad)}', file=sys.stderr, flush=True)
        return EXIT_BAD_CONFIG
    return run_node(lambda: _make_nodes(fqns), args)


if __name__ == '__main__':
    raise SystemExit(main())
