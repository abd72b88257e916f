"""Privacy node: the masking stage of the vision pipeline -> image_anonymized (+ /compressed, annotated).

Hosted by the vision_pipeline process (nodes/vision_pipeline.py). The masking itself runs in
the pipeline's inference workers (kaiserslautern_vss.pipeline.vision) on detections handed
over in memory; this node holds the masking parameters, publishes what comes out and reports
every refused, repaired and failed-closed frame by camera and reason, in /diagnostics and in
log lines throttled per reason. Every frame leaves masked by the policy, fully masked, or
not at all: there is no code path that publishes an unmasked frame.

It subscribes to no detections and, in site operation, to no images. Only cameras whose
driver is not hosted in the process (a replay: ``--no-camera-drivers``, replay.launch.py)
are read from ``/vss/<cam>/image_raw``; what arrives there is still detected and masked here,
so a forged frame can only ever come out masked.
"""

from __future__ import annotations

import re
from functools import partial

from rclpy._rclpy_pybind11 import RCLError
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from kaiserslautern_vss.detection.grade import DetectorGrade
from kaiserslautern_vss.log_throttle import ReasonThrottle
from kaiserslautern_vss.parameters.privacy import PARAMETERS, conservative_settings, privacy_settings, validation_settings
from kaiserslautern_vss.pipeline.stamp_window import StampWindow
from kaiserslautern_vss.pipeline.vision import (MALFORMED, REPAIRED, PipelineOutput, PipelineSettings,
                                                Problem, VisionPipeline)
from kaiserslautern_vss.privacy.annotation import OpenIncidents, annotate
from kaiserslautern_vss.privacy.anonymizer import PrivacyConfigError
from kaiserslautern_vss.privacy.conservative import FrameMasker, anonymizer_for, masking_mode
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector, FaceModelError
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.image_conversion import (ImageConversionError, bgr_to_compressed, bgr_to_image,
                                                     image_from_cdr)
from kaiserslautern_vss.ros.node_main import StartupError
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.payload_guard import PayloadGuard
from kaiserslautern_vss.ros.stamps import header_stamp_ns
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic


