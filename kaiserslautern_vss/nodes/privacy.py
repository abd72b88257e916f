"""Privacy node: image_raw + detections -> image_anonymized (+ /compressed, annotated).

The privacy boundary of the graph. Every raw frame leaves masked by the policy, fully
masked, or not at all: there is no code path that publishes an unmasked frame. Frames
are paired with detections by header stamp; a frame whose detections miss the deadline,
or whose masking raises, fails closed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.parameters.privacy import PARAMETERS
from kaiserslautern_vss.privacy.anonymizer import Anonymizer, PrivacyPolicy, PrivacySettings
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector, FaceModelError
from kaiserslautern_vss.privacy.masking import MaskMethod
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import msg_to_detections
from kaiserslautern_vss.ros.diagnostics import ERROR, OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.image_conversion import (ImageConversionError, bgr_to_compressed,
                                                     bgr_to_image, image_to_bgr)
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.topics import camera_topic

#: frames or detections kept while waiting for their partner
MAX_PENDING = 30


def stamp_key(msg: Image | Detection2DArray) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


@dataclass
class CameraChannel:
    """Per-camera pairing state and publishers."""
    anonymizer: Anonymizer
    image_pub: object
    compressed_pub: object
    annotated_pub: object
    pending_images: OrderedDict = field(default_factory=OrderedDict)  # stamp -> (Image, arrival)
    pending_detections: OrderedDict = field(default_factory=OrderedDict)  # stamp -> Detection2DArray
    published: int = 0
    fail_closed: int = 0
    malformed: int = 0
    latencies_s: list = field(default_factory=list)


class PrivacyNode(Node):
    def __init__(self) -> None:
        super().__init__('privacy')
        self.settings = declare_parameters(self, PARAMETERS)
        privacy_settings = PrivacySettings(
            policy=PrivacyPolicy(self.settings['policy']), method=MaskMethod(self.settings['method']),
            face_detection=self.settings['face_detection'], face_scale=self.settings['face_scale'],
            hold_frames=self.settings['hold_frames'])
        face_detector = None
        if self.settings['face_detection']:
            try:
                face_detector = CenterFaceDetector()
            except FaceModelError as error:
                raise StartupError(f'privacy: {error}') from error
        self.deadline_s = self.settings['detection_deadline_s']
        self.drop_on_deadline = self.settings['on_deadline'] == 'drop'
        self.channels: dict[str, CameraChannel] = {}
        for camera_id in self.settings['cameras']:
            self.channels[camera_id] = CameraChannel(
                anonymizer=Anonymizer(privacy_settings, face_detector),
                image_pub=self.create_publisher(Image, camera_topic(camera_id, 'image_anonymized'), qos.SENSOR),
                compressed_pub=self.create_publisher(
                    CompressedImage, camera_topic(camera_id, 'image_anonymized/compressed'), qos.SENSOR),
                annotated_pub=self.create_publisher(
                    Image, camera_topic(camera_id, 'image_annotated'), qos.SENSOR))
            self.create_subscription(Image, camera_topic(camera_id, 'image_raw'),
                                     partial(self._on_image, camera_id), qos.SENSOR)
            self.create_subscription(Detection2DArray, camera_topic(camera_id, 'detections'),
                                     partial(self._on_detections, camera_id), qos.RELIABLE)
        self.create_timer(0.02, self._enforce_deadline)
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics)

    def _on_image(self, camera_id: str, msg: Image) -> None:
        channel = self.channels[camera_id]
        key = stamp_key(msg)
        detections = channel.pending_detections.pop(key, None)
        if detections is not None:
            self._publish(channel, msg, msg_to_detections(detections))
            return
        channel.pending_images[key] = (msg, time.monotonic())
        while len(channel.pending_images) > MAX_PENDING:
            _, (old, _) = channel.pending_images.popitem(last=False)
            self._fail_closed(channel, old, 'pending queue full')

    def _on_detections(self, camera_id: str, msg: Detection2DArray) -> None:
        channel = self.channels[camera_id]
        key = stamp_key(msg)
        # Detections come in frame order: older frames still waiting will get none.
        while channel.pending_images and next(iter(channel.pending_images)) < key:
            _, (old, _) = channel.pending_images.popitem(last=False)
            self._fail_closed(channel, old, 'detector skipped this frame')
        pending = channel.pending_images.pop(key, None)
        if pending is None:
            channel.pending_detections[key] = msg
            while len(channel.pending_detections) > MAX_PENDING:
                channel.pending_detections.popitem(last=False)
            return
        self._publish(channel, pending[0], msg_to_detections(msg))

    def _enforce_deadline(self) -> None:
        now = time.monotonic()
        for channel in self.channels.values():
            while channel.pending_images:
                key, (msg, arrival) = next(iter(channel.pending_images.items()))
                if now - arrival < self.deadline_s:
                    break
                del channel.pending_images[key]
                self._fail_closed(channel, msg, f'no detections within {self.deadline_s:.2f} s')

    def _publish(self, channel: CameraChannel, msg: Image, detections: Detections) -> None:
        try:
            raw = image_to_bgr(msg)
        except ImageConversionError as error:
            channel.malformed += 1
            self.get_logger().error(f'dropping malformed image: {error}', throttle_duration_sec=5.0)
            return
        try:
            result = channel.anonymizer.anonymize(raw, detections)
        except Exception as error:  # noqa: BLE001 - any masking failure must fail closed
            self.get_logger().error(f'masking failed, frame leaves fully masked: {error!r}',
                                    throttle_duration_sec=5.0)
            self._emit_fully_masked(channel, msg, raw)
            return
        self._emit(channel, msg, result.image)
        if channel.annotated_pub.get_subscription_count():
            channel.annotated_pub.publish(bgr_to_image(annotate(result.image, detections), msg.header))

    def _fail_closed(self, channel: CameraChannel, msg: Image, reason: str) -> None:
        self.get_logger().warning(f'fail-closed: {reason}', throttle_duration_sec=5.0)
        if self.drop_on_deadline:
            channel.fail_closed += 1
            return
        try:
            raw = image_to_bgr(msg)
        except ImageConversionError:
            channel.malformed += 1
            return
        self._emit_fully_masked(channel, msg, raw)

    def _emit_fully_masked(self, channel: CameraChannel, msg: Image, raw: np.ndarray) -> None:
        channel.fail_closed += 1
        self._emit(channel, msg, channel.anonymizer.fully_masked(raw))

    def _emit(self, channel: CameraChannel, msg: Image, image: np.ndarray) -> None:
        channel.image_pub.publish(bgr_to_image(image, msg.header))
        channel.compressed_pub.publish(bgr_to_compressed(image, msg.header, self.settings['jpeg_quality']))
        channel.published += 1
        capture_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        channel.latencies_s.append(time.time() - capture_s)
        del channel.latencies_s[:-200]

    def _diagnostics(self) -> dict:
        report = {}
        for camera_id, channel in self.channels.items():
            level = ERROR if channel.published == 0 and channel.fail_closed else (
                WARN if channel.fail_closed else OK)
            latency = np.percentile(channel.latencies_s, [50, 99]) if channel.latencies_s else (0.0, 0.0)
            report[camera_id] = (level, f'{channel.fail_closed} frames failed closed', {
                'published': channel.published, 'fail_closed': channel.fail_closed,
                'malformed': channel.malformed, 'latency_p50_s': f'{latency[0]:.3f}',
                'latency_p99_s': f'{latency[1]:.3f}'})
        return report


def annotate(image: np.ndarray, detections: Detections) -> np.ndarray:
    """Commissioning view: anonymised frame + boxes, labels, track ids."""
    canvas = image.copy()
    for box, label, track_id, score in zip(detections.boxes.astype(int), detections.labels,
                                           detections.track_ids, detections.scores):
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:]), (0, 200, 255), 2)
        text = f'{label} #{track_id} {score:.2f}' if track_id >= 0 else f'{label} {score:.2f}'
        cv2.putText(canvas, text, (int(box[0]), max(12, int(box[1]) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 200, 255), 1, cv2.LINE_AA)
    return canvas


def main(args: list[str] | None = None) -> int:
    return run_node(PrivacyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
