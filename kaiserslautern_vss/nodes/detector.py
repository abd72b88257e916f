"""Detector node: the detector sessions of the vision pipeline, /vss/<cam>/detections out.

Hosted by the vision_pipeline process (nodes/vision_pipeline.py). It loads the pool of
detector sessions the pipeline's :class:`DetectionScheduler` runs (fair newest-frame-wins
slots per camera, batching, motion gating, tracking), publishes each frame's validated
detections with the frame's header for the event manager, rviz2 and recordings, and reports
the scheduler on /diagnostics. It reads nothing from the bus: frames come in memory.

No annotated image here: an annotated view drawn on raw frames would carry unmasked faces.
The commissioning view (/vss/<cam>/image_annotated) is drawn by the privacy node on the
anonymised frame.
"""

from __future__ import annotations

from rclpy._rclpy_pybind11 import RCLError
from rclpy.node import Node
from std_msgs.msg import Header, String
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.detection.factory import create_detector_pool
from kaiserslautern_vss.detection.grade import detector_info_json
from kaiserslautern_vss.detection.motion import MotionGateSettings
from kaiserslautern_vss.detection.onnx_detector import DetectorSettingsError, ModelLoadError
from kaiserslautern_vss.detection.scheduler import DetectionScheduler, SchedulerSettings, default_session_count
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.parameters.detector import PARAMETERS, detector_settings
from kaiserslautern_vss.privacy.detection_validation import detector_labels
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import detections_to_msg
from kaiserslautern_vss.ros.diagnostics import OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.node_main import StartupError
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.payload_guard import PayloadGuard
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic

#: a camera silent this long is reported (it simply leaves the batches meanwhile)
STALE_CAMERA_S = 5.0


class DetectorNode(Node):
    def __init__(self, name: str = 'detector', namespace: str | None = None) -> None:
        super().__init__(name, namespace=namespace)
        self.guard = PayloadGuard(self)  # rclpy's parameter services take anyone's requests
        self.settings = declare_parameters(self, PARAMETERS)
        params = self.settings
        try:
            settings = detector_settings(params)
            sessions = params['sessions'] or default_session_count(settings.intra_op_threads,
                                                                   cameras=len(params['cameras']))
            self.detectors, self.description = create_detector_pool(
                settings, sessions, params['allow_hog_fallback'], params['require_privacy_grade_model'])
        except (DetectorSettingsError, ModelLoadError) as error:
            super().destroy_node()
            raise StartupError(f'detector: {error}') from error
        self.grade = self.detectors[0].grade
        self.get_logger().info(f'detector: {self.description}; grade {self.grade.value}')
        # Late joiners (console, alert bridges, recordings) learn what the masking relies on.
        self.info_pub = self.create_publisher(String, EVENTS, qos.LATCHED)
        self.info_pub.publish(String(data=detector_info_json(
            self.get_fully_qualified_name(), self.description, self.grade, params['cameras'])))
        self.publishers_by_camera = {
            camera_id: self.create_publisher(Detection2DArray, camera_topic(camera_id, 'detections'),
                                             qos.RELIABLE)
            for camera_id in params['cameras']}
        self.scheduler_settings = SchedulerSettings(
            batch_size=params['batch_size'], motion_gating=params['motion_gating'],
            motion=MotionGateSettings(forced_refresh_s=params['forced_refresh_s']),
            motion_hold_s=params['motion_hold_s'], tracking=params['tracking'])
        self.scheduler: DetectionScheduler | None = None
        self.previous_published: dict[str, tuple[int, float]] = {}
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics, guard=self.guard)

    @property
    def labels(self) -> frozenset[str]:
        """Every label the detector can give: the allowlist, or all classes of the model."""
        return detector_labels(self.detectors[0], self.settings['class_allowlist'])

    def attach(self, scheduler: DetectionScheduler) -> None:
        """The scheduler running this node's sessions (reported in diagnostics, stopped on destroy)."""
        self.scheduler = scheduler

    def publish(self, camera_id: str, detections: Detections, header: Header) -> None:
        """Called from inference workers; on shutdown (SIGINT shuts the context down before
        destroy_node stops them) the last results have nowhere to go."""
        if self.context.ok():
            try:
                self.publishers_by_camera[camera_id].publish(detections_to_msg(detections, header))
            except RCLError:
                if self.context.ok():
                    raise

    def _diagnostics(self) -> dict[str, tuple[bytes, str, dict[str, object]]]:
        if self.scheduler is None:
            return {}
        now_s = self.get_clock().now().nanoseconds * 1e-9
        level, grade_text = ((OK, 'privacy-grade') if self.grade.privacy_grade
                             else (WARN, 'NOT privacy-grade, privacy masks conservatively'))
        report = {'model': (level, f'{grade_text}: {self.description}', {'grade': self.grade.value})}
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
                'gated_out': stats.gated, 'shed': stats.dropped, 'failed': stats.failed,
                'latency_p50_ms': f'{stats.latency_p50_s * 1e3:.1f}',
                'latency_p99_ms': f'{stats.latency_p99_s * 1e3:.1f}',
                'sessions': self.scheduler.sessions})
        return report

    def destroy_node(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        super().destroy_node()
