"""Privacy node: image_raw + detections -> image_anonymized (+ /compressed, annotated).

The privacy boundary of the graph. Every raw frame leaves masked by the policy, fully
masked, or not at all: there is no code path that publishes an unmasked frame. Frames
are paired with detections by header stamp (privacy.frame_pairing); a frame whose
detections miss the deadline or were skipped by the detector, or whose masking raises,
fails closed.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.parameters.privacy import PARAMETERS, privacy_settings
from kaiserslautern_vss.privacy.annotation import OpenIncidents, annotate
from kaiserslautern_vss.privacy.anonymizer import Anonymizer, PrivacyConfigError
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector, FaceModelError
from kaiserslautern_vss.privacy.frame_pairing import FramePairer, Resolved
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import msg_to_detections
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.image_conversion import (ImageConversionError, bgr_to_compressed,
                                                     bgr_to_image, image_to_bgr)
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.stamps import header_stamp_ns
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic

DEADLINE_CHECK_PERIOD_S = 0.02
LATENCY_WINDOW = 200
MASKING_FAILED = 'masking failed'


@dataclass
class CameraChannel:
    """Per-camera pairing state, publishers and counters."""
    camera_id: str
    anonymizer: Anonymizer
    pairer: FramePairer[Image, Detection2DArray]
    image_pub: object
    compressed_pub: object
    annotated_pub: object
    published: int = 0
    malformed: int = 0
    fail_closed: Counter = field(default_factory=Counter)  # reason -> frames
    latencies_s: list = field(default_factory=list)


class PrivacyNode(Node):
    def __init__(self) -> None:
        super().__init__('privacy')
        self.settings = declare_parameters(self, PARAMETERS)
        try:
            settings = privacy_settings(self.settings)
            face_detector = CenterFaceDetector() if settings.face_detection else None
        except (PrivacyConfigError, FaceModelError) as error:
            raise StartupError(f'privacy: {error}') from error
        self.drop_unpaired = self.settings['on_deadline'] == 'drop'
        self.channels: dict[str, CameraChannel] = {}
        for camera_id in self.settings['cameras']:
            self.channels[camera_id] = CameraChannel(
                camera_id=camera_id, anonymizer=Anonymizer(settings, face_detector),
                pairer=FramePairer(self.settings['detection_deadline_s']),
                image_pub=self.create_publisher(Image, camera_topic(camera_id, 'image_anonymized'), qos.SENSOR),
                compressed_pub=self.create_publisher(
                    CompressedImage, camera_topic(camera_id, 'image_anonymized/compressed'), qos.SENSOR),
                annotated_pub=self.create_publisher(
                    Image, camera_topic(camera_id, 'image_annotated'), qos.SENSOR))
            self.create_subscription(Image, camera_topic(camera_id, 'image_raw'),
                                     partial(self._on_image, camera_id), qos.SENSOR)
            self.create_subscription(Detection2DArray, camera_topic(camera_id, 'detections'),
                                     partial(self._on_detections, camera_id), qos.RELIABLE)
        # Open incidents are drawn into the commissioning view of their camera.
        self.open_incidents = OpenIncidents()
        self.create_subscription(String, EVENTS, lambda msg: self.open_incidents.update(msg.data), qos.LATCHED)
        self.create_timer(DEADLINE_CHECK_PERIOD_S, self._enforce_deadline)
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics)

    def _on_image(self, camera_id: str, msg: Image) -> None:
        channel = self.channels[camera_id]
        self._handle(channel, channel.pairer.add_frame(header_stamp_ns(msg.header), msg, time.monotonic()))

    def _on_detections(self, camera_id: str, msg: Detection2DArray) -> None:
        channel = self.channels[camera_id]
        self._handle(channel, channel.pairer.add_detections(header_stamp_ns(msg.header), msg))

    def _enforce_deadline(self) -> None:
        now = time.monotonic()
        for channel in self.channels.values():
            self._handle(channel, channel.pairer.expire(now))

    def _handle(self, channel: CameraChannel, resolved: list[Resolved[Image, Detection2DArray]]) -> None:
        for outcome in resolved:
            if outcome.detections is None:
                self._fail_closed(channel, outcome.frame, outcome.reason.value)
            else:
                self._anonymize(channel, outcome.frame, outcome.detections)

    def _anonymize(self, channel: CameraChannel, msg: Image, detections_msg: Detection2DArray) -> None:
        raw = self._to_bgr(channel, msg)
        if raw is None:
            return
        try:
            detections = msg_to_detections(detections_msg)
            result = channel.anonymizer.anonymize(raw, detections)
        except Exception as error:  # noqa: BLE001 - any masking failure must fail closed
            self.get_logger().error(f'{MASKING_FAILED}: {error!r}', throttle_duration_sec=5.0)
            self._fail_closed(channel, msg, MASKING_FAILED, raw)
            return
        self._emit(channel, msg, result.image)
        if channel.annotated_pub.get_subscription_count():
            view = annotate(result.image, detections, self.open_incidents.rules_on(channel.camera_id))
            channel.annotated_pub.publish(bgr_to_image(view, msg.header))

    def _fail_closed(self, channel: CameraChannel, msg: Image, reason: str, raw: np.ndarray | None = None) -> None:
        self.get_logger().warning(f'fail-closed: {reason}', throttle_duration_sec=5.0)
        channel.fail_closed[reason] += 1
        if self.drop_unpaired:
            return
        raw = self._to_bgr(channel, msg) if raw is None else raw
        if raw is not None:
            self._emit(channel, msg, channel.anonymizer.fully_masked(raw))

    def _to_bgr(self, channel: CameraChannel, msg: Image) -> np.ndarray | None:
        try:
            return image_to_bgr(msg)
        except ImageConversionError as error:
            channel.malformed += 1
            self.get_logger().error(f'dropping malformed image: {error}', throttle_duration_sec=5.0)
            return None

    def _emit(self, channel: CameraChannel, msg: Image, image: np.ndarray) -> None:
        channel.image_pub.publish(bgr_to_image(image, msg.header))
        channel.compressed_pub.publish(bgr_to_compressed(image, msg.header, self.settings['jpeg_quality']))
        channel.published += 1
        channel.latencies_s.append(time.time() - header_stamp_ns(msg.header) * 1e-9)
        del channel.latencies_s[:-LATENCY_WINDOW]

    def _diagnostics(self) -> dict:
        report = {}
        for camera_id, channel in self.channels.items():
            failed = sum(channel.fail_closed.values())
            level = ERROR if channel.published == 0 and failed else (WARN if failed else OK)
            latency = np.percentile(channel.latencies_s, [50, 99]) if channel.latencies_s else (0.0, 0.0)
            report[camera_id] = (level, f'{failed} frames failed closed', {
                'published': channel.published, 'fail_closed': failed,
                **{f'fail_closed: {reason}': count for reason, count in sorted(channel.fail_closed.items())},
                'late_detections': channel.pairer.late_detections, 'malformed': channel.malformed,
                'latency_p50_s': f'{latency[0]:.3f}', 'latency_p99_s': f'{latency[1]:.3f}'})
        return report


def main(args: list[str] | None = None) -> int:
    return run_node(PrivacyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
