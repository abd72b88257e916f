"""Detector: /vss/<cam>/image_raw -> /vss/<cam>/detections (vision_msgs/Detection2DArray).

A thin adapter around :class:`DetectionScheduler` (pool of ONNX Runtime sessions, fair
newest-frame-wins slots per camera, batching, motion gating, tracking). The published header
is the image's header, which is how privacy node and rules pair detections with frames.

No annotated image here: the detector only sees raw frames, and an annotated view drawn on
them would carry unmasked faces. The commissioning view (/vss/<cam>/image_annotated) is drawn
by the privacy node on the anonymised frame.
"""

from __future__ import annotations

from functools import partial

from rclpy._rclpy_pybind11 import RCLError
from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.detection.factory import create_detector_pool
from kaiserslautern_vss.detection.motion import MotionGateSettings
from kaiserslautern_vss.detection.onnx_detector import DetectorSettingsError, ModelLoadError
from kaiserslautern_vss.detection.scheduler import (DetectionResult, DetectionScheduler,
                                                    SchedulerSettings, default_session_count)
from kaiserslautern_vss.parameters.detector import PARAMETERS, detector_settings
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import detections_to_msg
from kaiserslautern_vss.ros.diagnostics import OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.image_conversion import ImageConversionError, image_from_cdr
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.stamps import header_stamp_ns
from kaiserslautern_vss.ros.topics import camera_topic

#: a camera silent this long is reported (it simply leaves the batches meanwhile)
STALE_CAMERA_S = 5.0


class DetectorNode(Node):
    def __init__(self) -> None:
        super().__init__('detector')
        self.settings = declare_parameters(self, PARAMETERS)
        params = self.settings
        sessions = params['sessions'] or default_session_count(params['intra_op_threads'])
        try:
            detectors, description = create_detector_pool(detector_settings(params), sessions,
                                                          params['allow_hog_fallback'])
        except (DetectorSettingsError, ModelLoadError) as error:
            raise StartupError(f'detector: {error}') from error
        self.get_logger().info(f'detector: {description}')
        self.publishers_by_camera = {
            camera_id: self.create_publisher(Detection2DArray, camera_topic(camera_id, 'detections'),
                                             qos.RELIABLE)
            for camera_id in params['cameras']}
        self.scheduler = DetectionScheduler(
            detectors, params['cameras'], self._publish,
            SchedulerSettings(batch_size=params['batch_size'], motion_gating=params['motion_gating'],
                              motion=MotionGateSettings(forced_refresh_s=params['forced_refresh_s']),
                              motion_hold_s=params['motion_hold_s'], tracking=params['tracking']),
            on_error=self._on_inference_error)
        for camera_id in params['cameras']:
            self.create_subscription(Image, camera_topic(camera_id, 'image_raw'),
                                     partial(self._on_image, camera_id), qos.SENSOR, raw=True)
        self.previous_published: dict[str, tuple[int, float]] = {}
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics)
        self.scheduler.start()

    def _on_image(self, camera_id: str, data: bytes) -> None:
        try:
            frame = image_from_cdr(data)
        except ImageConversionError as error:
            self.get_logger().error(f'{camera_id}: dropping malformed image: {error}',
                                    throttle_duration_sec=5.0)
            return
        stamp_s = header_stamp_ns(frame.header) * 1e-9
        self.scheduler.submit(camera_id, frame.image, stamp_s, frame.header)

    def _publish(self, result: DetectionResult) -> None:
        # Workers publish from their own threads; on shutdown (SIGINT shuts the context down
        # before destroy_node stops them) the last results have nowhere to go.
        if self.context.ok():
            try:
                self.publishers_by_camera[result.camera_id].publish(
                    detections_to_msg(result.detections, result.context))
            except RCLError:
                if self.context.ok():
                    raise

    def _on_inference_error(self, camera_id: str, error: Exception) -> None:
        self.get_logger().error(f'{camera_id}: inference failed, frame gets no detections: {error}',
                                throttle_duration_sec=5.0)

    def _diagnostics(self) -> dict[str, tuple[bytes, str, dict[str, object]]]:
        now_s = self.get_clock().now().nanoseconds * 1e-9
        report = {}
        for camera_id, stats in self.scheduler.stats().items():
            published_before, then_s = self.previous_published.get(camera_id, (stats.published, now_s))
            self.previous_published[camera_id] = (stats.published, now_s)
            fps = (stats.published - published_before) / (now_s - then_s) if now_s > then_s else 0.0
            silent_s = stats.seconds_since_frame
            level, message = OK, 'running'
            if silent_s is None:
                level, message = WARN, 'no frames yet'
            elif silent_s > STALE_CAMERA_S:
                level, message = WARN, f'no frames for {silent_s:.0f} s'
            report[camera_id] = (level, message, {
                'fps': f'{fps:.1f}', 'received': stats.received, 'inferences': stats.inferred,
                'gated_out': stats.gated, 'dropped': stats.dropped, 'failed': stats.failed,
                'latency_p50_ms': f'{stats.latency_p50_s * 1e3:.1f}',
                'latency_p99_ms': f'{stats.latency_p99_s * 1e3:.1f}',
                'sessions': self.scheduler.sessions})
        return report

    def destroy_node(self) -> None:
        self.scheduler.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(DetectorNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