class PrivacyNode(Node):
    def __init__(self, name: str = 'privacy', namespace: str | None = None) -> None:
        super().__init__(name, namespace=namespace)
        self.guard = PayloadGuard(self)
        self.settings = declare_parameters(self, PARAMETERS)
        try:
            self.masking = privacy_settings(self.settings)
            self.face_detector = CenterFaceDetector() if self.masking.face_detection else None
        except (PrivacyConfigError, FaceModelError) as error:
            super().destroy_node()
            raise StartupError(f'privacy: {error}') from error
        self.cameras: list[str] = list(self.settings['cameras'])
        self.image_pubs = {c: self.create_publisher(Image, camera_topic(c, 'image_anonymized'), qos.SENSOR)
                           for c in self.cameras}
        self.compressed_pubs = {c: self.create_publisher(CompressedImage,
                                                         camera_topic(c, 'image_anonymized/compressed'), qos.SENSOR)
                                for c in self.cameras}
        self.annotated_pubs = {c: self.create_publisher(Image, camera_topic(c, 'image_annotated'), qos.SENSOR)
                               for c in self.cameras}
        self.published = dict.fromkeys(self.cameras, 0)
        self.bus_cameras: list[str] = []
        self.pipeline: VisionPipeline | None = None
        self.masking_mode = ''
        self.throttle = ReasonThrottle()
        # Open incidents are drawn into the commissioning view of their camera. Parsed here, in
        # the executor thread: a hostile event can cost the banner, never a masked frame.
        self.open_incidents = OpenIncidents(self.cameras)
        self.guard.subscribe(String, EVENTS, lambda msg: self.open_incidents.update(msg.data), qos.LATCHED)
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics, guard=self.guard)

    def anonymizers(self, grade: DetectorGrade) -> dict[str, FrameMasker]:
        """A fresh anonymizer per camera (it remembers that camera's recent masks): the policy's
        behind a privacy-grade detector, else the conservative one; the mode shows in diagnostics."""
        self.masking_mode = masking_mode(grade, self.masking)
        if not grade.privacy_grade:
            self.get_logger().warning(f'masking {self.masking_mode}')
        conservative = conservative_settings(self.settings)
        return {camera_id: anonymizer_for(grade, self.masking, self.face_detector, conservative)
                for camera_id in self.cameras}

    def pipeline_settings(self, detector_labels: frozenset[str]) -> PipelineSettings:
        return PipelineSettings(StampWindow(self.settings['stamp_tolerance_s']),
                                validation_settings(self.settings, detector_labels),
                                publish_failed=self.settings['on_deadline'] == 'mask_all')

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def attach(self, pipeline: VisionPipeline, bus_cameras: list[str]) -> None:
        """Report ``pipeline``; read ``bus_cameras`` (no driver in this process) from image_raw."""
        self.pipeline = pipeline
        self.bus_cameras = list(bus_cameras)
        for camera_id in self.bus_cameras:
            self.get_logger().warning(f'{camera_id}: no camera driver in this process; frames are read from '
                                      f'{camera_topic(camera_id, "image_raw")} (replay input)')
            self.guard.subscribe(Image, camera_topic(camera_id, 'image_raw'),
                                 partial(self._on_bus_image, camera_id), qos.SENSOR, raw=True)

    def _on_bus_image(self, camera_id: str, data: bytes) -> None:
        try:
            frame = image_from_cdr(data)
        except ImageConversionError as error:
            self.pipeline.refuse(camera_id, MALFORMED, str(error))
            return
        self.pipeline.submit(camera_id, frame.image, header_stamp_ns(frame.header), frame.header)

    def publish(self, output: PipelineOutput) -> None:
        """Called from inference workers, one camera at a time, in frame order."""
        if output.image is None or not self.context.ok():
            return
        camera_id, header = output.camera_id, output.context
        try:
            if self.image_pubs[camera_id].get_subscription_count():
                self.image_pubs[camera_id].publish(bgr_to_image(output.image, header))
            if self.compressed_pubs[camera_id].get_subscription_count():
                self.compressed_pubs[camera_id].publish(
                    bgr_to_compressed(output.image, header, self.settings['jpeg_quality']))
            if output.detections is not None and self.annotated_pubs[camera_id].get_subscription_count():
                view = annotate(output.image, output.detections, self.open_incidents.rules_on(camera_id))
                self.annotated_pubs[camera_id].publish(bgr_to_image(view, header))
        except RCLError:
            if self.context.ok():
                raise
            return
        self.published[camera_id] += 1

    def report(self, problem: Problem) -> None:
        """One log line per camera, reason and kind of detail (numbers aside) every few seconds,
        with how many were held back."""
        detail_kind = re.sub(r'\d+', '#', problem.detail)
        held_back = self.throttle.admit((problem.camera_id, problem.kind, problem.reason, detail_kind))
        if held_back is None:
            return
        text = (f'{problem.camera_id}: {problem.kind}: {problem.reason}'
                f'{f" ({problem.detail})" if problem.detail else ""}'
                f'{f"; {held_back} more since the last report" if held_back else ""}')
        if problem.kind == REPAIRED:
            self.get_logger().warning(text)
        else:
            self.get_logger().error(text)

    def _diagnostics(self) -> dict:
        if self.pipeline is None:
            return {}
        report = {}
        for camera_id, counts in self.pipeline.counts().items():
            failed, refused = sum(counts.failed_closed.values()), sum(counts.refused.values())
            level = ERROR if counts.masked == 0 and failed else (WARN if failed or refused else OK)
            reasons = ', '.join(f'{reason}: {count}' for reason, count in
                                sorted({**counts.failed_closed, **counts.refused}.items()))
            message = f'{failed} frames failed closed, {refused} refused' + (f' ({reasons})' if reasons else '')
            report[camera_id] = (level, message, {
                'masking': self.masking_mode,
                'input': 'image_raw topic (replay)' if camera_id in self.bus_cameras else 'camera driver',
                'published': self.published[camera_id], 'masked': counts.masked, 'fail_closed': failed,
                **{f'fail_closed: {reason}': n for reason, n in sorted(counts.failed_closed.items())},
                'refused': refused, **{f'refused: {reason}': n for reason, n in sorted(counts.refused.items())},
                **{f'repaired: {reason}': n for reason, n in sorted(counts.repaired.items())},
                'latency_p50_s': f'{counts.latency_p50_s:.3f}', 'latency_p99_s': f'{counts.latency_p99_s:.3f}'})
        return report
