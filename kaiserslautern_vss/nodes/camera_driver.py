"""Camera driver: one source -> /vss/<cam>/image_raw (bgr8) + camera_info.

A capture thread reads the source (which paces video files itself) and publishes the
newest frame; the node's only job is adapting frames to messages.
"""

from __future__ import annotations

import threading
import time

from builtin_interfaces.msg import Time
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.sources import EndOfStream, SourceError, SourceSettings, open_source
from kaiserslautern_vss.camera.credentials import mask_url
from kaiserslautern_vss.parameters.camera_driver import PARAMETERS
from kaiserslautern_vss.paths import resolve_sample_url
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.image_conversion import bgr_to_image
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.topics import camera_topic


def stamp_from_ns(stamp_ns: int) -> Time:
    return Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


class CameraDriverNode(Node):
    def __init__(self) -> None:
        super().__init__('camera_driver')
        self.settings = declare_parameters(self, PARAMETERS)
        camera_id = self.settings['camera_id']
        self.frame_id = self.settings['frame_id'] or f'{camera_id}_optical_frame'
        self.min_period_s = 1.0 / self.settings['max_rate_hz'] if self.settings['max_rate_hz'] else 0.0
        self.image_pub = self.create_publisher(Image, camera_topic(camera_id, 'image_raw'), qos.SENSOR)
        self.info_pub = self.create_publisher(CameraInfo, camera_topic(camera_id, 'camera_info'), qos.SENSOR)
        try:
            url = resolve_sample_url(self.settings['url'])
            self.source = open_source(url, SourceSettings(
                realtime=self.settings['realtime'], loop=self.settings['loop']))
            self.source.open()
        except (SourceError, FileNotFoundError) as error:
            raise StartupError(f'camera {camera_id}: cannot open {mask_url(self.settings["url"])}: {error}')
        self.published = 0
        self.finished = threading.Event()
        self.get_logger().info(f'camera {camera_id}: publishing {self.source.describe()}')
        self.capture_thread = threading.Thread(target=self._capture_loop, name=f'capture-{camera_id}',
                                               daemon=True)
        self.capture_thread.start()
        # A finite source that ended shuts the node down from the executor's thread.
        self.end_timer = self.create_timer(0.2, self._shutdown_when_finished)

    def _capture_loop(self) -> None:
        last_publish = 0.0
        while not self.finished.is_set():
            try:
                frame = self.source.read(timeout_s=1.0)
            except EndOfStream:
                self.get_logger().info(f'end of {self.source.describe()} after {self.published} frames')
                self.finished.set()
                return
            except SourceError as error:
                self.get_logger().error(f'source error: {error}', throttle_duration_sec=5.0)
                continue
            if frame is None:
                continue
            now = time.monotonic()
            if now - last_publish < self.min_period_s:
                continue
            last_publish = now
            self._publish(frame)

    def _publish(self, frame: Frame) -> None:
        header = Header(stamp=stamp_from_ns(frame.capture_time_ns), frame_id=self.frame_id)
        self.image_pub.publish(bgr_to_image(frame.image, header))
        height, width = frame.image.shape[:2]
        self.info_pub.publish(CameraInfo(header=header, height=height, width=width))
        self.published += 1

    def _shutdown_when_finished(self) -> None:
        if self.finished.is_set():
            self.end_timer.cancel()
            self.context.try_shutdown()

    def destroy_node(self) -> None:
        self.finished.set()
        self.capture_thread.join(timeout=2.0)
        self.source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraDriverNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
