"""Detector: /vss/<cam>/image_raw -> /vss/<cam>/detections (vision_msgs/Detection2DArray).

Each camera has a newest-frame-wins slot; one worker thread runs inference, so slow
inference drops stale frames instead of building latency. The published header is the
image's header, which is how privacy node and rules pair detections with frames.
"""

from __future__ import annotations

import threading
from functools import partial

from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.detection.factory import create_detector
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, ModelLoadError
from kaiserslautern_vss.parameters.detector import PARAMETERS
from kaiserslautern_vss.paths import resolve_model_path
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import detections_to_msg
from kaiserslautern_vss.ros.image_conversion import ImageConversionError, image_to_bgr
from kaiserslautern_vss.ros.node_main import StartupError, run_node
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.topics import camera_topic


class DetectorNode(Node):
    def __init__(self) -> None:
        super().__init__('detector')
        self.settings = declare_parameters(self, PARAMETERS)
        settings = DetectorSettings(
            model_path=resolve_model_path(self.settings['model_path']),
            class_names_path=self.settings['class_names_path'],
            providers=tuple(self.settings['providers']),
            intra_op_threads=self.settings['intra_op_threads'],
            score_threshold=self.settings['score_threshold'],
            nms_iou=self.settings['nms_iou'],
            class_allowlist=tuple(self.settings['class_allowlist']))
        try:
            self.detector, description = create_detector(settings, self.settings['allow_hog_fallback'])
        except ModelLoadError as error:
            raise StartupError(f'detector: {error}') from error
        self.get_logger().info(f'detector: {description}')
        self.slots: dict[str, Image] = {}
        self.slot_ready = threading.Condition()
        self.dropped = 0
        self.publishers_by_camera = {}
        for camera_id in self.settings['cameras']:
            self.publishers_by_camera[camera_id] = self.create_publisher(
                Detection2DArray, camera_topic(camera_id, 'detections'), qos.RELIABLE)
            self.create_subscription(Image, camera_topic(camera_id, 'image_raw'),
                                     partial(self._on_image, camera_id), qos.SENSOR)
        self.running = True
        self.worker = threading.Thread(target=self._inference_loop, name='inference', daemon=True)
        self.worker.start()

    def _on_image(self, camera_id: str, msg: Image) -> None:
        with self.slot_ready:
            if camera_id in self.slots:
                self.dropped += 1
            self.slots[camera_id] = msg
            self.slot_ready.notify()

    def _inference_loop(self) -> None:
        while self.running:
            with self.slot_ready:
                if not self.slot_ready.wait_for(lambda: self.slots or not self.running, timeout=0.5):
                    continue
                if not self.running:
                    return
                # Oldest-waiting camera first: a busy camera cannot starve a quiet one.
                camera_id = next(iter(self.slots))
                msg = self.slots.pop(camera_id)
            try:
                image = image_to_bgr(msg)
            except ImageConversionError as error:
                self.get_logger().error(f'{camera_id}: dropping malformed image: {error}',
                                        throttle_duration_sec=5.0)
                continue
            detections = self.detector.detect(image)
            self.publishers_by_camera[camera_id].publish(detections_to_msg(detections, msg.header))

    def destroy_node(self) -> None:
        with self.slot_ready:
            self.running = False
            self.slot_ready.notify_all()
        self.worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(DetectorNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
